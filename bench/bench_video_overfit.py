"""SAM2 video: overfit one clip — train `trainer sam2-video` on a single built-in training clip and score J&F on that
same clip (issue 29's sanity check: the loss must fall and J&F should pass 0.8 on a clip the model has memorised).

    PYTHONPATH=. python bench/bench_video_overfit.py [--weights RUN] [--image-size 128] [--frames 5] [--steps 100]
        [--lr 1e-3] [--train memory_attention,memory_encoder,mask_decoder,obj_ptr] [--memory-start auto] [--clip 0]
        [--seed 0]

The clip is cut to its first --frames frames and every step trains on all of them, so training sees exactly the
frames that are scored; no augmentation, the first frame's mask as the prompt (as J&F is scored). Prints the loss
every 10 steps, J&F before -> after on the clip, and the two references (nothing predicted, frame 0's mask copied).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="start from this SAM2 (image or video) run; default random")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train", default="memory_attention,memory_encoder,mask_decoder,obj_ptr")
    parser.add_argument("--memory-start", default="auto", choices=("auto", "local", "as-is"),
                        help="memory attention at the start (sam2-video --memory-start)")
    parser.add_argument("--clip", type=int, default=0, help="index of the built-in training clip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from trainer.data.clips import load_clips
    from trainer.data.sample import SampleRef, SegmentationDataset
    from trainer.video.config import VideoTrainConfig
    from trainer.video.pipeline import run

    data = load_clips("builtin")
    clip = data.split(0.2, 0)[0][args.clip]
    clip.frames, clip.masks = clip.frames[:args.frames], clip.masks[:args.frames]
    ref = SampleRef(clip.source, lambda: clip)
    # the same clip on both sides: trained on, then scored
    one = SegmentationDataset(data.class_names, [ref, dataclasses.replace(ref, split="heldout")])
    with tempfile.TemporaryDirectory(prefix="segkit-overfit-") as out:
        cfg = VideoTrainConfig(
            weights=args.weights, no_pretrained=args.weights is None, image_size=args.image_size, frames=args.frames,
            augment="none", cache_views=1, point_prob=0.0, correct_frames=1, correction_points=0, train=args.train,
            memory_start=args.memory_start, lr=args.lr, steps=args.steps, seed=args.seed, progress=False, overlays=0,
            out=out).validate()
        start = time.perf_counter()
        summary = run(cfg, one).summary
        seconds = time.perf_counter() - start
        losses = [r for r in map(json.loads, open(f"{out}/metrics.jsonl")) if "loss" in r]
    print("loss:", ", ".join(f"{r['step']}: {r['loss']:.3f}" for r in losses if r["step"] % 10 == 0 or r["step"] == 1))
    before, after, refs = summary["metrics"]["before"], summary["metrics"]["after"], summary["references"]["metrics"]
    print(f"J&F on the trained clip, first-frame mask: {before['jf_mask']:.3f} -> {after['jf_mask']:.3f} "
          f"(references: nothing predicted {refs['jf_none']:.3f}, frame 0's mask copied {refs['jf_copy']:.3f}); "
          f"{args.steps} steps, {args.frames} frames at {args.image_size} px, lr {args.lr:g}, memory start "
          f"{args.memory_start}, {seconds:.0f} s")


if __name__ == "__main__":
    main()
