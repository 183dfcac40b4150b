"""One precision policy for the trainers and the demo: fp32, fp16 (+ GradScaler), bf16, or auto.

On CPUs without bf16 instructions, bf16 autocast made SAM2's image encoder ~9x slower than fp32; on CPUs with
avx512_bf16/AMX it measured 1.2-1.8x faster (bench/README.md). So `auto` on CPU stays fp32 (always safe), and an
explicit bf16 request on CPU runs, with a warning only where the CPU lacks bf16 instructions.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

PrecisionName = Literal["fp32", "fp16", "bf16"]
CHOICES: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class PrecisionError(ValueError):
    """A precision the device cannot run."""


@dataclass(frozen=True)
class Precision:
    name: PrecisionName
    device_type: str  # "cpu" | "cuda" | ...

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def uses_scaler(self) -> bool:
        """fp16 needs loss scaling; bf16 has fp32's exponent range and does not."""
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is a no-op unless this precision is fp16."""
        return torch.amp.GradScaler(self.device_type, enabled=self.uses_scaler)


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (avx512_bf16 or AMX); read from /proc/cpuinfo on Linux."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _device(device: str | torch.device) -> torch.device:
    return torch.device(device)


def check_support(name: str, device: str | torch.device) -> tuple[bool, str]:
    """Whether `name` can run on `device`, and a human reason (also for 'yes, but slow')."""
    dev = _device(device)
    if name == "fp32":
        return True, "full precision"
    if dev.type == "cuda":
        if name == "fp16":
            return True, "half precision with loss scaling"
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, "bfloat16"
        return False, f"bf16 needs an Ampere or newer GPU; {torch.cuda.get_device_name(dev)} has none"
    if name == "fp16":
        return False, f"fp16 autocast is for GPUs; this device is {dev.type}"
    if name == "bf16":
        if cpu_has_bf16():
            return True, "runs on CPU with native bf16 instructions"
        return True, "runs on CPU, but much slower than fp32 (no bf16 instructions; ~9x for SAM2's encoder)"
    return False, f"unknown precision {name!r}"


def available(device: str | torch.device) -> dict[str, tuple[bool, str]]:
    """For UIs: every concrete precision with (supported, reason)."""
    return {name: check_support(name, device) for name in ("fp32", "fp16", "bf16")}


def resolve(requested: str, device: str | torch.device) -> Precision:
    """Turn a user's request ('auto' included) into a precision this device runs, or raise PrecisionError."""
    dev = _device(device)
    if requested not in CHOICES:
        raise PrecisionError(f"unknown precision {requested!r}; choose one of {', '.join(CHOICES)}")
    if requested == "auto":
        if dev.type != "cuda":
            return Precision("fp32", dev.type)
        ok, _ = check_support("bf16", dev)
        return Precision("bf16" if ok else "fp16", dev.type)
    ok, reason = check_support(requested, dev)
    if not ok:
        raise PrecisionError(f"{requested} is not available: {reason}")
    if requested == "bf16" and dev.type == "cpu" and not cpu_has_bf16():
        warnings.warn(f"bf16 on CPU: {reason}", stacklevel=2)
    return Precision(requested, dev.type)  # type: ignore[arg-type]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")

