"""SAM2 video: propagation speed, fine-tuning speed (cached vs re-encoded frames), peak memory per clip length.

    PYTHONPATH=. python bench/bench_video.py [--size 512] [--threads 2] [--frames 8] [--rounds 3]
    PYTHONPATH=. python bench/bench_video.py --only memory --lengths 2,4,8,16

Random-init sam2.1 tiny on the built-in clips (frames upscaled to the model's input where needed).
- propagation: sam2's SAM2VideoPredictor tracking the clip's objects from the first frame's masks (init_state,
  add_new_mask, propagate_in_video), frames/s at --size px on --threads torch threads.
- fine-tuning: clips/s of `trainer sam2-video` steps (VideoTrainer.train_step) with the frozen encoder's per-frame
  features cached (after the cache holds them) against the naive loop, which re-encodes every frame every step
  (--no-feature-cache); rounds alternate, median ratio.
- memory: one training step per clip length in a fresh process: its peak resident memory (sampled every 2 ms)
  above the resident memory just before the step (model and data loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from PIL import Image

warnings.filterwarnings("ignore")


def propagation(size: int, clips: int) -> None:
    from trainer.data.clips import load_clips
    from trainer.video.evaluate import quiet_bars, track_clip, write_frames
    from trainer.video.model import VideoSpec, build_predictor

    predictor = build_predictor(VideoSpec("tiny", size), None)
    _, val = load_clips("builtin").split(0.2, 0)
    rates = []
    for index in range(clips):
        clip = val[index]
        shape = (size * 4 // 3, size)  # 4:3 frames, the shorter side at the model's input size
        clip.frames = [np.asarray(Image.fromarray(f).resize(shape)) for f in clip.frames]
        clip.masks = np.stack([np.stack([np.asarray(Image.fromarray(m).resize(shape)) for m in frame])
                               for frame in clip.masks])
        with tempfile.TemporaryDirectory() as tmp, quiet_bars(), torch.inference_mode():
            state = predictor.init_state(str(write_frames(clip.frames, tmp)))
            start = time.perf_counter()
            track_clip(predictor, clip, "mask", state)
            rates.append(clip.num_frames / (time.perf_counter() - start))
        print(f"  clip {index}: {clip.num_frames} frames, {clip.masks.shape[1]} objects: {rates[-1]:.2f} frames/s")
    print(f"propagation at {size} px ({torch.get_num_threads()} threads): median {np.median(rates):.2f} frames/s "
          f"(all objects of a clip tracked together; mask prompt on frame 0)")


def trainer(frames: int, size: int, cache: bool, clips: int = 2):
    from trainer.data.clips import load_clips
    from trainer.precision import resolve
    from trainer.video.batches import TrainingClips
    from trainer.video.config import VideoTrainConfig
    from trainer.video.loop import VideoTrainer
    from trainer.video.model import build_train_model

    cfg = VideoTrainConfig(no_pretrained=True, image_size=size, frames=frames, augment="none", cache_views=1,
                           feature_cache=cache, correction_points=2, progress=False, lr=1e-4).validate()
    train, _ = load_clips("builtin").split(0.2, 0)
    model = build_train_model(cfg, None, torch.device("cpu"))
    return VideoTrainer(cfg, model, TrainingClips.for_run(train[:clips], cfg), resolve("fp32", "cpu"))


def fine_tuning(frames: int, size: int, rounds: int, steps: int) -> None:
    cached, naive = trainer(frames, size, True), trainer(frames, size, False)
    for _ in range(2):  # warm-up; the cached trainer's 2 clips (1 view each) are then in its cache
        cached.train_step(), naive.train_step()

    def rate(t) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            t.train_step()
        return steps / (time.perf_counter() - start)

    pairs = [(rate(naive), rate(cached)) for _ in range(rounds)]
    base, ratio = np.median([p[0] for p in pairs]), np.median([c / n for n, c in pairs])
    print(f"fine-tuning, {frames} frames at {size} px: naive (re-encodes every frame) {base:.3f} clips/s; cached "
          f"{ratio:.2f}x that (rounds: {', '.join(f'{c / n:.2f}' for n, c in pairs)}); cache holds "
          f"{len(cached.objective.cache)} frames, {cached.objective.cache.nbytes / 2**20:.1f} MiB")


def resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def memory_child(frames: int, size: int) -> None:
    import threading

    t = trainer(frames, size, True, clips=1)
    base, peak, done = resident_mib(), [0.0], threading.Event()

    def poll() -> None:  # ru_maxrss would keep the model build's peak: sample the resident memory instead
        while not done.is_set():
            peak[0] = max(peak[0], resident_mib())
            time.sleep(0.002)

    watcher = threading.Thread(target=poll)
    watcher.start()
    t.train_step()
    done.set()
    watcher.join()
    print(json.dumps({"frames": frames, "rss_mib": peak[0], "step_mib": peak[0] - base}))


def memory(lengths: list[int], size: int) -> None:
    from trainer.data.builtin_clips import FRAMES

    print(f"peak memory of one training step at {size} px, by clip length (fresh process each; built-in clips have "
          f"{FRAMES} frames, so longer clips are not measured):")
    for frames in [n for n in lengths if n <= FRAMES]:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(frames), "--size", str(size)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": "."})
        row = json.loads(out.stdout.strip().splitlines()[-1])
        before = row["rss_mib"] - row["step_mib"]
        print(f"  {frames:2d} frames: the step's peak {row['step_mib']:.0f} MiB above the {before:.0f} MiB resident "
              "before it")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--clips", type=int, default=2, help="held-out clips propagated")
    parser.add_argument("--lengths", default="2,4,8,12")
    parser.add_argument("--only", default="propagation,fine-tuning,memory")
    parser.add_argument("--memory-child", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args.memory_child, args.size)
    only = args.only.split(",")
    if "propagation" in only:
        propagation(args.size, args.clips)
    if "fine-tuning" in only:
        fine_tuning(args.frames, args.train_size, args.rounds, args.steps)
    if "memory" in only:
        memory([int(n) for n in args.lengths.split(",")], args.train_size)


if __name__ == "__main__":
    main()
