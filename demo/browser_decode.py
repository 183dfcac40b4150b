"""What the visitor's browser needs to decode clicks itself (demo/static/browser_decode.js, onnxruntime-web): the
model's prompt decoder as ONNX and one image's embedding, as files the page fetches once.

The decoder: the repo's onnx/decoder.onnx when the model has one (push exports it), else exported when first asked
for (the base model, the Fine-tune tab's models), kept with the loaded model and on disk (user_cache("onnx"): the
same weights are not exported twice). The embedding: the graph's image inputs (onnx_export.image_side: the decoder's
image-side work, which the app's own PointDecoder has already done for the image, and the high-res features), in
fp16 (11 MB at 1024 px), behind a 4-byte header length and a JSON header:
    {"image_size": S, "height": H, "width": W, "max_points": N, "arrays": [[name, shape, byte offset], ...]}
Only a visitor's own embedding (their visitor key) is written for them, under a random name; Gradio serves it from
its cache under a secret-seeded hash, so no other visitor can name it. Anything missing (onnxruntime-web not
installed, an export that fails) leaves the clicks on the server, with a note saying why.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from demo import models, ort_assets, sessions, settings
from trainer.checkpoint import WEIGHTS_NAME, save_weights
from trainer.sam2_model import onnx_export
from trainer.sam2_model.point_decoder import PointDecoder
from trainer.sam2_model.spec import save_spec
from trainer.user_cache import user_cache

log = logging.getLogger("segkit.demo")
SCRIPT = Path(__file__).resolve().parent / "static" / "browser_decode.js"
ROOT = Path(__file__).resolve().parents[1]  # where `python -m trainer` runs
EXPORT = (sys.executable, "-m", "trainer", "export-onnx")  # a model folder's decoder, checked against PyTorch
EXPORT_TIMEOUT_S = 1200
# Exported decoders kept on disk, keyed by the weights, the spec and the exporter's code (~16 MB each at 1024 px):
# the base model is the same on every start of the app, and its export costs tens of seconds of CPU.
EXPORTS_KEPT = 8


@dataclass
class BrowserDecoder:
    """A loaded model's decoder for the browser: its ONNX file, or None and why not."""

    path: Path | None
    note: str


@lru_cache(maxsize=1)
def spool() -> Path:
    """This process's folder of files for browsers (Gradio copies them into its cache when they are returned)."""
    return Path(tempfile.mkdtemp(prefix="segkit-browser-"))


def unavailable() -> str | None:
    """Why no browser can decode here (the vendored runtime is missing), or None."""
    if not ort_assets.ready():
        return "onnxruntime-web is not installed on this server (setup.sh fetches it)"
    return None


_export_lock = threading.Lock()  # one export at a time (tens of seconds of CPU at 1024 px)


def decoder(handle: models.Sam2Handle) -> BrowserDecoder:
    """`handle`'s decoder for the browser, exported once per loaded model (a repo's own export is used)."""
    if handle.browser is None:
        with _export_lock:
            if handle.browser is None:
                handle.browser = _decoder(handle)
    return handle.browser


def _export(handle: models.Sam2Handle, out: Path) -> str:
    """`python -m trainer export-onnx` in a child process on a copy of the model's weights, or the same export made
    earlier (user_cache("onnx")); says which. torch's export tracer patches nn.Module.__call__ process-wide while it
    runs, so in the app's process a click on any model in another thread would be traced into it (and fail). The
    model's lock is held only while its weights are copied."""
    with tempfile.TemporaryDirectory(prefix="segkit-export-") as tmp:
        folder = Path(tmp) / "model"
        with handle.lock:
            save_weights(handle.model.state_dict(), folder / WEIGHTS_NAME)
        save_spec(handle.spec, folder)
        kept = user_cache("onnx") / _export_key(folder) / onnx_export.DECODER_NAME
        if kept.is_file():
            shutil.copyfile(kept, out)
            with contextlib.suppress(OSError):  # a read-only cache still serves; it only stops ageing
                kept.touch()  # the newest by use are the ones kept
            return "exported earlier, from the cache"
        try:
            done = subprocess.run([*EXPORT, str(folder), "--out", str(out)], cwd=ROOT, capture_output=True,
                                  text=True, timeout=EXPORT_TIMEOUT_S)
        except subprocess.TimeoutExpired as err:
            raise onnx_export.ExportError(f"the export took over {EXPORT_TIMEOUT_S} s") from err
    if done.returncode != 0:
        raise onnx_export.ExportError((done.stderr.strip() or f"exit status {done.returncode}")[-2000:])
    _keep(out, kept)
    return "exported at load"


def _export_key(folder: Path) -> str:
    """sha256 of a model folder's weights and spec and of the code that exports and checks its graph."""
    digest = hashlib.sha256()
    for path in (folder / WEIGHTS_NAME, *sorted(folder.glob("*.yaml")), Path(onnx_export.__file__),
                 Path(inspect.getfile(PointDecoder))):
        with open(path, "rb") as file:
            digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


