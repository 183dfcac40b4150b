"""One visitor's fine-tune: their masks → COCO folder → `python -m trainer sam2` in a child process → a model repo.

A child process (not a thread) so training never holds the app's GIL or threads: other visitors' clicks keep
answering while it runs, and cancelling or a time limit kills its whole process group. The child gets a bounded
address space (SEGKIT_TRAIN_MAX_MB) and CPU time, and a minimal environment: none of the Space's secrets (HF_TOKEN,
OAUTH_CLIENT_SECRET, ...). At most SEGKIT_TRAIN_JOBS jobs run at once, one per session; one more is refused at once
with a busy message rather than queued silently. The recipe is the trainer's default with a
frozen encoder and its feature cache, and a step count sized to the data.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from demo import my_data, sessions, settings
from trainer import options
from trainer.data.export import write_coco
from trainer.runlog import RunDir
from trainer.sam2_ft.config import Sam2TrainConfig

VAL_FRACTION = 0.2
REPO_ROOT = Path(__file__).resolve().parents[1]
# what the child may see of the app's environment: paths, locale, caches, offline switches — never a token
CHILD_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT",
             "HF_HUB_OFFLINE", "XDG_CACHE_HOME", "TORCH_HOME", "SEGKIT_CACHE_DIR", "SEGKIT_DATA_DIR",
             "SEGKIT_CHECK_CACHE", "SEGKIT_OFFLINE", "PYTHONWARNINGS")
_slots_lock = threading.Lock()
_running = 0  # jobs running
_training: set[str] = set()  # sessions with a job running


class Busy(ValueError):
    """Every training slot of the Space is taken."""


def max_jobs() -> int:
    return settings.get().train_jobs


def max_seconds() -> float:
    """The job's time limit: 20 masks take ~95 s on 2 quiet cores and ~290 s while another visitor clicks back to
    back (clicks are served first), so the default leaves room for a busy Space but stops a runaway job."""
    return settings.get().train_max_s


def steps_for(num_masks: int) -> int:
    """Steps sized to the data: 2 per mask, 20..40 (a frozen-encoder step at 1024 px is ~1.6 s on 2 cores, so 20
    masks train in ~95 s with the cache fill and both evaluations; bench/README.md, *The Fine-tune tab*)."""
    fixed = settings.get().train_steps
    return fixed if fixed > 0 else max(20, min(40, 2 * num_masks))


@dataclass
class Progress:
    step: int
    steps: int
    loss: float | None
    elapsed_s: float
    losses: list[tuple[int, float]]
    done: bool = False
    summary: dict | None = None
    model_name: str | None = None
    held_out: list[str] | None = None  # ids of the images the model did not train on


@dataclass
class Start:
    """What training starts from: the app's base (weights None = random init, as the app's offline base) or a
    model folder; its sam2 size and input size."""

    weights: str | None
    size: str
    image_size: int


TAB_CLICKS = 3  # the interactive evaluation's clicks the tab shows (mIoU after 1 and 3 clicks): no more to simulate


def recipe(data: Path, out: Path, start: Start, steps: int) -> Sam2TrainConfig:
    """The trainer's default recipe (loss, prompt types, lr), encoder frozen with its feature cache; fewer objects,
    corrective clicks and cached views per step than its defaults (one view: each view is an encoder pass at 1024
    px, the largest share of a short job), and a cheap automatic-mask evaluation, so a job fits a CPU Space's
    minutes."""
    return Sam2TrainConfig(
        data=str(data), out=str(out), weights=start.weights, no_pretrained=start.weights is None, size=start.size,
        image_size=start.image_size, steps=steps, freeze="image_encoder", feature_cache=True, cache_views=1,
        correction_clicks=2, max_objects=4, warmup_steps=max(1, steps // 10), auto_points_per_side=4,
        eval_images=0, eval_clicks=TAB_CLICKS, overlays=0, save_every=steps, progress=False,
        val_fraction=VAL_FRACTION, seed=0)


def command(cfg: Sam2TrainConfig) -> list[str]:
    """The child's command line: the recipe's flags, generated from the config dataclass."""
    return [sys.executable, "-m", "trainer", "sam2", *options.to_argv(cfg)]


def _acquire(session: str | None = None) -> None:
    """A training slot, for `session` (one job per session when SEGKIT_TRAIN_JOBS allows several)."""
    global _running
    with _slots_lock:
        if _running >= max_jobs():
            raise Busy(f"the Space is training {_running} other model(s) right now (at most {max_jobs()} at a time); "
                       "try again in a minute or two — your dataset is kept")
        if session in _training:
            raise Busy("your session is already training a model: wait for it or cancel it")
        _running += 1
        if session is not None:
            _training.add(session)


def _release(session: str | None = None) -> None:
    global _running
    with _slots_lock:
        _running -= 1
        _training.discard(session)


def child_env() -> dict[str, str]:
    """The child's environment: CHILD_ENV's entries of ours, its thread count, the repo on its path."""
    env = {name: os.environ[name] for name in CHILD_ENV if name in os.environ}
    return {**env, "OMP_NUM_THREADS": str(settings.get().train_threads),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def _limit(pid: int) -> None:
    """Bound the child's address space and CPU seconds (it is killed when over), set from here as it starts (a
    preexec_fn is unsafe in the app's threaded process)."""
    limits = settings.get()
    memory = int(limits.train_max_mb * settings.MB)
    resource.prlimit(pid, resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits.train_max_s * max(1, limits.train_threads)) + 60
    resource.prlimit(pid, resource.RLIMIT_CPU, (cpu, cpu))


