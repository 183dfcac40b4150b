() => {
  // The Prompt tab's clicks decoded in the browser (demo/browser_decode.py sends the files): SAM2's per-click decoder
  // as ONNX in onnxruntime-web (WebAssembly, one thread), the image's side of it (fp16) fetched once. Only glue here:
  // prompts to the graph's inputs, sam2's mask choice, bilinear upsampling of the chosen logits (sam2's
  // postprocess_masks, align_corners=False) thresholded at 0, and drawing. Clicks, boxes (drag, or two clicks in
  // box mode) and a hover preview; each click's prompts go to the server (the hidden sync button) for Undo and the API.
  const S = (window.segkit = window.segkit || {});
  const ORT_BASE = new URL(__ORT_BASE__, window.location.href).href;
  const COLORS = { mask: [30, 144, 255], pos: "#22c55e", neg: "#ef4444", box: "#facc15" };
  Object.assign(S, { ready: false, session: null, decoderUrl: null, meta: null, feeds: null, base: null,
                     prompts: { points: [], box: null, corner: null }, hover: null, drag: null, pending: null,
                     busy: false, seq: 0, last: null, timings: {}, note: "" });

  const $ = (sel) => document.querySelector(sel);
  const canvasImg = () => $("#prompt-canvas img");
  const setInfo = (text) => { const box = $("#prompt-info textarea"); if (box) box.value = text; };

  let ortPromise = null;
  function loadOrt() {
    ortPromise = ortPromise || new Promise((resolve, reject) => {
      if (typeof WebAssembly !== "object") return reject(new Error("this browser has no WebAssembly"));
      const tag = document.createElement("script");
      tag.src = ORT_BASE + "ort.wasm.min.js";
      tag.onload = () => {
        ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which a Space does not have
        ort.env.wasm.wasmPaths = ORT_BASE;
        resolve(window.ort);
      };
      tag.onerror = () => reject(new Error("onnxruntime-web did not load"));
      document.head.appendChild(tag);
    });
    return ortPromise;
  }

  let F16 = null;  // every fp16 bit pattern's value
  function halfTable() {
    if (F16) return F16;
    F16 = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
      F16[h] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
    }
    return F16;
  }

  function parseEmbedding(buffer) {
    const length = new DataView(buffer).getUint32(0, true);
    const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
    const table = halfTable(), feeds = {};
    for (const [name, shape, offset] of meta.arrays) {
      const count = shape.reduce((a, b) => a * b, 1);
      const half = new Uint16Array(buffer, 4 + length + offset, count);
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = table[half[i]];
      feeds[name] = new ort.Tensor("float32", data, shape);
    }
    return { meta, feeds };
  }

  async function fetchBytes(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${response.status} fetching ${url}`);
    return response.arrayBuffer();
  }

  // files: [decoder, embedding] as Gradio gives a File component's value; true when the page now decodes
  S.load = async (files) => {
    S.ready = false;
    if (!files || files.length !== 2) return false;
    try {
      await loadOrt();
      const [decoder, embedding] = files;
      if (S.decoderUrl !== decoder.url) {
        const start = performance.now();
        S.session = await ort.InferenceSession.create(await fetchBytes(decoder.url), { executionProviders: ["wasm"] });
        S.decoderUrl = decoder.url;
        S.timings.decoder_ms = performance.now() - start;
      }
      const start = performance.now();
      const buffer = await fetchBytes(embedding.url);
      S.timings.embedding_fetch_ms = performance.now() - start;
      Object.assign(S, parseEmbedding(buffer));
      S.timings.embedding_ms = performance.now() - start;
      S.timings.embedding_bytes = buffer.byteLength;
      S.base = await snapshotBase();
      S.layer = null;
      S.prompts = { points: [], box: null, corner: null };
      S.decoded = null;
      S.ready = true;
      install();
      await decodeAndDraw(S.prompts);
      return true;
    } catch (err) {
      S.note = `Clicks decode on the server: ${err.message || err}.`;
      const info = $("#prompt-info textarea")?.value || "";
      setInfo(`${info.replace(/ ?Clicks decode in your browser[^.]*\./, "")} ${S.note}`.trim());
      return false;
    }
  };

  S.reset = () => { S.ready = false; removeOverlay(); return false; };
  S.disable = S.reset;  // the bench's switch to the server path
  S.promptsJson = () => JSON.stringify(S.prompts);
  S.setPrompts = (text) => {
    if (!S.ready) return;
    try { S.prompts = Object.assign({ points: [], box: null, corner: null }, text ? JSON.parse(text) : {}); }
    catch (err) { return; }
    schedule(S.prompts, false);
  };

  // the image as shown before any overlay: the tab shows the upload itself right after embedding
  function snapshotBase() {
    return new Promise((resolve, reject) => {
      const img = canvasImg();
      if (!img) return reject(new Error("no image shown"));
      const copy = new Image();
      copy.crossOrigin = "anonymous";
      copy.onload = () => resolve(copy);
      copy.onerror = () => reject(new Error("the shown image did not load"));
      copy.src = img.src;
    });
  }

  // ---- the graph ------------------------------------------------------------------------------------------------
  async function decode(prompts) {
    const { image_size: size, height, width } = S.meta;
    const coords = [], labels = [];
    if (prompts.box) {  // a box is two corners labelled 2 and 3, before the clicks (as sam2 gives them)
      const [x0, y0, x1, y1] = prompts.box;
      coords.push(x0 * size / width, y0 * size / height, x1 * size / width, y1 * size / height);
      labels.push(2, 3);
    }
    for (const [x, y, label] of prompts.points) { coords.push(x * size / width, y * size / height); labels.push(label); }
    const n = labels.length;
    const feeds = Object.assign({}, S.feeds, {
      point_coords: new ort.Tensor("float32", Float32Array.from(coords), [1, n, 2]),
      point_labels: new ort.Tensor("float32", Float32Array.from(labels), [1, n]),
    });
    const runStart = performance.now();
    const out = await S.session.run(feeds);
    const runMs = performance.now() - runStart;
    const iou = out.iou_predictions.data;
    // the app's rule (demo/models.py): one click is ambiguous, so the best-scored of the 3 masks; the best of
    // them too with multi-mask output; else sam2's single mask (output 0)
    const multimask = $("#prompt-multimask input")?.checked;
    let pick = 0;
    if (multimask || (!prompts.box && prompts.points.length === 1)) {
      pick = 1;
      for (let k = 2; k < 4; k++) if (iou[k] > iou[pick]) pick = k;
    }
    const side = out.low_res_masks.dims[3];
    const logits = out.low_res_masks.data.subarray(pick * side * side, (pick + 1) * side * side);
    return { mask: upsample(logits, side, height, width), score: iou[pick], pick, run_ms: runMs };
  }

  // bilinear, align_corners=False (F.interpolate as sam2's postprocess_masks calls it), then > 0
  function axis(inSize, outSize) {
    const lo = new Int32Array(outSize), hi = new Int32Array(outSize), w = new Float32Array(outSize);
    const scale = inSize / outSize;
    for (let i = 0; i < outSize; i++) {
      const src = Math.max((i + 0.5) * scale - 0.5, 0);
      lo[i] = Math.min(Math.floor(src), inSize - 1);
      hi[i] = Math.min(lo[i] + 1, inSize - 1);
      w[i] = src - lo[i];
    }
    return { lo, hi, w };
  }
  function upsample(logits, side, height, width) {
    const xs = axis(side, width), ys = axis(side, height), mask = new Uint8Array(height * width);
    for (let y = 0; y < height; y++) {
      const r0 = ys.lo[y] * side, r1 = ys.hi[y] * side, wy = ys.w[y];
      for (let x = 0; x < width; x++) {
        const a = xs.lo[x], b = xs.hi[x], wx = xs.w[x];
        const top = logits[r0 + a] + (logits[r0 + b] - logits[r0 + a]) * wx;
        const bottom = logits[r1 + a] + (logits[r1 + b] - logits[r1 + a]) * wx;
        mask[y * width + x] = top + (bottom - top) * wy > 0 ? 1 : 0;
      }
    }
    return mask;
  }

  // ---- one decode at a time: a committed prompt waits for the one running, a hover replaces an older hover ------
  function schedule(prompts, commit, t0) {
    if (!S.pending || !S.pending.commit || commit) S.pending = { prompts, commit, t0: t0 ?? performance.now() };
    pump();
  }
  async function pump() {
    if (S.busy || !S.pending || !S.ready) return;
    const job = S.pending;
    S.pending = null;
    S.busy = true;
    try {
      await decodeAndDraw(job.prompts, job);
    } catch (err) {
      setInfo(`browser decode failed: ${err.message || err}`);
    } finally {
      S.busy = false;
      pump();
    }
  }
  async function decodeAndDraw(prompts, job) {
    const empty = !prompts.box && !prompts.points.length;
    const start = performance.now();
    // a click where the pointer rests commits the prompts its hover preview has just decoded: that mask is shown
    const multimask = !!$("#prompt-multimask input")?.checked;
    const key = JSON.stringify([prompts.points, prompts.box, multimask]);
    const reused = !empty && S.decoded?.key === key;
    const result = empty ? null : reused ? S.decoded.result : await decode(prompts);
    if (result) S.decoded = { key, result };
    const decodeMs = performance.now() - start;
    const drawn = JSON.stringify(prompts);
    if (!(reused && S.drawn === drawn && $("#segkit-overlay"))) S.drawn = draw(prompts, result) ? drawn : null;
    S.seq += 1;
    S.last = { seq: S.seq, prompts: JSON.parse(JSON.stringify(prompts)), commit: !!(job && job.commit), multimask,
               decode_ms: decodeMs, run_ms: reused || !result ? null : result.run_ms, reused, ms: job ? performance.now() - job.t0 : decodeMs,
               score: result ? result.score : null, pick: result ? result.pick : null,
               mask: result ? result.mask : null };
    if (job && job.commit) {
      const how = reused ? "its hover preview" : `decoded in your browser ${decodeMs.toFixed(0)} ms`;
      if (result) setInfo(`score ${result.score.toFixed(3)} | ${how} (onnxruntime-web ${ort.env.versions?.web || ""})` +
                          ` | click to mask ${S.last.ms.toFixed(0)} ms`);
      $("#segkit-sync")?.click();
    }
  }

  // ---- drawing: an opaque canvas over the shown image (the image, the mask, the prompts) ------------------------
  function overlay() {
    const img = canvasImg();
    if (!img || !S.meta) return null;
    let cv = $("#segkit-overlay");
    if (!cv || cv.parentElement !== img.parentElement) {
      cv?.remove();
      cv = document.createElement("canvas");
      cv.id = "segkit-overlay";
      cv.style.position = "absolute";
      cv.style.pointerEvents = "none";
      if (getComputedStyle(img.parentElement).position === "static") img.parentElement.style.position = "relative";
      img.parentElement.appendChild(cv);
    }
    const { width, height } = S.meta;
    if (cv.width !== width || cv.height !== height) { cv.width = width; cv.height = height; }
    const rect = contentRect(img);
    Object.assign(cv.style, { left: `${img.offsetLeft + rect.left}px`, top: `${img.offsetTop + rect.top}px`,
                              width: `${rect.width}px`, height: `${rect.height}px` });
    return cv;
  }
  function removeOverlay() { $("#segkit-overlay")?.remove(); }
  // where the picture sits inside the <img> box (object-fit: contain), in CSS pixels
  function contentRect(img) {
    const boxW = img.clientWidth, boxH = img.clientHeight;
    const scale = Math.min(boxW / img.naturalWidth, boxH / img.naturalHeight);
    const width = img.naturalWidth * scale, height = img.naturalHeight * scale;
    return { left: (boxW - width) / 2, top: (boxH - height) / 2, width, height };
  }
  function draw(prompts, result) {
    const cv = overlay();
    if (!cv) return false;
    const ctx = cv.getContext("2d");
    const { width, height } = S.meta;
    ctx.drawImage(S.base, 0, 0, width, height);
    if (result) {  // the mask as one translucent colour on a layer of its own, composited over the image
      if (!S.layer) {
        S.layer = new ImageData(width, height);
        S.layerCanvas = new OffscreenCanvas(width, height);
      }
      const [r, g, b] = COLORS.mask, colour = (128 << 24) | (b << 16) | (g << 8) | r;  // RGBA, little-endian
      const px = new Uint32Array(S.layer.data.buffer), mask = result.mask;
      for (let i = 0; i < mask.length; i++) px[i] = mask[i] ? colour : 0;
      S.layerCanvas.getContext("2d").putImageData(S.layer, 0, 0);
      ctx.drawImage(S.layerCanvas, 0, 0);
    }
    const unit = Math.max(width, height) / 200;
    if (prompts.box) {
      const [x0, y0, x1, y1] = prompts.box;
      ctx.strokeStyle = COLORS.box; ctx.lineWidth = unit * 0.6; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    for (const [x, y, label] of [...prompts.points, ...(prompts.corner ? [[...prompts.corner, 2]] : [])]) {
      ctx.beginPath(); ctx.arc(x, y, unit * 1.5, 0, 2 * Math.PI);
      ctx.fillStyle = label === 1 ? COLORS.pos : label === 0 ? COLORS.neg : COLORS.box; ctx.fill();
      ctx.lineWidth = unit * 0.4; ctx.strokeStyle = "white"; ctx.stroke();
    }
    return true;
  }

  // ---- pointer: image pixels as Gradio's select event rounds them; a click adds, a drag draws a box ------------
  function pixel(event) {
    const img = canvasImg(), bounds = img.getBoundingClientRect(), rect = contentRect(img);
    const x = Math.round((event.clientX - bounds.left - rect.left) * img.naturalWidth / rect.width);
    const y = Math.round((event.clientY - bounds.top - rect.top) * img.naturalHeight / rect.height);
    if (x < 0 || y < 0 || x > S.meta.width || y > S.meta.height) return null;
    return [x, y];
  }
  const mode = () => $("#prompt-mode input:checked")?.value || "positive point";
  const onImage = (event) => S.ready && event.target === canvasImg();
  const boxOf = ([x0, y0], [x1, y1]) => [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];

  function withClick(prompts, [x, y]) {
    const m = mode();
    if (m.startsWith("box")) {
      if (!prompts.corner) return { ...prompts, corner: [x, y] };
      return { ...prompts, box: boxOf(prompts.corner, [x, y]), corner: null };
    }
    if (prompts.points.length >= S.meta.max_points) return null;
    return { ...prompts, points: [...prompts.points, [x, y, m.startsWith("negative") ? 0 : 1]] };
  }
  function preview(at) {  // what a click here would decode (SAM's hover mask)
    if (mode().startsWith("box")) return S.prompts.corner ? { ...S.prompts, box: boxOf(S.prompts.corner, at) } : S.prompts;
    return withClick(S.prompts, at) || S.prompts;
  }

  function install() {
    if (S.installed) return;
    S.installed = true;
    document.addEventListener("dragstart", (event) => { if (onImage(event)) event.preventDefault(); }, true);  // a box
    document.addEventListener("pointerdown", (event) => {
      if (!onImage(event) || event.button !== 0) return;
      const at = pixel(event);
      S.drag = at ? { from: at, moved: false } : null;
      S.pressAt = at;  // the click's spot: a pointer event's fractional position, as the hover preview's
    }, true);
    document.addEventListener("pointermove", (event) => {
      if (!onImage(event)) return;
      const at = pixel(event);
      if (!at || (S.hoverAt && at[0] === S.hoverAt[0] && at[1] === S.hoverAt[1] && !S.drag)) return;
      S.hoverAt = at;
      if (S.drag && (event.buttons & 1)) {
        const [x0, y0] = S.drag.from;
        S.drag.moved = S.drag.moved || Math.hypot(at[0] - x0, at[1] - y0) > 4;
        if (S.drag.moved) { schedule({ ...S.prompts, box: boxOf(S.drag.from, at), corner: null }, false); return; }
      }
      schedule(preview(at), false);
    }, true);
    document.addEventListener("pointerup", (event) => {
      const drag = S.drag;
      S.drag = null;
      if (!drag || !drag.moved || !S.ready) return;
      const at = pixel(event) || drag.from;
      S.dragged = true;  // the click this pointerup makes is the box's, not a point
      S.prompts = { ...S.prompts, box: boxOf(drag.from, at), corner: null };
      schedule(S.prompts, true, event.timeStamp);
    }, true);
    document.addEventListener("click", (event) => {
      if (!onImage(event)) return;
      event.stopPropagation();  // the page decodes: no server round trip for this click
      event.preventDefault();
      if (S.dragged) { S.dragged = false; return; }
      const at = S.pressAt || pixel(event);  // a click event's position is rounded to whole CSS pixels
      S.pressAt = null;
      const next = at && withClick(S.prompts, at);
      if (!next) { if (at) setInfo(`at most ${S.meta.max_points} points: undo or clear some first`); return; }
      S.prompts = next;
      schedule(S.prompts, true, event.timeStamp);
    }, true);
    document.addEventListener("pointerleave", (event) => { if (onImage(event)) schedule(S.prompts, false); }, true);
    window.addEventListener("resize", () => { if (S.ready) schedule(S.prompts, false); });
  }
}
