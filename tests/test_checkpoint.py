"""Atomic safetensors weights, weights-only resume state, and clear errors for wrong or broken checkpoints."""

import random

import numpy as np
import pytest
import torch

from trainer.checkpoint import (CheckpointError, atomic_write, check_keys, load_state, load_weights, rng_state,
                                save_state, save_weights, set_rng_state)


def test_weights_round_trip(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    path = save_weights(model.state_dict(), tmp_path / "model.safetensors", {"kind": "test"})
    loaded = load_weights(path)
    assert set(loaded) == set(model.state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "model.safetensors"
    save_weights({"w": torch.ones(2)}, target)

    def crash(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt  # a kill mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert torch.equal(load_weights(target)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left behind


def test_corrupt_weights_error_names_the_file(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        load_weights(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(tmp_path / "absent.safetensors")


def test_check_keys_lists_missing_unexpected_and_shapes():
    model = torch.nn.Linear(3, 2)
    state = {"weight": torch.zeros(4, 3), "extra": torch.zeros(1)}
    with pytest.raises(CheckpointError) as err:
        check_keys(model, state, "ckpt.safetensors")
    msg = str(err.value)
    assert "ckpt.safetensors" in msg and "1 missing keys: bias" in msg
    assert "1 unexpected keys: extra" in msg and "weight: checkpoint (4, 3) vs model (2, 3)" in msg


def test_resume_state_restores_rng_and_optimizer(tmp_path):
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    save_state({"step": 7, "optimizer": opt.state_dict(), "rng": rng_state()}, tmp_path / "state.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())

    state = load_state(tmp_path / "state.pt")
    set_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert state["step"] == 7
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt2.load_state_dict(state["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


class Evil:  # any class outside torch's weights-only allowlist stands for a malicious pickle
    pass


def test_pickled_object_is_refused(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="unreadable resume state"):
        load_state(path)


def test_load_any_weights_reads_sam2_style_pt_bare_state_and_safetensors(tmp_path):
    from trainer.checkpoint import load_any_weights

    state = {"w": torch.arange(3.0)}
    torch.save({"model": state}, tmp_path / "sam2_style.pt")
    torch.save(state, tmp_path / "bare.pth")
    save_weights(state, tmp_path / "ours.safetensors")
    for name in ("sam2_style.pt", "bare.pth", "ours.safetensors"):
        assert torch.equal(load_any_weights(tmp_path / name)["w"], state["w"])
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list.pt: expected a state dict"):
        load_any_weights(tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        load_any_weights(tmp_path / "missing.pt")
