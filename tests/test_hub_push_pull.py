"""hub_cards: run folder -> staged repo -> local hub / Hub cache -> pull -> the same predictions; clear errors.

Real tiny models with random weights (sam2 hiera-tiny at 128 px, detectron2 R18 Mask R-CNN at 128 px).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from onnx_exports import reuse_onnx_exports  # noqa: F401 (a fixture)
from PIL import Image

from hub_cards import HubError, list_local_models, load_model, pull, push_run, stage_run
from hub_cards.repo import commit_message
from trainer.checkpoint import CheckpointError, save_state, save_weights
from trainer.data.synthetic import make_scene
from trainer.runlog import RunDir

SECRET = "hf_FAKEsecretTOKENvalue1234567890"
pytestmark = pytest.mark.usefixtures("reuse_onnx_exports")  # each sam2 push stages the same decoder


def _summary(kind: str, before: dict, after: dict, main: str) -> dict:
    return {"kind": kind, "base_model": "facebook/sam2.1-hiera-tiny" if kind == "sam2" else "random-init",
            "model": {}, "dataset": {"path": "/data/vessels", "format": "coco", "num_train": 6, "num_val": 2,
                                     "class_names": ["vessel", "liquid"], "normalization": "none"},
            "recipe": {"loss": "focal+dice", "prompts": ["box", "point"], "freeze": ["image_encoder"],
                       "precision": "fp32", "steps": 4, "batch_size": 2, "lr": 1e-4},
            "metrics": {"before": before, "after": after}, "main_metric": main, "train_time_s": 1.5}


def _fill_run(run: RunDir, kind: str, summary: dict) -> None:
    """The non-model parts of a run folder, as the trainers write them (incl. resume state that must stay home)."""
    run.write_config({"kind": kind, "steps": 4})
    for step in (0, 2, 4):
        run.log({"step": step, "loss": 1.0 / (step + 1)})
    run.plot_curves()
    for i in range(3):
        Image.fromarray(make_scene(i, 64).image).save(run.overlays / f"val_{i}.png")
    save_state({"step": 4, "secret_marker": torch.zeros(1)}, run.state_dir / "resume_state.pt")
    run.write_summary(summary)


@pytest.fixture(scope="module")
def sam2_run(tmp_path_factory):
    from trainer.sam2_model.model import Sam2Spec, build_model, save_spec

    torch.manual_seed(0)
    spec = Sam2Spec("tiny", 128)
    model = build_model(spec)
    run = RunDir(tmp_path_factory.mktemp("sam2_run"))
    save_weights(model.state_dict(), run.weights_path)
    save_spec(spec, run.path)
    _fill_run(run, "sam2", _summary("sam2", {"miou_box": 0.41, "miou_1pt": 0.3}, {"miou_box": 0.63, "miou_1pt": 0.5},
                                    "miou_box"))
    return run.path, model


@pytest.fixture(scope="module")
def d2_run(tmp_path_factory):
    from test_d2_helpers import export_tiny_model  # the d2 tests' shrunk Mask R-CNN

    run = RunDir(tmp_path_factory.mktemp("d2_run"))
    segmenter = export_tiny_model(run.path)
    _fill_run(run, "detectron2", _summary("detectron2", {"segm_AP": 1.0, "bbox_AP": 2.0},
                                          {"segm_AP": 12.5, "bbox_AP": 14.0, "segm_AP50": 30.0}, "segm_AP"))
    return run.path, segmenter


@pytest.fixture()
def local_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_LOCAL_HUB", str(tmp_path / "local_hub"))
    return tmp_path / "local_hub"


def _sam2_masks(model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from trainer.sam2_model.model import make_predictor

    predictor = make_predictor(model)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(point_coords=np.array([[40, 70]]), point_labels=np.array([1]),
                                         multimask_output=True, return_logits=True)
    return masks, scores


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_sam2_push_local_pull_same_predictions(sam2_run, local_hub, monkeypatch, capsys, caplog):
    run_dir, live = sam2_run
    monkeypatch.setenv("HF_TOKEN", SECRET)
    caplog.set_level("DEBUG")
    dest = Path(push_run(run_dir, "local:me/sam2-vessels"))
    assert dest == local_hub / "me" / "sam2-vessels"
    names = {str(p.relative_to(dest)) for p in _all_files(dest)}
    assert names == {"model.safetensors", "model_config.yaml", "config.yaml", "summary.json", "metrics.json",
                     "curves.png", "README.md", "overlays/val_0.png", "overlays/val_1.png", "overlays/val_2.png",
                     "config.json", "processor_config.json", "sam2.safetensors",  # official layout (test_hub_layout)
                     "onnx/decoder.onnx"}  # the prompt decoder for onnxruntime (test_sam2_onnx)
    assert json.loads((dest / "metrics.json").read_text()) == {"miou_box": 0.63, "miou_1pt": 0.5}

    model, spec = load_model("me/sam2-vessels", kind="sam2")  # by local hub name
    assert spec.image_size == 128
    image = make_scene(7, 128).image
    for a, b in zip(_sam2_masks(live, image), _sam2_masks(model, image)):
        np.testing.assert_array_equal(a, b)

    # The token is in the environment while pushing, but in no written file and no output.
    out = capsys.readouterr()
    texts = [out.out, out.err, caplog.text] + [p.read_bytes().decode("latin-1") for p in _all_files(local_hub)]
    assert not any(SECRET in t for t in texts)


def test_d2_push_local_pull_same_predictions(d2_run, tmp_path):
    run_dir, live = d2_run
    dest = Path(push_run(run_dir, f"file:{tmp_path / 'repos' / 'd2'}"))
    segmenter = load_model(f"file:{dest}", kind="detectron2")
    image = make_scene(3, size=112).image
    a, b = live.predict(image, score_threshold=0.0), segmenter.predict(image, score_threshold=0.0)
    assert len(a["scores"]) > 0
    for key in ("masks", "boxes", "class_ids", "scores"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a["class_names"] == b["class_names"]


def test_card_usage_snippet_runs(sam2_run, local_hub, tmp_path, monkeypatch):
    """The README's python block, executed as written (the ref it loads is the local hub name we pushed to)."""
    dest = Path(push_run(sam2_run[0], "local:me/snippet"))
    code = re.search(r"```python\n(.*?)```", (dest / "README.md").read_text(), re.S).group(1)
    assert 'load_model("me/snippet")' in code
    monkeypatch.chdir(tmp_path)
    Image.fromarray(make_scene(1, 96).image).save("your_image.jpg")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["masks"].shape == (1, 96, 96)


