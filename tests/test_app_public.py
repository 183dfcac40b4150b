"""A public Space's model picker: no server paths, Hub repos checked from their model info, a bounded download cache,
and refusals that read the same whether a path exists, is a folder or holds a model."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from huggingface_hub.hf_api import ModelInfo

from demo import access, hub_guard, sessions
from hub_cards.kinds import HubError

MB = 1024 * 1024


def _info(files: dict[str, int | None], tags=("segkit", "sam2"), repo="alice/coins-sam2") -> ModelInfo:
    """What HfApi().model_info(repo, files_metadata=True) returns, built offline."""
    return ModelInfo(id=repo, tags=list(tags), siblings=[{"rfilename": n, "size": s} for n, s in files.items()])


SEGKIT_FILES = {"model.safetensors": 160 * MB, "model_config.yaml": 200, "README.md": 3000, "curves.png": 40_000,
                "transformers/model.safetensors": 160 * MB, "state/resume_state.pt": 900 * MB}


def test_hub_check_counts_only_what_a_pull_downloads():
    # transformers/ and resume state are not pulled, so they do not count against the bound
    assert hub_guard.check_info(_info(SEGKIT_FILES), "sam2", max_bytes=200 * MB) == 160 * MB + 43_200
    transformers_sam2 = {"model.safetensors": 150 * MB, "config.json": 900}
    assert hub_guard.check_info(_info(transformers_sam2, tags=("transformers", "sam2")), "sam2", 200 * MB)
    # the official layout: the root's model.safetensors is transformers' copy of sam2.safetensors, not pulled
    official = {"model.safetensors": 150 * MB, "sam2.safetensors": 160 * MB, "model_config.yaml": 200,
                "config.json": 900, "onnx/decoder.onnx": 17 * MB}
    assert hub_guard.check_info(_info(official), "sam2", max_bytes=200 * MB) == 177 * MB + 1100


@pytest.mark.parametrize("files, tags, kind, message", [
    ({"model.safetensors": 10}, ("segkit", "sam2"), "sam2", "not a segkit model repo"),
    ({"model_config.yaml": 10, "pytorch_model.bin": 10}, ("segkit", "sam2"), "sam2", "not a segkit model repo"),
    ({"model.safetensors": 10, "model_config.yaml": 10}, ("segkit", "detectron2"), "sam2", "do not say it is a sam2"),
    ({"model.safetensors": 10, "config.json": 10}, ("transformers", "bert"), "sam2", "not a segkit model repo"),
    ({"model.safetensors": 300 * MB, "model_config.yaml": 10}, ("segkit", "sam2"), "sam2", "over this Space's limit"),
    ({"model.safetensors": None, "model_config.yaml": 10}, ("segkit", "sam2"), "sam2", "did not give the file sizes"),
])
def test_hub_check_refusals(files, tags, kind, message):
    with pytest.raises(HubError, match=message):
        hub_guard.check_info(_info(files, tags), kind, max_bytes=200 * MB)


def _cached_repo(cache: Path, repo_id: str, size: int, accessed: float) -> None:
    """One repo in huggingface_hub's cache layout (blobs/, snapshots/<commit>/ links, refs/main)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = f"{abs(hash(repo_id)):040x}"[-40:]
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    blob = repo / "blobs" / f"{abs(hash(repo_id + 'w')):064x}"[-64:]
    blob.write_bytes(b"\0" * size)
    os.utime(blob, (accessed, accessed))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(os.path.relpath(blob, snapshot))


def test_download_cache_is_trimmed_least_recently_used_first(tmp_path):
    now = time.time()
    for i, repo in enumerate(["a/old", "b/mid", "c/new"]):
        _cached_repo(tmp_path, repo, 1000, now - 1000 + i * 100)
    assert hub_guard.trim_cache(tmp_path, 2500, keep="c/new") == ["a/old"]
    assert hub_guard.trim_cache(tmp_path, 500, keep="c/new") == ["b/mid"]  # never the one just fetched
    assert [p.name for p in tmp_path.iterdir()] == ["models--c--new"]