def _kill(proc: subprocess.Popen) -> None:
    """The child and everything it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def train(session: Path, start: Start, steps: int = 0, poll_s: float = 0.5) -> Iterator[Progress]:
    """Train on the session's masks; yields progress while the child runs, then a last Progress with done=True,
    the run summary and the new session model's name. Closing the generator (cancel) kills the child."""
    dataset = my_data.to_dataset(session)
    if len(dataset) < 2:
        raise ValueError("add masks on at least 2 images first: one is held out to measure the model")
    num_masks = sum(len(s.class_ids) for s in dataset)
    steps = steps if steps and steps > 0 else steps_for(num_masks)
    sessions.check_space(session, 160 * 2**20)  # a tiny model's weights
    _acquire(session.name)
    proc, out, finished = None, None, False
    try:
        name = f"run-{len(list((session / 'runs').glob('run-*')))}" if (session / "runs").is_dir() else "run-0"
        work = session / "runs" / name
        write_coco(dataset, work / "data")
        out = sessions.models_dir(session) / name  # the run folder is the session's model (model_config + weights)
        log = (work / "train.log").open("w")
        cfg = recipe(work / "data", out, start, steps)
        proc = subprocess.Popen(command(cfg), cwd=REPO_ROOT, env=child_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _limit(proc.pid)
        began = time.monotonic()
        losses: list[tuple[int, float]] = []
        while proc.poll() is None:
            elapsed = time.monotonic() - began
            if elapsed > max_seconds():
                _kill(proc)
                raise ValueError(f"training stopped at this Space's time limit ({max_seconds():.0f} s); "
                                 "use fewer masks or steps")
            losses = _losses(out)
            yield Progress(losses[-1][0] if losses else 0, steps, losses[-1][1] if losses else None, elapsed, losses)
            time.sleep(poll_s)
        log.close()
        if proc.returncode != 0:
            tail = (work / "train.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise ValueError(f"training failed: {tail[0] if tail else f'exit code {proc.returncode}'}")
        shutil.rmtree(out / "state", ignore_errors=True)  # resume state: not needed, and it counts against the quota
        summary = RunDir(out, create=False).read_summary()
        losses, finished = _losses(out), True
        yield Progress(steps, steps, losses[-1][1] if losses else None, time.monotonic() - began, losses, True,
                       summary, name, held_out_ids(session, dataset, out))
    finally:
        if proc is not None and proc.poll() is None:  # cancelled (generator closed) or failed while running
            _kill(proc)
        if out is not None and not finished:  # a failed or cancelled run leaves no half model behind
            shutil.rmtree(out, ignore_errors=True)
        _release(session.name)


def _losses(run: Path) -> list[tuple[int, float]]:
    """The training losses logged so far (the run's own reader leaves out a line still being written)."""
    records = RunDir(run, create=False).read_metrics()
    return [(r["step"], r["loss"]) for r in records if "loss" in r and "phase" not in r]


def held_out_ids(session: Path, dataset, run: Path) -> list[str]:
    """Images the model of run folder `run` did not train on: those without masks, then the trainer's validation
    split (the dataset's own seeded split, with the fraction and seed of the run's config.yaml, of the same images
    in the same order as the COCO folder)."""
    cfg = Sam2TrainConfig.from_dict(RunDir(run, create=False).read_config())
    unlabelled = [e["id"] for e in my_data.read_index(session)["images"] if not e["masks"]]
    _, val = dataset.split(cfg.val_fraction, cfg.seed)
    return unlabelled + [Path(ref.source).stem for ref in val.refs]
