"""Silence the third-party warnings known to be harmless, each by its message AND the module that raises it.

A user cannot tell "torch.jit.script is deprecated" from a real problem, so the CLI (`trainer.cli.main`) and the
app (`app.py`) call `install()` first. Nothing is filtered by category or package alone: the same message from
another module, any other warning of these libraries, and every warning of ours (NaN steps, skipped samples, slow
bf16) still show. Child interpreters (torchrun, detectron2's spawned workers) inherit the list via PYTHONWARNINGS.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import NamedTuple


class Known(NamedTuple):
    category: type[Warning]
    message: str  # the start of the message, literal (no ':' or ',': PYTHONWARNINGS separators)
    module: str  # the exact module the warning is attributed to
    why: str


KNOWN = (
    Known(FutureWarning, "`torch.jit.script` is deprecated", "torch.jit._script",
          "sam2 and detectron2 script small helpers at import; scripting still works in this torch"),
    Known(UserWarning, "pkg_resources is deprecated as an API", "detectron2.model_zoo.model_zoo",
          "detectron2's model zoo finds its configs with pkg_resources; setuptools is pinned below 81 for it"),
    Known(UserWarning, "torch.meshgrid", "torch.functional",
          "detectron2's anchor generator calls meshgrid without indexing=; the default it gets is the one it wants"),
    Known(UserWarning, "The given NumPy array is not writable", "detectron2.data.detection_utils",
          "detectron2 stacks read-only mask arrays into a new tensor and never writes through them"),
)
# Warnings sent through `logging` rather than `warnings`: logger name -> message start.
KNOWN_LOGGED = {
    "torch.fx._symbolic_trace": "is_fx_tracing will return true for both fx.symbolic_trace and torch.export",
}


class _DropKnown(logging.Filter):
    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.message)


def install() -> None:
    """Add the filters (idempotent) for this process and, through PYTHONWARNINGS, for its child interpreters."""
    for known in KNOWN:
        warnings.filterwarnings("ignore", message=re.escape(known.message), category=known.category,
                                module=re.escape(known.module) + r"\Z")
    for name, message in KNOWN_LOGGED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) and f.message == message for f in logger.filters):
            logger.addFilter(_DropKnown(message))
    inherited = [entry for entry in os.environ.get("PYTHONWARNINGS", "").split(",") if entry]
    ours = [f"ignore:{k.message}:{k.category.__name__}:{k.module}" for k in KNOWN]
    os.environ["PYTHONWARNINGS"] = ",".join([*inherited, *(e for e in ours if e not in inherited)])
