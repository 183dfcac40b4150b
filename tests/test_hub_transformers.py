"""SAM2 in transformers' format (trainer/sam2_model/hf_format.py): the key table against both live models, the exact
round trip, the same masks from Sam2Model + Sam2Processor as from SAM2ImagePredictor, and the way back (a model
fine-tuned with transformers loads in segkit's loaders, evaluate, pull and the app).

Real random-init sam2.1 models and real transformers models; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from hub_cards import HubError, list_local_models, load_model, pull
from trainer.checkpoint import CheckpointError, load_weights
from trainer.data.synthetic import make_scene
from trainer.sam2_model import hf_format
from trainer.sam2_model.hf_format import FormatError
from trainer.sam2_model.model import Sam2Spec, build_model, make_predictor

SIZE = 256  # the input size the equivalence tests run at (transformers represents every multiple of 32)
# Measured (tiny, 256 px, one thread): the same pixels in -> low-res logits agree to <= 8e-6; through each library's
# own resize + normalise (an image of another size), they differ by <= 1.1% of their largest |logit| and the masks'
# IoU is >= 0.993; at the model's own size (no resize) the masks are identical.
SAME_INPUT_ATOL = 1e-4
LOGIT_TOL = 0.02  # x max |logit| of the mask, each library preprocessing the image itself
MIN_IOU = 0.99


def _sam2(size: str = "tiny", image_size: int = SIZE, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(Sam2Spec(size, image_size)).eval()


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return _sam2()


@pytest.fixture(scope="module")
def hf_folder(tiny, tmp_path_factory) -> Path:
    return hf_format.write_hf_folder(tiny.state_dict(), "tiny", SIZE, tmp_path_factory.mktemp("hf") / "tiny")


# The key table -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["tiny", "small", "base_plus", "large"])
def test_every_key_of_both_models_is_mapped_and_round_trips_bit_exact(size):
    """sam2's SAM2Base -> exactly Sam2VideoModel's keys and shapes -> back to sam2's, every tensor bit-identical."""
    state = _sam2(size, 128).state_dict()
    config = hf_format.hf_config(size, 128)
    converted = hf_format.sam2_to_hf(state)
    hf_format.check_against(converted, hf_format._expected_hf_shapes(config), "Sam2VideoModel")
    back = hf_format.hf_to_sam2(converted)
    assert set(back) == set(state)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value), key
    assert hf_format.spec_from_hf_config(config.to_dict()) == Sam2Spec(size, 128)
    image_config = hf_format.hf_config(size, 128, video=False)  # a pushed sam2 (image) repo's Sam2Config
    assert hf_format.spec_from_hf_config(image_config.to_dict()) == Sam2Spec(size, 128)


def test_every_table_row_is_used_and_image_model_keys_are_the_non_memory_part(tiny):
    from transformers import Sam2Model

    converted = hf_format.sam2_to_hf(tiny.state_dict())
    for side, keys in ((0, tiny.state_dict()), (1, converted)):
        for key in keys:  # each key is named by at most one row (the two special cases by none)
            rows = [row for row in hf_format.KEY_TABLE if hf_format._compile(row[side]).match(key)]
            assert len(rows) <= 1, (key, rows)
    used = {row for row in hf_format.KEY_TABLE
            if any(hf_format._compile(row[1]).match(k) for k in converted)}
    assert used == set(hf_format.KEY_TABLE), f"rows matching no key: {set(hf_format.KEY_TABLE) - used}"
    with torch.device("meta"):
        image_model = Sam2Model(hf_format.hf_config("tiny", SIZE))
    image_keys = set(image_model.state_dict())
    sam2_image_part = {k for k in tiny.state_dict() if not k.startswith(hf_format.SAM2_MEMORY_PREFIXES)}
    assert set(hf_format.hf_to_sam2({k: converted[k] for k in image_keys})) == sam2_image_part


