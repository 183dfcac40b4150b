"""The training loops' malloc settings (trainer/engine/memory.py) against the ones before and glibc's own, on the
quickstart's runs.

    python bench/bench_malloc.py [--runs sam2,detectron2,semantic,sam2-video] [--modes before,shipped]
                                 [--steps N] [--threads 2]

Each run is the quickstart's command (trainer/quickstart.py's RECIPES, evaluation included; `--steps N` shortens
the training) in a fresh interpreter, once per mode, the loops' `tune_malloc` replaced: `glibc` (nothing set),
`before` (a 1 MiB mmap threshold at every size in the engine's loop, nothing in detectron2's: the settings until
2026-12-05), `shipped`. Prints wall and CPU seconds, minor page faults and peak RSS of each, each mode's speed
against the first, and whether the runs' weights are the same bytes (malloc must change no figure). sam2-video
starts from this bench's sam2 run of the last mode.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.quickstart import IMAGE_RUN, RECIPES  # noqa: E402

# The child: the loop's tune_malloc replaced per mode, then the CLI as a user runs it.
CHILD = """
import ctypes, sys
import trainer.d2_ft.pipeline as d2
import trainer.engine.loop as loop
from trainer.engine.memory import M_MMAP_THRESHOLD
mode = sys.argv[1]
if mode == "glibc":
    loop.tune_malloc = d2.tune_malloc = lambda size: False
elif mode == "before":  # the engine's loop set a 1 MiB threshold, detectron2's set nothing
    loop.tune_malloc = lambda size: ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1
    d2.tune_malloc = lambda size: False
from trainer.cli import main
raise SystemExit(main(sys.argv[2:]))
"""
MODES = ("glibc", "before", "shipped")
RUNS = tuple(RECIPES)


def run_once(argv: list[str], mode: str, threads: int) -> dict:
    """One run in a fresh interpreter: wall / user / sys seconds, minor faults, peak RSS (its own)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen([sys.executable, "-c", CHILD, mode, *argv], env=env, stdout=log, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own usage (RUSAGE_CHILDREN's peak: all children)
        if os.waitstatus_to_exitcode(status):
            log.seek(0)
            raise SystemExit(f"python -m trainer {' '.join(argv)} failed:\n{log.read()[-3000:]}")
    return {"wall": time.perf_counter() - start, "user": usage.ru_utime, "sys": usage.ru_stime,
            "faults": usage.ru_minflt, "rss_gb": usage.ru_maxrss / 2**20}


def weights_digest(run: Path) -> str:
    return hashlib.sha256((run / "model.safetensors").read_bytes()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma list of {', '.join(RUNS)}")
    parser.add_argument("--modes", default="before,shipped", help=f"comma list of {', '.join(MODES)}")
    parser.add_argument("--steps", type=int, help="training steps of every run (default: the quickstart's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    names, modes = args.runs.split(","), args.modes.split(",")
    if not set(names) <= set(RUNS) or not set(modes) <= set(MODES):
        parser.error(f"--runs from {RUNS}, --modes from {MODES}")
    if "sam2-video" in names and "sam2" not in names:
        parser.error("sam2-video starts from this bench's sam2 run: list sam2 too")
    print(f"{'run':<11} {'malloc':<8} {'wall s':>7} {'user s':>7} {'sys s':>6} {'faults M':>9} {'RSS GB':>7}  weights")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            walls = {}
            for mode in modes:
                out = Path(tmp) / f"{name}-{mode}"
                argv = [a.replace(IMAGE_RUN, str(Path(tmp) / f"sam2-{modes[-1]}")) for a in RECIPES[name]]
                argv += ["--out", str(out)] + (["--steps", str(args.steps)] if args.steps else [])
                m = run_once(argv, mode, args.threads)
                walls[mode] = m["wall"]
                print(f"{name:<11} {mode:<8} {m['wall']:>7.1f} {m['user']:>7.1f} {m['sys']:>6.1f} "
                      f"{m['faults'] / 1e6:>9.2f} {m['rss_gb']:>7.2f}  {weights_digest(out)}", flush=True)
            first = modes[0]
            print(f"{name:<11} speed against {first}: " + ", ".join(f"{mode} {walls[first] / walls[mode]:.2f}x"
                                                                   for mode in modes[1:]), flush=True)


if __name__ == "__main__":
    main()
