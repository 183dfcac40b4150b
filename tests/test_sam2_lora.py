"""LoRA on the image encoder (peft) and gradient checkpointing, on a real random-init sam2.1 tiny at 128 px."""

import numpy as np
import pytest
import safetensors.torch
import torch

from test_sam2_train import SIZE, _model, data  # noqa: F401 - the same tiny model and data fixture
from test_sam2_train import _cfg as train_cfg
from trainer.checkpoint import load_weights
from trainer.precision import resolve
from trainer.runlog import RunDir
from trainer.sam2_ft import lora
from trainer.sam2_ft.config import Sam2TrainConfig
from trainer.sam2_ft.trainer import Sam2Trainer
from trainer.sam2_model.model import Sam2Spec, build_model, make_predictor


def _cfg(**kw) -> Sam2TrainConfig:
    return train_cfg(**{**dict(lr=1e-3, prompts="box", correction_clicks=0), **kw}).validate()


def _predict(model: torch.nn.Module, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predictor = make_predictor(model.eval())
    with torch.inference_mode():
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(point_coords=np.array([[60, 70]]), point_labels=np.array([1]),
                                             multimask_output=True, return_logits=True)
    return masks, scores


def test_lora_trains_adapters_only_then_merges_into_a_plain_sam2_checkpoint(data, tmp_path):
    model = _model()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Sam2Trainer(_cfg(steps=2, lora=4), model, data, resolve("fp32", "cpu"))
    assert trainer.objective.cache is None  # the encoder changes: no feature cache
    adapters = lora.adapter_parameters(model)
    assert adapters and all(p.requires_grad for p in adapters)
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("image_encoder.")
                   and ".lora_" not in n)
    losses = [trainer.train_step()["loss"] for _ in range(2)]
    assert all(np.isfinite(losses))

    state = model.state_dict()
    lora_b = [k for k in state if ".lora_B." in k]
    assert len(lora_b) == 2 * len(model.image_encoder.trunk.blocks)  # qkv + proj of every Hiera block
    assert all(state[k].abs().sum() > 0 for k in lora_b)  # peft starts B at zero: these trained
    for key, value in base.items():  # the encoder's own weights did not move (they sit under .base_layer now)
        if key.startswith("image_encoder."):
            moved = key.replace(".attn.qkv.", ".attn.qkv.base_layer.").replace(".attn.proj.", ".attn.proj.base_layer.")
            assert torch.equal(state[moved], value), key

    run = RunDir(tmp_path / "run")
    trainer.save(run)
    merged = load_weights(run.weights_path)
    assert set(merged) == set(base)  # sam2's own key layout, no peft keys
    assert not torch.equal(merged["image_encoder.trunk.blocks.0.attn.qkv.weight"],
                           base["image_encoder.trunk.blocks.0.attn.qkv.weight"])

    # plain sam2, as README says: a .pt from the safetensors, then build_sam2
    from sam2.build_sam import build_sam2

    torch.save({"model": safetensors.torch.load_file(run.weights_path)}, tmp_path / "model.pt")
    plain = build_sam2(Sam2Spec("tiny", SIZE).config, str(tmp_path / "model.pt"), device="cpu",
                       hydra_overrides_extra=[f"++model.image_size={SIZE}"])
    image = data.dataset[0].image
    ours_masks, ours_scores = _predict(model, image)
    plain_masks, plain_scores = _predict(plain, image)
    torch.testing.assert_close(plain_masks, ours_masks, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(plain_scores, ours_scores, atol=1e-4, rtol=1e-4)
    base_masks, _ = _predict(_model(), image)
    assert np.abs(base_masks - ours_masks).max() > 1e-2  # LoRA changed what the model predicts


def test_lora_resume_restores_the_adapters_on_the_merged_weights(data, tmp_path):
    model = _model()
    trainer = Sam2Trainer(_cfg(steps=4, lora=2), model, data, resolve("fp32", "cpu"))
    trainer.train_step()
    run = RunDir(tmp_path / "run")
    trainer.save(run)

    again = build_model(Sam2Spec("tiny", SIZE), run.weights_path, train=True)
    resumed = Sam2Trainer(_cfg(steps=4, lora=2), again, data, resolve("fp32", "cpu"))
    resumed.load(run)
    assert resumed.step == 1
    adapters, weights = lora.adapter_state(again), again.state_dict()
    for key, value in lora.adapter_state(model).items():
        assert torch.equal(adapters[key], value), key
    for key, value in model.state_dict().items():  # base weights back to unmerged, up to float rounding
        torch.testing.assert_close(weights[key], value, atol=1e-6, rtol=1e-5)


def test_grad_checkpointing_gives_the_gradients_of_a_plain_backward(data):
    grads = []
    for checkpointing in (False, True):
        model = _model()
        trainer = Sam2Trainer(_cfg(steps=1, freeze="prompt_encoder", grad_checkpointing=checkpointing), model, data,
                          resolve("fp32", "cpu"))
        items, kind = trainer.micro_batch(0)
        trainer.module(items, kind).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert set(grads[0]) == set(grads[1]) and any(k.startswith("image_encoder.") for k in grads[0])
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_grad_checkpointing_recomputes_in_backward():
    model = _model()
    lora.enable_grad_checkpointing(model)
    calls = []
    model.image_encoder.trunk.blocks[0].attn.register_forward_hook(lambda *_: calls.append(1))  # inside the block
    x = torch.randn(1, 3, SIZE, SIZE)
    model.image_encoder(x)["vision_features"].sum().backward()
    assert len(calls) == 2  # forward, then again in backward
    calls.clear()
    with torch.no_grad():
        model.image_encoder(x)
    assert len(calls) == 1


@pytest.mark.parametrize("options, message", [
    (dict(lora=4, freeze="none"), "--lora trains low-rank updates of a frozen image encoder"),
    (dict(lora=-1), "--lora must be >= 0"),
    (dict(grad_checkpointing=True), "--grad-checkpointing saves memory only when the image encoder trains"),
])
def test_lora_and_checkpointing_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        _cfg(**options)
