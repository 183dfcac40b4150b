"""trainer/engine/ knows no model: a trainer plugs in its objective and batches, and gets the loop, the NaN guard,
checkpoints and resume, the run session, one summary.json schema and the CLI report. Here a two-parameter linear
regression stands in for a trainer (the SAM2 trainers' own runs are in tests/test_sam2_*.py, test_video_*.py,
test_semantic_*.py); and the schema's keys are the ones the model card reads."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from trainer.checkpoint import load_weights
from trainer.engine.loop import Trainer, TrainingStopped
from trainer.engine.memory import mmap_threshold
from trainer.engine.options import LoopOptions
from trainer.engine.sampling import sample_seed
from trainer.engine.session import start_or_resume, train_session
from trainer.engine.summary import Summary, change, report
from trainer.precision import resolve
from trainer.runlog import RunDir


@dataclass
class LineConfig(LoopOptions):
    kind = "line"
    poison_step: int = -1  # a step whose batch is NaN (the NaN guard's test)


class Mse(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.model(x), y)


class LineTrainer(Trainer):
    """y = 3x - 1 from noisy seeded samples: the smallest trainer the engine can run."""

    def build_objective(self):
        return list(self.model.parameters()), Mse(self.model)

    def build_items(self, step: int, micro: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(sample_seed(self.cfg.seed, step, micro))
        x = torch.randn(self.cfg.batch_size, 1, generator=gen)
        y = 3 * x - 1 + 0.01 * torch.randn(x.shape, generator=gen)
        return [x * float("nan"), y] if step == self.cfg.poison_step else [x, y]


def _trainer(**kw) -> LineTrainer:
    torch.manual_seed(0)
    cfg = LineConfig(**{"steps": 30, "batch_size": 8, "lr": 0.3, "warmup_steps": 0, "progress": False,
                        "workers": 0, "save_every": 0, **kw})
    return LineTrainer(cfg, torch.nn.Linear(1, 1), None, resolve("fp32", "cpu"))


def _losses(run: RunDir) -> list[float]:
    return [r["loss"] for r in run.read_metrics() if "loss" in r]


def test_a_paused_and_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    whole = RunDir(tmp_path / "whole")
    trainer = _trainer()
    start_or_resume(trainer, whole)
    assert train_session(trainer, whole)[0] == "finished"
    assert _losses(whole)[-1] < _losses(whole)[0] / 10  # it learns

    split = RunDir(tmp_path / "split")
    first = _trainer(stop_after=12)
    start_or_resume(first, split)
    assert train_session(first, split)[0] == "paused"
    second = _trainer(resume=True)
    second.model.load_state_dict(load_weights(split.weights_path))  # as a trainer builds its model on resume
    start_or_resume(second, split)
    assert second.step == 12
    assert train_session(second, split)[0] == "finished"
    assert _losses(split) == pytest.approx(_losses(whole), rel=1e-6)
    torch.testing.assert_close(second.model.weight, trainer.model.weight)


def test_the_nan_guard_skips_a_bad_step_and_stops_a_run_of_them(tmp_path):
    run = RunDir(tmp_path / "run")
    trainer = _trainer(poison_step=2)
    start_or_resume(trainer, run)
    with pytest.warns(UserWarning, match="step 3: non-finite"):
        assert train_session(trainer, run)[0] == "finished"
    assert [r.get("skipped", 0) for r in run.read_metrics()] == [0, 0, 1] + [0] * 27

    stopped = _trainer(poison_step=0, max_bad_steps=1)
    start_or_resume(stopped, RunDir(tmp_path / "stopped"))
    with pytest.warns(UserWarning), pytest.raises(TrainingStopped):
        stopped.train_step()


def test_summary_has_the_keys_the_card_reads_and_one_report(tmp_path, capsys):
    summary = Summary(kind="sam2", base_model="random-init", model={"size": "tiny"}, dataset={"path": "builtin"},
                      recipe={"steps": 2}, before={"miou_box": 0.1}, after={"miou_box": 0.5}, main_metric="miou_box",
                      train_time_s=12.345, speed={"images_per_s": 1.23456}, status="paused",
                      sections={"per_class": {"before": {}, "after": {}}})
    written = summary.write(RunDir(tmp_path / "run"))
    assert set(written) == {"kind", "base_model", "model", "dataset", "recipe", "metrics", "main_metric",
                            "train_time_s", "images_per_s", "status", "per_class"}
    assert written["metrics"] == {"before": {"miou_box": 0.1}, "after": {"miou_box": 0.5}}
    assert (written["train_time_s"], written["images_per_s"]) == (12.35, 1.235)
    assert change(written, "miou_box") == "0.100 -> 0.500"
    result = SimpleNamespace(path=tmp_path / "run", status="paused", summary=written)
    report(result, "sam2", ["mIoU " + change(written, "miou_box")])
    out = capsys.readouterr().out
    assert "run paused: " in out and "mIoU 0.100 -> 0.500" in out and "1.24 images/s over 12 s" in out
    assert f"continue with: python -m trainer sam2 --out {tmp_path / 'run'} --resume" in out
    assert "status" not in Summary(**{**summary.__dict__, "status": None}).to_dict()  # detectron2 records none


def test_auto_views_are_tied_to_the_run_length_and_the_cache_budget():
    from trainer.engine.images import run_views

    def views(samples: int, cached: bool = True, image_size: int = 1024, **flags) -> int:
        cfg = vars(LoopOptions(**flags))  # + the model's image size and whether the encoder is cached, as a trainer's
        return run_views(SimpleNamespace(**cfg, image_size=image_size, cache_features=cached), samples)

    assert views(24, image_size=256) == 8  # the quickstart (300 steps x 2 over 24 images): 25 draws each, as before
    assert views(6, steps=32, image_size=1024) == 3  # 64 draws over 6 images: each view drawn ~3 times
    assert views(6, steps=32, image_size=1024, cache_views=8) == 8  # asked for: kept
    assert views(500, steps=2000, image_size=1024) == 1  # 500 x 42 MiB > --cache-budget 2048: one view each
    assert views(40, steps=2000, image_size=1024, cache_budget=4096) == 2  # 100 draws each, but 4 GiB holds 2 each
    assert views(40, steps=2000, image_size=1024, cache_dir="/x") == 8  # a disk tier holds every view
    assert views(6, cached=False) == 0  # a trained encoder: a fresh augmentation every step


def test_large_frees_go_back_to_the_system_at_1024_px_and_are_reused_at_256():
    """Half of 100 blocks of 2 MiB freed, after a freed 16 MiB block raised glibc's mmap threshold as a step's tensors
    do (each process starts fresh): kept by the heap by default; returned once tune_malloc(1024) ran (2 MiB is above
    its 1 MiB threshold: the 1024-px cache's bound, issue 26); kept for the next step after tune_malloc(256) (below
    its 16 MiB: reused, not faulted in again)."""
    import subprocess
    import sys

    script = """
import sys
import numpy as np
from trainer.engine.memory import tune_malloc
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
if sys.argv[1] != "default":
    assert tune_malloc(int(sys.argv[1]))
big = np.ones(16 << 20, np.uint8)
del big
blocks = [np.ones(2 << 20, np.uint8) for _ in range(100)]
before = rss()
del blocks[::2]
print((before - rss()) / 2**20)
"""
    freed = {size: float(subprocess.run([sys.executable, "-c", script, size], capture_output=True, text=True,
                                        check=True).stdout) for size in ("default", "1024", "256")}
    assert freed["default"] < 50 and freed["1024"] > 90 and freed["256"] < 50, freed


def test_the_mmap_threshold_follows_the_step_scale():
    assert mmap_threshold(1024) == mmap_threshold(2048) == 1 << 20  # never under 1 MiB
    assert mmap_threshold(256) == 16 << 20
    assert mmap_threshold(128) == mmap_threshold(64) == 32 << 20  # glibc's largest