@pytest.fixture
def public_hub(tmp_path, monkeypatch):
    from demo.testing import make_sam2_repo

    hub = tmp_path / "hub"
    make_sam2_repo(hub / "me" / "sam2-ft", image_size=256)
    (hub / "me" / "empty").mkdir()
    monkeypatch.setenv("SEGKIT_PUBLIC", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SEGKIT_LOCAL_HUB", str(hub))
    monkeypatch.setenv("SEGKIT_SESSION_DIR", str(tmp_path / "sessions"))
    return hub


def _refusal(ref: str, kind: str = "sam2") -> str:
    with pytest.raises(HubError) as err:
        access.model_folder(ref, kind)
    return str(err.value).replace(ref, "REF")


def test_public_picker_answers_the_same_for_every_server_path(public_hub, tmp_path):
    private_model = tmp_path / "elsewhere"
    from demo.testing import make_sam2_repo

    make_sam2_repo(private_model, image_size=256)
    other = sessions.folder(None)  # another visitor's live session with a model in it
    make_sam2_repo(sessions.models_dir(other) / "mine", image_size=256)
    refs = ["/etc", "/no/such/path", str(private_model), str(public_hub / "me" / "sam2-ft"), "file:/etc",
            "local:me/../../etc", "../etc", "~/x", "me/empty", f"session:{'0' * 32}/mine",
            f"session:{other.name}/nope", f"session:{other.name}/../../etc", "session:../x"]
    answers = {ref: _refusal(ref) for ref in refs}
    assert len(set(answers.values())) == 1, answers
    assert "REF: not a model this Space offers" in next(iter(answers.values()))


def test_public_picker_loads_local_hub_and_session_models(public_hub):
    assert access.model_folder("me/sam2-ft", "sam2") == public_hub / "me" / "sam2-ft"
    mine = sessions.folder(None)
    from demo.testing import make_sam2_repo

    make_sam2_repo(sessions.models_dir(mine) / "run-1", image_size=256)
    assert access.model_folder(sessions.model_ref(mine, "run-1"), "sam2").is_dir()
    from demo import models

    models.get_sam2(sessions.model_ref(mine, "run-1"))
    sessions.close(mine.name)  # a closed session's model is gone for everyone, loaded copy included
    assert models._models.get(("sam2", sessions.model_ref(mine, "run-1"))) is None
    assert "not a model this Space offers" in _refusal(sessions.model_ref(mine, "run-1"))


def test_public_picker_checks_a_hub_id_on_the_hub_first(public_hub):
    # offline here: the check itself is what fails, and the answer is about the Hub, not the server's files
    assert re.search(r"alice/coins: cannot check it on the Hub", _refusal_text("alice/coins"))


def _refusal_text(ref: str) -> str:
    with pytest.raises(HubError) as err:
        access.model_folder(ref, "sam2")
    return str(err.value)


def test_public_api_refuses_server_paths_alike(tmp_path, monkeypatch):
    """Through gradio_client, as a visitor would probe: /load_model and /segment's model argument."""
    from gradio_client import Client, handle_file

    from demo.testing import running_app

    monkeypatch.setenv("SEGKIT_PUBLIC", "1")
    monkeypatch.setenv("SEGKIT_SESSION_DIR", str(tmp_path / "sessions"))
    with running_app(tmp_path, with_d2=False, with_semantic=False) as app:
        client = Client(app["url"], verbose=False)
        answers = []
        for ref in ["/etc", "/no/such/dir", str(app["hub"] / "me" / "sam2-ft")]:
            with pytest.raises(Exception) as err:
                client.predict(ref, api_name="/load_model")
            answers.append(str(err.value).replace(Path(ref).name, "REF"))
        with pytest.raises(Exception) as err:
            client.predict(handle_file(app["image"]), "", str(app["hub"] / "me" / "sam2-ft"), "fp32", False,
                           api_name="/segment")
        assert "not a model this Space offers" in str(err.value)
        assert "me/sam2-ft" in client.predict("me/sam2-ft", api_name="/load_model")
    assert len(set(answers)) == 1 and "not a model this Space offers" in answers[0], answers


def test_public_push_needs_the_visitors_own_sign_in(public_hub, monkeypatch):
    """Never the Space's token: without the visitor's OAuth token a public Space does not push, nor to a server path."""
    import gradio as gr

    from demo import finetune_tab
    from demo.testing import make_sam2_repo

    monkeypatch.setenv("HF_TOKEN", "hf_spaceOwnerSecretToken000000000")
    session = sessions.folder(None)
    (make_sam2_repo(sessions.models_dir(session) / "run-0", image_size=256) / "summary.json").write_text("{}")
    ref = sessions.model_ref(session, "run-0")
    with pytest.raises(gr.Error, match="sign in with Hugging Face"):
        finetune_tab.push(ref, "alice/coins", session.name, None)
    visitor = gr.OAuthToken(token="hf_visitorToken", scope="write-repos", expires_at=0)
    for target in ("local:alice/coins", "file:/srv/models/x"):
        with pytest.raises(gr.Error, match="give a Hub repo id") as err:
            finetune_tab.push(ref, target, session.name, visitor)
        assert "hf_" not in str(err.value)
