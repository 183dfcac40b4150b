"""The video trainer's start for a memory that never trained (trainer/video/model.py: start_local): memory
attention's cross-attention first reads the same place in the remembered frames, on a real random-init SAM2Train."""

from __future__ import annotations

import json

import pytest
import torch
from sam2.modeling.position_encoding import apply_rotary_enc

from trainer.video.config import VideoTrainConfig
from trainer.video.model import VideoSpec, build_train_model, memory_untrained


def attention_to_same_place(model: torch.nn.Module, side: int) -> float:
    """Mean weight a query puts on the key at its own position (one remembered frame of side x side positions), for
    random features through the first layer's cross-attention, as MemoryAttentionLayer feeds it."""
    layer = model.memory_attention.layers[0]
    attention = layer.cross_attn_image
    generator = torch.Generator().manual_seed(0)
    queries = layer.norm2(torch.randn(1, side * side, 256, generator=generator))
    memory = torch.randn(1, side * side, 64, generator=generator)
    with torch.no_grad():
        q = attention.q_proj(queries)[:, None]
        k = attention.k_proj(memory)[:, None]
        attention.freqs_cis = attention.compute_cis(end_x=side, end_y=side)
        q, k = apply_rotary_enc(q, k, freqs_cis=attention.freqs_cis, repeat_freqs_k=True)
        weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1)[0, 0]
    return float(weights.diagonal().mean())


@pytest.mark.parametrize("start, local", [("local", True), ("as-is", False), ("auto", True)])
def test_memory_attention_starts_reading_the_same_place(start, local, one_thread):
    cfg = VideoTrainConfig(no_pretrained=True, image_size=128, memory_start=start).validate()
    model = build_train_model(cfg, None, torch.device("cpu"))  # random init: auto starts local
    same_place = attention_to_same_place(model, side=8)
    # 64 positions: an untrained attention spreads its weight (~1/64 each); a local one puts most of it where it is
    assert (same_place > 0.3) if local else (same_place < 0.05), same_place


def test_a_resumed_run_keeps_its_trained_memory_attention(one_thread):
    cfg = VideoTrainConfig(no_pretrained=True, image_size=128, memory_start="local").validate()
    model = build_train_model(cfg, None, torch.device("cpu"), start=False)
    assert attention_to_same_place(model, side=8) < 0.05


def test_which_bases_have_an_untrained_memory(tmp_path):
    from demo.testing import make_sam2_repo
    from trainer.sam2_model.spec import save_spec

    assert memory_untrained(None)  # random init
    assert memory_untrained(make_sam2_repo(tmp_path / "image-model", image_size=128))  # images never run the memory
    video = tmp_path / "video-model"
    video.mkdir()
    save_spec(VideoSpec("tiny", 128), video)
    assert not memory_untrained(video)
    assert not memory_untrained(tmp_path / "sam2.1_hiera_tiny.pt")  # a checkpoint file: the official weights
    for model_type, untrained in (("sam2", True), ("sam2_video", False)):  # transformers' Sam2Model / Sam2VideoModel
        hf = tmp_path / model_type
        hf.mkdir()
        (hf / "config.json").write_text(json.dumps({"model_type": model_type}))
        (hf / "model.safetensors").write_bytes(b"")
        assert memory_untrained(hf) == untrained, model_type


def test_memory_start_must_be_a_known_choice(capsys):
    from trainer.cli import main

    with pytest.raises(SystemExit):
        main(["sam2-video", "--memory-start", "sideways"])
    assert "--memory-start: invalid choice: 'sideways'" in capsys.readouterr().err