def _keep(graph: Path, kept: Path) -> None:
    """Copy `graph` into the export cache (atomically: a reader never sees half a file), keeping the newest
    EXPORTS_KEPT. A cache that cannot be written only costs the next start its export."""
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(".partial")
        shutil.copyfile(graph, partial)
        partial.replace(kept)
        entries = sorted(kept.parents[1].glob(f"*/{onnx_export.DECODER_NAME}"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-EXPORTS_KEPT]:
            shutil.rmtree(old.parent, ignore_errors=True)
    except OSError as err:
        log.warning("the exported decoder was not cached: %s", err)


_folders: dict[str, Path] = {}  # model ref -> its decoder's folder in the spool


def _decoder(handle: models.Sam2Handle) -> BrowserDecoder:
    out = spool() / secrets.token_hex(16) / onnx_export.DECODER_NAME
    forget_folder = _folders.pop(handle.ref, None)  # the model's earlier load (Gradio's cache holds what it served)
    if forget_folder is not None:
        shutil.rmtree(forget_folder, ignore_errors=True)
    _folders[handle.ref] = out.parent
    pushed = Path(handle.folder) / onnx_export.ONNX_DIR / onnx_export.DECODER_NAME if handle.folder else None
    out.parent.mkdir(parents=True)
    if pushed is not None and pushed.is_file():
        try:  # from the Hub cache, which Gradio does not serve: its copy serves the page
            shutil.copyfile(onnx_export.check_inputs(pushed), out)
            return BrowserDecoder(out, "the repo's onnx/decoder.onnx")
        except onnx_export.ExportError as err:  # e.g. an earlier version's graph: exported again below
            log.warning("%s: the repo's decoder is not used: %s", handle.ref, err)
    start = time.perf_counter()
    try:
        how = _export(handle, out)
    except onnx_export.ExportError as err:
        log.warning("%s: no browser decoding: %s", handle.ref, err)
        return BrowserDecoder(None, "this model's ONNX export failed (see the server log)")
    return BrowserDecoder(out, f"{how} ({time.perf_counter() - start:.0f} s)")


def embedding_file(handle: models.Sam2Handle, key: str, precision_name: str) -> Path | None:
    """The cached embedding of image `key` (the visitor's own key) as a file for the browser, written once per
    embedding; None when it is not cached (the visitor's next step embeds it)."""
    state = models.embedding_state(handle, key, precision_name)
    if state is None:
        return None
    path = state.get("browser_file")
    if path is None or not path.is_file():
        _drop_old(settings.get().gradio_cache_s)
        path = spool() / f"{secrets.token_hex(16)}.bin"
        write_embedding(state["decoder"], state["_orig_hw"][-1], handle.model.image_size, path)
        state["browser_file"] = path
    return path


def write_embedding(decoder: PointDecoder, orig_hw: tuple[int, int], image_size: int, path: Path) -> Path:
    """The graph's image inputs (onnx_export.image_side of the image's PointDecoder) in fp16 behind the module's
    header."""
    with torch.no_grad():
        feed = onnx_export.image_side(decoder)
    arrays, header, offset = [], {"image_size": image_size, "height": int(orig_hw[0]), "width": int(orig_hw[1]),
                                  "max_points": settings.get().max_points, "arrays": []}, 0
    for name in onnx_export.IMAGE_INPUTS:
        data = np.ascontiguousarray(feed[name].float().cpu().numpy(), np.float16)
        header["arrays"].append([name, list(data.shape), offset])
        arrays.append(data)
        offset += data.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-(4 + len(text)) % 8)  # the arrays start 8-aligned: the page views them in place
    with open(path, "wb") as f:
        f.write(struct.pack("<I", len(text)) + text)
        for data in arrays:
            f.write(data.tobytes())
    return path


def read_embedding(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of an embedding file: what the page reads, for the tests."""
    blob = Path(path).read_bytes()
    (length,) = struct.unpack("<I", blob[:4])
    header = json.loads(blob[4:4 + length])
    start = 4 + length
    arrays = {name: np.frombuffer(blob, np.float16, int(np.prod(shape)), start + offset).reshape(shape)
              for name, shape, offset in header["arrays"]}
    return header, arrays


def forget(ref_prefix: str) -> None:
    """Delete the decoders of the models whose ref starts with `ref_prefix`: a closed session's models."""
    for ref in [r for r in list(_folders) if r.startswith(ref_prefix)]:
        shutil.rmtree(_folders.pop(ref), ignore_errors=True)


sessions.on_close(forget)


def _drop_old(max_age_s: float) -> None:
    """Embedding files older than Gradio keeps its own copies: the page has fetched them long since."""
    cutoff = time.time() - max_age_s
    for old in spool().glob("*.bin"):
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:  # another thread took it
            pass


def payload(handle: models.Sam2Handle, key: str, precision_name: str) -> tuple[list[str], str]:
    """([decoder file, embedding file] for the page, a note for the info box); no files = clicks stay on the
    server, and the note says why."""
    why = unavailable()
    if why is None:
        found = decoder(handle)
        why = None if found.path else found.note
    if why is not None:
        return [], f"Clicks decode on the server: {why}."
    embedding = embedding_file(handle, key, precision_name)
    if embedding is None:
        return [], ""
    return [str(found.path), str(embedding)], "Clicks decode in your browser (onnxruntime-web)."


def script() -> str:
    """The page's script (gr.Blocks.launch(js=...)): the decoder glue, told where the vendored runtime is served."""
    base = f"gradio_api/file={served_name(ort_assets.DIR)}/"
    return SCRIPT.read_text().replace("__ORT_BASE__", json.dumps(base))


def served_name(folder: Path) -> str:
    """How the page names a served folder: relative to the app's working folder when inside it (Gradio resolves
    it there), so the page never shows where the Space is installed; else the full path, which still works."""
    try:
        return Path(folder).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(folder)


def static_paths() -> list[Path]:
    """The folders Gradio serves as they are: the vendored runtime (only its files are in it)."""
    return [ort_assets.DIR]