def test_revision_branches_and_republish_keep_each_other(sam2_run, tmp_path):
    repo = tmp_path / "hub" / "me" / "m"
    push_run(sam2_run[0], f"file:{repo}", revision="exp1")
    assert (repo / "@exp1" / "model.safetensors").is_file() and not (repo / "model.safetensors").exists()
    with pytest.raises(HubError, match="no model on main; pass a revision, one of: exp1"):
        pull(f"file:{repo}")
    push_run(sam2_run[0], f"file:{repo}")  # main, published over the folder that holds the branch
    assert pull(f"file:{repo}", revision="exp1") == repo / "@exp1"
    assert pull(f"file:{repo}", kind="sam2") == repo
    assert not [p for p in repo.parent.iterdir() if p.name != "m"], "no temporary folders left behind"
    with pytest.raises(HubError, match="no such model folder.*'nope'"):
        pull(f"file:{repo}", revision="nope")


def test_stage_never_copies_state_or_pickles(sam2_run, tmp_path):
    staged = stage_run(sam2_run[0], tmp_path / "staged")
    assert (sam2_run[0] / "state" / "resume_state.pt").is_file()
    assert not (staged / "state").exists()
    assert not [p for p in _all_files(staged) if p.suffix in (".pt", ".pth", ".pkl", ".bin", ".ckpt")]
    with pytest.raises(HubError, match="not empty"):
        stage_run(sam2_run[0], staged)


def test_list_local_models(sam2_run, d2_run, local_hub):
    push_run(sam2_run[0], "local:me/a-sam2")
    push_run(d2_run[0], "local:me/b-d2")
    (local_hub / "me" / "broken").mkdir()
    (local_hub / "me" / "broken" / "model_config.yaml").write_text("kind: unknown\n")
    models = list_local_models()
    assert [(m.name, m.kind, m.main_metric, m.value) for m in models] == [
        ("me/a-sam2", "sam2", "miou_box", 0.63), ("me/b-d2", "detectron2", "segm_AP", 12.5)]
    assert [m.name for m in list_local_models(kind="detectron2")] == ["me/b-d2"]
    assert models[0].path == local_hub / "me" / "a-sam2"


# Errors -------------------------------------------------------------------------------------------------------

def _copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy", ignore=shutil.ignore_patterns("state")))


def test_wrong_kind(sam2_run):
    with pytest.raises(HubError, match="this is a sam2 model, not a detectron2 model"):
        load_model(sam2_run[0], kind="detectron2")


