"""One torch.onnx export per decoder weights in a test process: a dynamo export of SAM2's prompt decoder takes
10-25 s of tracing, and the suite exports the same random-init weights in many tests (each sam2 push stages
onnx/decoder.onnx). The export itself is tested in test_sam2_onnx; a test using `reuse_onnx_exports` still runs
everything after it (the graph saved, checked against sam2 by onnxruntime, refused, pushed).

A test module opts in with `pytestmark = pytest.mark.usefixtures("reuse_onnx_exports")` after importing the
fixture (a module fixture that exports names it as an argument, to come after it)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
import torch

_SAVED: dict[str, bytes] = {}  # key of (weights, inputs, options) -> the saved graph


class _SavedGraph:
    """What export_decoder uses of torch.onnx.export's ONNXProgram: save(), here of a graph exported before."""

    def __init__(self, graph: bytes):
        self.graph = graph

    def save(self, destination: str | os.PathLike, **_) -> None:
        Path(destination).write_bytes(self.graph)


def _key(module: torch.nn.Module, args: tuple, kwargs: dict) -> str:
    digest = hashlib.sha256(repr((type(module).__qualname__, kwargs)).encode())
    for name, tensor in [*module.state_dict().items(), *enumerate(args)]:
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def reuse_onnx_exports():
    """torch.onnx.export, exporting once per (module weights, example inputs, options) in this process."""
    export = torch.onnx.export

    def reused(module, args, *rest, **kwargs):
        key = _key(module, args, kwargs) if not rest else None
        if key not in _SAVED:
            program = export(module, args, *rest, **kwargs)
            if key is None:
                return program
            with tempfile.TemporaryDirectory() as tmp:
                program.save(Path(tmp) / "graph.onnx")
                _SAVED[key] = (Path(tmp) / "graph.onnx").read_bytes()
        return _SavedGraph(_SAVED[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.onnx, "export", reused)
        yield