def test_an_unknown_or_renamed_key_fails_loudly(tiny):
    state = tiny.state_dict()
    with pytest.raises(FormatError, match="1 sam2 keys have no row.*image_encoder.trunk.new_thing"):
        hf_format.sam2_to_hf({**state, "image_encoder.trunk.new_thing": torch.zeros(1)})
    converted = hf_format.sam2_to_hf(state)
    renamed = {k.replace(".layer_norm1.", ".norm_a."): v for k, v in converted.items()}  # a future release's rename
    with pytest.raises(FormatError, match="transformers keys have no row.*norm_a"):
        hf_format.hf_to_sam2(renamed)
    config = hf_format.hf_config("tiny", SIZE)
    with pytest.raises(FormatError, match="1 missing: mask_decoder.iou_token.weight"):
        hf_format.check_against({k: v for k, v in converted.items() if k != "mask_decoder.iou_token.weight"},
                                hf_format._expected_hf_shapes(config), "Sam2VideoModel")
    fourier = dict(converted)
    fourier["shared_image_embedding.positional_embedding"] = fourier["shared_image_embedding.positional_embedding"] + 1
    with pytest.raises(FormatError, match="differ; sam2 has one positional matrix"):
        hf_format.hf_to_sam2(fourier)


def test_files_round_trip_and_refusals(tiny, hf_folder, tmp_path):
    assert sorted(p.name for p in hf_folder.iterdir()) == ["config.json", "model.safetensors", "processor_config.json"]
    state, spec = hf_format.read_hf_folder(hf_folder)
    assert spec == Sam2Spec("tiny", SIZE)
    own = tiny.state_dict()
    assert set(state) == set(own) and all(torch.equal(state[k], own[k]) for k in own)
    assert str(tmp_path.parent) not in "".join(p.read_bytes().decode("latin-1") for p in hf_folder.iterdir()
                                               if p.suffix == ".json")
    from transformers import AutoProcessor, Sam2Model, Sam2VideoModel

    for cls in (Sam2VideoModel, Sam2Model):  # transformers' own report: nothing missing, nothing left over
        _, info = cls.from_pretrained(hf_folder, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], cls
    assert type(AutoProcessor.from_pretrained(hf_folder)).__name__ == "Sam2Processor"
    with pytest.raises(FormatError, match="image size 200: .* multiple of 32"):
        hf_format.hf_config("tiny", 200)
    config = json.loads((hf_folder / "config.json").read_text())
    config["vision_config"]["backbone_config"]["blocks_per_stage"] = [1, 1, 1, 1]
    with pytest.raises(FormatError, match="matches none of sam2.1's sizes"):
        hf_format.spec_from_hf_config(config)
    with pytest.raises(FormatError, match="model_type 'sam' is not a SAM2 model"):
        hf_format.spec_from_hf_config({"model_type": "sam"})
    with pytest.raises(CheckpointError, match="sam2.1 tiny model in transformers' format, not small"):
        build_model(Sam2Spec("small", SIZE), hf_folder)  # --weights of another size


# Same masks ----------------------------------------------------------------------------------------------------

PROMPTS = {  # name: (points, labels, box, multimask)
    "1 point": ([[70, 90]], [1], None, True),
    "3 points": ([[70, 90], [40, 40], [150, 60]], [1, 1, 0], None, False),
    "box": (None, None, [30, 40, 150, 170], False),
    "box + point": ([[70, 90]], [1], [30, 40, 150, 170], False),
}