def test_missing_file(sam2_run, tmp_path):
    folder = _copy(sam2_run[0], tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(HubError, match=r"missing model\.safetensors"):
        load_model(folder)
    with pytest.raises(HubError, match=r"missing model\.safetensors"):
        push_run(folder, f"file:{tmp_path / 'out'}")
    (folder / "model_config.yaml").unlink()
    with pytest.raises(HubError, match=r"model_config\.yaml: missing"):
        pull(folder)


def test_corrupt_weights(sam2_run, tmp_path):
    folder = _copy(sam2_run[0], tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(folder, kind="sam2")
    with pytest.raises(HubError, match="not a readable safetensors file"):
        push_run(folder, f"file:{tmp_path / 'out'}")
    assert not (tmp_path / "out").exists(), "nothing is published from a broken run"


def test_weights_of_another_model(sam2_run, tmp_path):
    folder = _copy(sam2_run[0], tmp_path)
    config = yaml.safe_load((folder / "model_config.yaml").read_text())
    (folder / "model_config.yaml").write_text(yaml.safe_dump({**config, "size": "small"}))
    with pytest.raises(CheckpointError, match="does not match this model"):
        load_model(folder)


def test_summary_kind_must_match_model(sam2_run, tmp_path):
    folder = _copy(sam2_run[0], tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**summary, "kind": "detectron2"}))
    with pytest.raises(HubError, match="this is a sam2 model, not a detectron2 model"):
        stage_run(folder, tmp_path / "staged")


# The Hub side: what can be checked without the network ---------------------------------------------------------

def test_pull_hub_id_through_snapshot_download_cache(sam2_run, tmp_path, monkeypatch, local_hub):
    """A Hub id resolves through the real snapshot_download (offline, from a cache laid out like a download)."""
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    storage = tmp_path / "hf_cache" / "models--someone--sam2-cached"
    stage_run(sam2_run[0], storage / "snapshots" / commit, repo_id="someone/sam2-cached")
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    folder = pull("someone/sam2-cached", kind="sam2")
    assert folder == storage / "snapshots" / commit
    model, _ = load_model("someone/sam2-cached")
    image = make_scene(2, 128).image
    np.testing.assert_array_equal(_sam2_masks(model, image)[0], _sam2_masks(sam2_run[1], image)[0])
    with pytest.raises(HubError, match="not in the local hub .* not downloadable"):
        pull("someone/not-there")
    with pytest.raises(HubError, match="this is a sam2 model, not a detectron2 model"):
        pull("someone/sam2-cached", kind="detectron2")


class RecordingApi:
    """Stands in for HfApi's three write calls to check the arguments push_run sends (not a Hub emulation)."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def create_branch(self, repo_id, **kw):
        self.calls.append(("create_branch", repo_id, kw))

    def upload_folder(self, **kw):
        files = _all_files(Path(kw["folder_path"]))
        kw["files"] = sorted(str(p.relative_to(kw["folder_path"])) for p in files)
        kw["leaks"] = [p.name for p in files if SECRET.encode() in p.read_bytes()]
        self.calls.append(("upload_folder", kw.pop("repo_id"), kw))
        return "https://huggingface.co/me/m/commit/abc"


def test_hub_push_calls(sam2_run, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    api = RecordingApi()
    url = push_run(sam2_run[0], "me/m", private=True, revision="exp", api=api)
    assert url == "https://huggingface.co/me/m/commit/abc"
    (c1, r1, k1), (c2, r2, k2), (c3, r3, k3) = api.calls
    assert (c1, r1, k1["private"], k1["exist_ok"]) == ("create_repo", "me/m", True, True)
    assert (c2, r2, k2["branch"], k2["exist_ok"]) == ("create_branch", "me/m", "exp", True)
    assert (c3, r3, k3["revision"]) == ("upload_folder", "me/m", "exp")
    assert k3["commit_message"] == "segkit sam2: miou_box 0.41 → 0.63"
    assert "README.md" in k3["files"] and "model.safetensors" in k3["files"]
    assert not [f for f in k3["files"] if f.startswith("state")] and k3["leaks"] == []
    api = RecordingApi()
    push_run(sam2_run[0], "me/m", api=api)
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"] and api.calls[1][2]["revision"] is None


def test_bad_targets_and_refs(sam2_run):
    with pytest.raises(HubError, match="not a repo id"):
        push_run(sam2_run[0], "not a repo")
    with pytest.raises(HubError, match="not a folder, a local hub model"):
        pull("no such thing!")
    assert commit_message({"kind": "sam2", "main_metric": "miou_box", "metrics": {}}) == "segkit sam2: fine-tuned model"


def test_cli_push_and_pull(sam2_run, tmp_path, capsys):
    from trainer.cli import main

    assert main(["push", str(sam2_run[0]), "--repo", f"file:{tmp_path / 'r'}"]) == 0
    assert main(["pull", f"file:{tmp_path / 'r'}", "--kind", "sam2"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "r")
    assert main(["pull", f"file:{tmp_path / 'r'}", "--kind", "detectron2"]) == 2
    assert "not a detectron2 model" in capsys.readouterr().err
    assert main(["push", str(tmp_path / "missing"), "--repo", f"file:{tmp_path / 'r2'}"]) == 2
