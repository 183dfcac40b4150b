"""How long does one click take to decode: the exported per-click ONNX graph under onnxruntime vs PyTorch (issue 32).

Baselines measured in the same run, alternating rounds, on one image's features at the model's size:
    torch        sam2's prompt encoder + mask decoder in PyTorch eager (onnx_export.PromptDecoder, the reference)
    app          the app's PointDecoder, its image-side work done once (what a click costs the Space's server path)
    onnx plain   sam2's plain decoder exported as one graph (what the page ran before: image features in)
    onnx         the exported per-click graph (onnx_export.ClickDecoder, the image side given: what the page runs)
Each figure is the median over rounds of a click's 4 low-res logits (no upsampling, the same work in all).
`--threads` sets both PyTorch's and onnxruntime's intra-op threads (the browser's onnxruntime-web runs one).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_onnx_decoder.py --image-size 1024 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from trainer.sam2_model.model import Sam2Spec, build_model, inference_mode  # noqa: E402
from trainer.sam2_model.onnx_export import (OPSET, PromptDecoder, export_decoder, image_inputs,  # noqa: E402
                                            onnx_inputs, random_features)
from trainer.sam2_model.point_decoder import PointDecoder  # noqa: E402


class PlainDecoder(torch.nn.Module):
    """sam2's decoder with the image's features as graph inputs: the page's graph before the split."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.reference = PromptDecoder(model)

    def forward(self, image_embed, high_0, high_1, coords, labels):
        return self.reference({"image_embed": image_embed, "high_res_feats": [high_0, high_1]}, coords, labels)


def export_plain(model: torch.nn.Module, path: Path) -> Path:
    features = random_features(model)
    example = (features["image_embed"], *features["high_res_feats"], torch.zeros(1, 2, 2), torch.ones(1, 2))
    points = torch.export.Dim("points", min=1, max=64)
    shapes = (None, None, None, {1: points}, {1: points})
    with torch.no_grad():
        torch.onnx.export(PlainDecoder(model).eval(), example, dynamo=True, dynamic_shapes=shapes,
                          opset_version=OPSET, external_data=False).save(str(path))
    return path


def session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=20, help="clicks timed per round and path")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", args.image_size)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export_decoder(model, Path(tmp) / "decoder.onnx")
        export_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 2**20
        click_graph = session(path, args.threads)
        plain_graph = session(export_plain(model, Path(tmp) / "plain.onnx"), args.threads)
    features = random_features(model)
    start = time.perf_counter()
    image = image_inputs(model, features)
    image_side_ms = (time.perf_counter() - start) * 1000
    plain_feed = [v.numpy() for v in (features["image_embed"], *features["high_res_feats"])]
    plain_names = [i.name for i in plain_graph.get_inputs()]
    clicks = [(np.random.default_rng(i).uniform(0, args.image_size, (1 + i % 3, 2)), np.ones(1 + i % 3))
              for i in range(args.clicks)]
    reference = PromptDecoder(model).eval()
    with inference_mode(model):
        app_decoder = PointDecoder(model, features["image_embed"], features["high_res_feats"]).precompute()
        paths = {
            "torch": lambda c, lab: reference(features, torch.from_numpy(c[None]).float(),
                                              torch.from_numpy(lab[None]).int()),
            "app": lambda c, lab: app_decoder(torch.from_numpy(c[None]).float(), torch.from_numpy(lab[None]).int()),
            "onnx plain": lambda c, lab: plain_graph.run(None, dict(zip(plain_names, [
                *plain_feed, c[None].astype(np.float32), lab[None].astype(np.float32)]))),
            "onnx": lambda c, lab: click_graph.run(None, onnx_inputs(image, c, lab)),
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, decode in paths.items():
                decode(*clicks[0])  # warm
                start = time.perf_counter()
                for coords, labels in clicks:
                    decode(coords, labels)
                times[name].append((time.perf_counter() - start) / len(clicks) * 1000)
    medians = {name: statistics.median(v) for name, v in times.items()}
    print(f"sam2.1 tiny at {args.image_size} px, {args.threads} threads, {args.rounds} rounds x {args.clicks} clicks; "
          f"export {export_s:.1f} s, {size_mb:.1f} MiB; image side (once per image, PyTorch) {image_side_ms:.0f} ms")
    print("| path | ms per click (median) | vs torch eager | vs onnx plain |")
    print("|---|---|---|---|")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.1f} | {medians['torch'] / ms:.2f}x | {medians['onnx plain'] / ms:.2f}x |")


if __name__ == "__main__":
    main()