def _compare(sam2_model: torch.nn.Module, hf_model, processor, image: np.ndarray) -> dict[str, tuple]:
    """Per prompt: (min IoU over the masks, max |logit diff| / max |logit|, same-input max |diff|)."""
    predictor = make_predictor(sam2_model)
    predictor.set_image(image)
    results = {}
    for name, (points, labels, box, multimask) in PROMPTS.items():
        masks, _, low = predictor.predict(
            point_coords=None if points is None else np.array(points, dtype=np.float32),
            point_labels=None if labels is None else np.array(labels), box=None if box is None else np.array(box),
            multimask_output=multimask, return_logits=True)
        kwargs = {}
        if points is not None:
            kwargs.update(input_points=[[points]], input_labels=[[labels]])
        if box is not None:
            kwargs.update(input_boxes=[[box]])
        inputs = processor(images=image, return_tensors="pt", **kwargs)
        with torch.no_grad():
            out = hf_model(**inputs, multimask_output=multimask)
            # the same network on the same pixels: sam2's own preprocessed image through transformers' model
            same = hf_model(**{**inputs, "pixel_values": predictor._transforms(image)[None]},
                            multimask_output=multimask)
        hf_masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][0].numpy()
        ious = [(a & b).sum() / (a | b).sum() if (a | b).any() else 1.0 for a, b in zip(masks > 0, hf_masks)]
        hf_low = out.pred_masks[0, 0].clamp(-32, 32).numpy()  # sam2's predictor clamps its low-res logits
        rel = float(np.abs(hf_low - low).max() / np.abs(low).max())
        same_diff = float(np.abs(same.pred_masks[0, 0].clamp(-32, 32).numpy() - low).max())
        results[name] = (min(ious), rel, same_diff, masks.shape == hf_masks.shape)
    return results


def _assert_same_masks(results: dict[str, tuple]) -> None:
    for name, (iou, rel, same_diff, same_shape) in results.items():
        assert same_shape, name
        assert iou >= MIN_IOU, f"{name}: IoU {iou:.4f}"
        assert rel <= LOGIT_TOL, f"{name}: low-res logits differ by {rel:.4f} of their range"
        assert same_diff <= SAME_INPUT_ATOL, f"{name}: same input, logits differ by {same_diff:.2e}"


def test_random_init_same_masks_as_sam2_predictor(tiny, hf_folder, one_thread):
    from transformers import Sam2Model, Sam2Processor

    model = Sam2Model.from_pretrained(hf_folder).eval()
    processor = Sam2Processor.from_pretrained(hf_folder)
    image = np.ascontiguousarray(make_scene(3, 200).image[:, :180])  # not square, not the model's size
    _assert_same_masks(_compare(tiny, model, processor, image))


