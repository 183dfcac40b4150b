"""The import layers and the no-cycle rule declared in pyproject.toml ([tool.importlinter]), checked by import-linter
on the code as it is: a module importing a layer above it, or two modules importing each other (even from inside a
function), fails here with the import named."""

import ast
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


def _imports_inside_functions(path: Path):
    """(line, first import line of its function, has a reason) for every import inside a function of `path`."""
    lines = path.read_text().splitlines()
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found = sorted({n.lineno for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))})
            if found:
                first = found[0]
                said = "#" in lines[first - 1] or lines[first - 2].strip().startswith("#")
                yield from ((line, first, said or "#" in lines[line - 1]) for line in found)


def test_every_import_inside_a_function_says_why():
    """An import is at the top of its module unless a one-line comment says why not (an optional or slow dependency,
    `--help` staying fast, a module that imports this one): the layers above hold only if imports are visible."""
    silent = [f"{path.relative_to(REPO)}:{line}" for package in ("trainer", "hub_cards", "demo")
              for path in sorted((REPO / package).rglob("*.py"))
              for line, _, said in _imports_inside_functions(path) if not said]
    assert not silent, f"imports inside functions with no reason: {silent}"
