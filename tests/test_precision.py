"""The shared precision resolver: what 'auto' picks, what each device refuses, and that autocast really casts."""

import pytest
import torch

from trainer import precision
from trainer.precision import PrecisionError, resolve


def test_auto_on_cpu_is_fp32():
    p = resolve("auto", "cpu")
    assert p.name == "fp32" and p.dtype == torch.float32 and not p.uses_scaler


def test_fp16_on_cpu_is_refused_with_reason():
    with pytest.raises(PrecisionError, match="fp16.*GPU"):
        resolve("fp16", "cpu")


def test_bf16_on_cpu_runs_and_warns_only_without_bf16_instructions(monkeypatch, recwarn):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="slower"):
        resolve("bf16", "cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    recwarn.clear()
    p = resolve("bf16", "cpu")
    assert not [w for w in recwarn if "bf16" in str(w.message)]
    layer = torch.nn.Linear(4, 4)
    with p.autocast():
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16


def test_fp32_autocast_is_a_no_op_and_scaler_disabled():
    p = resolve("fp32", "cpu")
    with p.autocast():
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.float32
    assert not p.grad_scaler().is_enabled()


def test_unknown_precision_lists_choices():
    with pytest.raises(PrecisionError, match="auto, fp32, fp16, bf16"):
        resolve("fp8", "cpu")


def test_available_reports_every_precision_with_a_reason():
    table = precision.available("cpu")
    assert set(table) == {"fp32", "fp16", "bf16"}
    assert table["fp32"][0] and table["bf16"][0] and not table["fp16"][0]
    assert all(reason for _, reason in table.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_auto_on_gpu_picks_a_half_precision():
    p = resolve("auto", "cuda")
    assert p.name in ("bf16", "fp16")
    assert p.grad_scaler().is_enabled() == (p.name == "fp16")
