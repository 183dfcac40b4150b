"""How long does one click take to decode: the exported ONNX decoder under onnxruntime vs PyTorch eager (issue 32).

Baselines measured in the same run, alternating rounds, on one image's features at the model's size:
    torch      sam2's prompt encoder + mask decoder in PyTorch eager (onnx_export.PromptDecoder, the graph's source)
    app        the app's PointDecoder, its image-side work done once (what a click costs the Space today)
    onnx       the exported graph in onnxruntime on CPU (what the browser runs in onnxruntime-web)
Each figure is the median over rounds of a click's low-res logits (no upsampling, the same work in all three).

    PYTHONPATH=. .venv/bin/python bench/bench_onnx_decoder.py --image-size 1024 --rounds 5 --clicks 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    import onnxruntime

    from trainer.sam2_model.model import Sam2Spec, build_model, inference_mode
    from trainer.sam2_model.onnx_export import INPUTS, PromptDecoder, example_inputs, export_decoder, onnx_inputs
    from trainer.sam2_model.point_decoder import PointDecoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=20, help="clicks timed per round and path")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", args.image_size))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export_decoder(model, Path(tmp) / "decoder.onnx")
        export_s = time.perf_counter() - start
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        size_mb = path.stat().st_size / 2**20
    g = torch.Generator().manual_seed(0)
    embed, high_0, high_1, *_ = example_inputs(model)
    features = {"image_embed": torch.randn(embed.shape, generator=g),
                "high_res_feats": [torch.randn(high_0.shape, generator=g), torch.randn(high_1.shape, generator=g)]}
    clicks = [(np.random.default_rng(i).uniform(0, args.image_size, (1 + i % 3, 2)), np.ones(1 + i % 3))
              for i in range(args.clicks)]
    torch_decoder = PromptDecoder(model).eval()
    with inference_mode(model):
        app_decoder = PointDecoder(model, features["image_embed"], features["high_res_feats"]).precompute()
        paths = {
            "torch": lambda c, lab: torch_decoder(*(torch.from_numpy(v) for v in onnx_inputs(features, c, lab).values())),
            "app": lambda c, lab: app_decoder(torch.from_numpy(c[None]).float(), torch.from_numpy(lab[None]).int(),
                                              multimask=len(lab) == 1),
            "onnx": lambda c, lab: session.run(None, onnx_inputs(features, c, lab)),
        }
        assert list(onnx_inputs(features, *clicks[0])) == list(INPUTS)
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
          f"export {export_s:.1f} s, {size_mb:.1f} MiB")
    print("| path | ms per click (median) | vs torch eager |")
    print("|---|---|---|")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.1f} | {medians['torch'] / ms:.2f}x |")


if __name__ == "__main__":
    main()
