"""The import layers and the no-cycle rule declared in pyproject.toml ([tool.importlinter]), checked by import-linter
on the code as it is: a module importing a layer above it, or two modules importing each other (even from inside a
function), fails here with the import named."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = [c["id"] for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]]


@pytest.mark.parametrize("contract", CONTRACTS)
def test_contract_is_kept(contract):
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--contract", contract, "--no-cache"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": str(lint.parent)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_a_broken_layer_is_caught(tmp_path):
    """The contracts can fail: a base module importing a trainer breaks the layers contract."""
    for package in ("trainer", "hub_cards", "demo"):
        (tmp_path / package).symlink_to(REPO / package)
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "__init__.py").write_text("")
    (probe / "up.py").write_text("import trainer.sam2_ft.trainer\n")
    text = (tmp_path / "pyproject.toml").read_text().replace(
        'root_packages = ["trainer", "hub_cards", "demo"]', 'root_packages = ["trainer", "hub_cards", "demo", "probe"]'
    ).replace('"trainer.augment : trainer.data', '"probe : trainer.augment : trainer.data')
    (tmp_path / "pyproject.toml").write_text(text)
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--contract", "layers", "--no-cache"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": str(lint.parent)})
    assert done.returncode != 0 and "probe.up -> trainer.sam2_ft.trainer" in done.stdout
