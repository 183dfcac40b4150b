"""One click's decode in onnxruntime-web's WebAssembly build (the vendored runtime the page runs, under node, one
thread): sam2's plain decoder graph (what the page ran before) against the per-click graph (onnx_export.ClickDecoder,
as the page gets it), alternating rounds in one run (issue 32).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_wasm_decoder.py --image-size 1024 --rounds 4

Needs node and the vendored runtime (python demo/ort_assets.py). Prints medians of wall and CPU ms per click (CPU:
the node process's own time, what shared cores inflate least).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: bench_onnx_decoder beside it

from bench_onnx_decoder import export_plain  # noqa: E402
from demo import ort_assets  # noqa: E402
from trainer.sam2_model.model import Sam2Spec, build_model  # noqa: E402
from trainer.sam2_model.onnx_export import (export_decoder, image_inputs, onnx_inputs,  # noqa: E402
                                            random_features)

SCRIPT = Path(__file__).resolve().parent / "wasm_decode.mjs"


def write_feeds(feed: dict[str, np.ndarray], path: Path) -> Path:
    """FEEDS.json + FEEDS.bin as wasm_decode.mjs reads them."""
    index, offset = [], 0
    with open(path.with_suffix(".bin"), "wb") as f:
        for name, values in feed.items():
            values = np.ascontiguousarray(values, np.float32)
            index.append([name, list(values.shape), offset])
            f.write(values.tobytes())
            offset += values.nbytes
    path.with_suffix(".json").write_text(json.dumps(index))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5, help="decodes timed per round and graph")
    args = parser.parse_args()
    if shutil.which("node") is None or not ort_assets.ready():
        sys.exit("needs node and the vendored onnxruntime-web (python demo/ort_assets.py)")
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", args.image_size)).eval()
    features = random_features(model)
    click = np.array([[args.image_size * 0.45, args.image_size * 0.4]]), np.array([1.0])
    with tempfile.TemporaryDirectory(prefix="bench-wasm-") as tmp:
        tmp = Path(tmp)
        plain = export_plain(model, tmp / "plain.onnx")
        split = export_decoder(model, tmp / "decoder.onnx")
        plain_feed = dict(zip(("image_embed", "high_0", "high_1", "coords", "labels"),
                              (features["image_embed"].numpy(), *(f.numpy() for f in features["high_res_feats"]),
                               click[0][None], click[1][None])))
        graphs = {"plain (sam2's decoder, features in)": (plain, write_feeds(plain_feed, tmp / "plain-feed")),
                  "per-click (ClickDecoder)": (split, write_feeds(
                      onnx_inputs(image_inputs(model, features), *click), tmp / "split-feed"))}
        times = {name: {"wall": [], "cpu": []} for name in graphs}
        for _ in range(args.rounds):
            for name, (graph, feeds) in graphs.items():
                out = subprocess.run(["node", str(SCRIPT), str(ort_assets.DIR), str(graph), str(feeds),
                                      str(args.runs)], capture_output=True, text=True, check=True)
                for key, values in json.loads(out.stdout.strip().splitlines()[-1]).items():
                    times[name][key] += values
        sizes = {name: graph.stat().st_size / 2**20 for name, (graph, _) in graphs.items()}
    print(f"sam2.1 tiny at {args.image_size} px, onnxruntime-web {ort_assets.VERSION} WASM (node, 1 thread), "
          f"{args.rounds} rounds x {args.runs} decodes, one click")
    print("| graph | MiB | wall ms (median) | CPU ms (median) |")
    print("|---|---|---|---|")
    for name, t in times.items():
        wall, cpu = statistics.median(t["wall"]), statistics.median(t["cpu"])
        print(f"| {name} | {sizes[name]:.1f} | {wall:.0f} | {cpu:.0f} |")
    base, new = (statistics.median(t["cpu"]) for t in times.values())
    print(f"per-click graph: {base / new:.2f}x the plain graph (CPU time)")


if __name__ == "__main__":
    main()
