"""One rule for "is this a Hub repo id" (trainer/hub_ids.py), used by the data layer, the trainers, the cards and
the Space."""

import pytest

from trainer.data.readers.hf import is_hub_id
from trainer.hub_ids import hub_repo_id, names_hub_repo


@pytest.mark.parametrize("ref, expected", [
    ("facebook/sam2.1-hiera-tiny", "facebook/sam2.1-hiera-tiny"),
    ("me/coins_v2", "me/coins_v2"),
    ("sam2.1-hiera-tiny", None),          # a bare name: local hub or zoo, never a repo here
    ("a/b/c", None),
    ("../etc", None), ("./a", None), ("~/x", None), ("/etc/passwd", None),
    ("a--b/c", None), ("a/b..c", None), ("-a/b", None),  # the Hub's own character rules
    ("a/b c", None), ("", None), (None, None), (3, None),
])
def test_the_shape_of_a_repo_id(ref, expected):
    assert hub_repo_id(ref) == expected


def test_a_path_or_a_file_name_is_not_a_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "coins").mkdir(parents=True)
    assert hub_repo_id("runs/coins") == "runs/coins"  # the shape alone
    assert names_hub_repo("runs/coins") is None        # but it is a folder here
    assert names_hub_repo("configs/model.yaml") is None
    assert names_hub_repo("me/coins") == "me/coins"


def test_the_data_layer_takes_a_split_and_refuses_a_mistyped_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert is_hub_id("me/coins") and is_hub_id("me/coins:train")
    assert not is_hub_id("data/trian")  # next to an existing data/: a typo of a path, not a repo
    assert not is_hub_id("me/coins:tr ain") and not is_hub_id("me/../x")
