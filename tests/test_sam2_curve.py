"""A fixed-seed SAM2 run gives the loss curve it gave before the trainers were moved onto trainer/engine/ (issue 26).

The numbers were recorded from main at 8c3c69b, before any of the move, with

    python -m trainer sam2 --data builtin --no-pretrained --image-size 64 --steps 4 --batch-size 2 \
        --warmup-steps 0 --lr 1e-4 --no-eval --overlays 0 --no-progress --seed 0 --device cpu --out RUN

(metrics.jsonl: loss and grad_norm of steps 1-4; the default then was `--cache-views 8`, which the test now pins, since
the default became "auto": views tied to the run's length, 1 per image for 4 steps; likewise `--centre-clicks 0`, the
corrective-click rule then, since the default became 0.5 in issue 29). Two runs of that command agree to 1e-6; the tolerance leaves room
for other CPUs' float summation order, not for a changed step.
"""

import json

import pytest

from trainer.cli import main

RECORDED = [  # (loss, grad_norm) per step
    (1.724359154701233, 1.55343496799469),
    (1.6966869831085205, 1.2096248865127563),
    (1.699241042137146, 1.4983363151550293),
    (1.665204405784607, 1.6260876655578613),
]


def test_fixed_seed_sam2_run_keeps_its_recorded_loss_curve(tmp_path):
    argv = ("sam2 --data builtin --no-pretrained --image-size 64 --steps 4 --batch-size 2 --warmup-steps 0 "
            f"--lr 1e-4 --no-eval --overlays 0 --no-progress --seed 0 --device cpu --cache-views 8 --centre-clicks 0 "
            f"--out {tmp_path / 'run'}").split()
    assert main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["loss"], r["grad_norm"]) for r in rows if "loss" in r]
    assert len(curve) == len(RECORDED)
    for got, want in zip(curve, RECORDED):
        assert got == pytest.approx(want, rel=1e-4)
