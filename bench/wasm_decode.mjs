// One graph's decode time in onnxruntime-web's WebAssembly build (the vendored one the page runs), under node:
//   node bench/wasm_decode.mjs ORT_DIR GRAPH.onnx FEEDS RUNS   (FEEDS.json: [[name, shape, byte offset]], FEEDS.bin)
// prints one JSON line: wall and CPU ms per run (CPU: this process's user + system time, what a loaded machine
// inflates least), after 2 warm-up runs. Used by bench_wasm_decoder.py.
import { createRequire } from "module";
import fs from "fs";
import { pathToFileURL } from "url";

const [ortDir, graph, feedsPath, runs] = process.argv.slice(2);
const ort = createRequire(import.meta.url)(`${ortDir}/ort.wasm.min.js`);
ort.env.wasm.numThreads = 1;  // as the page: no cross-origin isolation, no threads
ort.env.wasm.wasmPaths = pathToFileURL(`${ortDir}/`).href;
const session = await ort.InferenceSession.create(fs.readFileSync(graph), { executionProviders: ["wasm"] });
const bytes = fs.readFileSync(`${feedsPath}.bin`);
const feeds = {};
for (const [name, shape, offset] of JSON.parse(fs.readFileSync(`${feedsPath}.json`))) {
  const count = shape.reduce((a, b) => a * b, 1);
  feeds[name] = new ort.Tensor("float32", new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset,
                                                                              bytes.byteOffset + offset + 4 * count)), shape);
}
for (let i = 0; i < 2; i++) await session.run(feeds);
const wall = [], cpu = [];
for (let i = 0; i < Number(runs); i++) {
  const start = performance.now(), used = process.cpuUsage();
  await session.run(feeds);
  wall.push(performance.now() - start);
  const spent = process.cpuUsage(used);
  cpu.push((spent.user + spent.system) / 1000);
}
console.log(JSON.stringify({ wall, cpu }));