def _finetune_with_transformers(folder: Path, out: Path, steps: int = 4) -> Path:
    """A few AdamW steps of transformers' Sam2Model (prompt encoder + mask decoder) on a synthetic scene's masks,
    then save_pretrained: what someone fine-tuning SAM2 with transformers publishes (image part only)."""
    from transformers import Sam2Model, Sam2Processor

    torch.manual_seed(0)
    model = Sam2Model.from_pretrained(folder)
    processor = Sam2Processor.from_pretrained(folder)
    sample = make_scene(5, SIZE)
    params = [p for n, p in model.named_parameters() if n.startswith(("mask_decoder.", "prompt_encoder."))]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    with torch.no_grad():
        embeddings = model.get_image_embeddings(processor(images=sample.image, return_tensors="pt")["pixel_values"])
    targets = [torch.nn.functional.interpolate(torch.tensor(m[None, None], dtype=torch.float32), size=SIZE // 4,
                                               mode="area")[0, 0] for m in sample.masks]
    for step in range(steps):
        mask, target = sample.masks[step % len(targets)], targets[step % len(targets)]
        ys, xs = np.nonzero(mask)
        inputs = processor(images=sample.image, input_points=[[[[int(xs.mean()), int(ys.mean())]]]],
                           input_labels=[[[1]]], return_tensors="pt")
        logits = model(image_embeddings=embeddings, input_points=inputs["input_points"],
                       input_labels=inputs["input_labels"], multimask_output=False).pred_masks[0, 0, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def finetuned(hf_folder, tmp_path_factory) -> Path:
    return _finetune_with_transformers(hf_folder, tmp_path_factory.mktemp("ft") / "sam2-ft-transformers")


def test_finetuned_with_transformers_loads_here_with_the_same_masks(finetuned, hf_folder, one_thread):
    from transformers import Sam2Model, Sam2Processor

    assert json.loads((finetuned / "config.json").read_text())["model_type"] == "sam2"  # image-only checkpoint
    with pytest.warns(UserWarning, match="image-only transformers Sam2Model checkpoint"):
        model, spec = load_model(finetuned, kind="sam2")  # converted on load
    assert spec == Sam2Spec("tiny", SIZE)
    hf_model = Sam2Model.from_pretrained(finetuned).eval()
    hf_state = hf_model.state_dict()
    changed = [k for k, v in hf_format.sam2_to_hf(model.state_dict()).items()
               if k in hf_state and not torch.equal(v, hf_state[k])]
    assert changed == [], "every trained tensor arrives unchanged"
    trained = load_weights(finetuned / "model.safetensors")
    assert not torch.equal(trained["mask_decoder.iou_token.weight"],
                           load_weights(hf_folder / "model.safetensors")["mask_decoder.iou_token.weight"])
    processor = Sam2Processor.from_pretrained(finetuned)
    for image in (make_scene(5, SIZE).image, np.ascontiguousarray(make_scene(3, 200).image[:, :180])):
        _assert_same_masks(_compare(model.eval(), hf_model, processor, image))


# The loaders read a transformers folder (pushed repos: tests/test_hub_layout.py) -------------------------------

def _same_image_part(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Equal weights outside the video memory (an image-only checkpoint leaves that part at each model's init)."""
    other = b.state_dict()
    return all(torch.equal(v, other[k]) for k, v in a.state_dict().items()
               if not k.startswith(hf_format.SAM2_MEMORY_PREFIXES))


def test_loaders_accept_a_transformers_folder(finetuned, tmp_path):
    """pull, the local hub's list, --weights (build_model) and the app read a transformers-format folder."""
    from demo import models as demo_models
    from trainer.cli import main

    assert pull(finetuned, kind="sam2") == finetuned
    hub = tmp_path / "local_hub"
    shutil.copytree(finetuned, hub / "someone" / "sam2-from-transformers")
    assert [(m.name, m.kind) for m in list_local_models(root=hub)] == [("someone/sam2-from-transformers", "sam2")]
    with pytest.raises(HubError, match="this is a sam2 model, not a detectron2 model"):
        pull(finetuned, kind="detectron2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference, _ = load_model(finetuned)
        weights = build_model(Sam2Spec("tiny", SIZE), finetuned)  # --weights FOLDER
        assert _same_image_part(weights, reference)
        assert main(["pull", str(finetuned), "--kind", "sam2"]) == 0
        demo_models.clear_caches()
        os.environ["SEGKIT_OPEN"] = "1"  # a folder by its path: the open rules (a trusted local run)
        try:
            handle = demo_models.get_sam2(str(finetuned))
        finally:
            del os.environ["SEGKIT_OPEN"]
    assert handle.spec == Sam2Spec("tiny", SIZE) and "converted from transformers' format" in handle.note
    assert _same_image_part(handle.model, reference)
    demo_models.clear_caches()


def test_evaluate_scores_a_transformers_folder(finetuned, tmp_path):
    from trainer.data import write_coco
    from trainer.data.synthetic import make_dataset
    from trainer.evaluate import evaluate

    data = write_coco(make_dataset(1, 96, seed=7), tmp_path / "coco")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = evaluate(str(finetuned), str(data), device="cpu")
    assert results["kind"] == "sam2" and results["model"] == str(finetuned)
    assert all(0 <= results["metrics"][k] <= 1 for k in ("miou_1pt", "miou_box", "auto_mean_best_iou"))


def test_pull_a_hub_repo_in_transformers_format(finetuned, tmp_path, monkeypatch):
    """A Hub id of a transformers-only SAM2 repo resolves (here from the offline cache) and is a sam2 model; the
    download's allow-list names its config.json and processor config."""
    from huggingface_hub import constants

    from hub_cards.kinds import get_kind

    assert {"config.json", "processor_config.json", "model.safetensors"} <= set(get_kind("sam2").allow_patterns)

    commit = "0123456789abcdef0123456789abcdef01234567"
    storage = tmp_path / "hf_cache" / "models--someone--sam2-hf-only"
    shutil.copytree(finetuned, storage / "snapshots" / commit)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    folder = pull("someone/sam2-hf-only", kind="sam2")
    assert folder == storage / "snapshots" / commit and hf_format.is_hf_folder(folder)
