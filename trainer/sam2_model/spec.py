"""What rebuilds a SAM2 architecture: sam2's packaged configs, the official Hub ids, and model_config.yaml.

Its own module so that the model builder (model.py) and the transformers-format converter (hf_format.py) both read
it without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from trainer.checkpoint import WEIGHTS_NAME, CheckpointError
from trainer.model_limits import check_image_size
from trainer.sam2_model.configs import CONFIGS, HUB_IDS  # noqa: F401 - HUB_IDS: the spec's table, read from here

MODEL_CONFIG_NAME = "model_config.yaml"


@dataclass
class Sam2Spec:
    """Everything needed to rebuild the architecture (saved as model_config.yaml next to the weights)."""

    size: str = "tiny"
    image_size: int = 1024  # smaller (e.g. 256) for fast CPU tests; multiples of 32 (the backbone's stride x 2)
    kind: str = "sam2"

    @property
    def config(self) -> str:
        return CONFIGS[self.size]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "config": self.config}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model_config") -> "Sam2Spec":
        if data.get("kind", "sam2") != "sam2":
            raise CheckpointError(f"{source}: this is a {data.get('kind')!r} model, not a sam2 model")
        if data.get("size") not in CONFIGS:
            raise CheckpointError(f"{source}: unknown sam2 size {data.get('size')!r}; expected one of {list(CONFIGS)}")
        return cls(size=data["size"], image_size=check_image_size(data.get("image_size", 1024), source))


def save_spec(spec: Sam2Spec, folder: str | Path) -> Path:
    """model_config.yaml from spec.to_dict() (also for the semantic trainer's spec, built on this encoder)."""
    path = Path(folder) / MODEL_CONFIG_NAME
    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return path


def load_spec(folder: str | Path, spec_cls: type = Sam2Spec) -> Any:
    """The spec in model_config.yaml, read with spec_cls.from_dict (Sam2Spec, or the semantic SemanticSpec)."""
    path = Path(folder) / MODEL_CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a {spec_cls.kind} model folder holds {MODEL_CONFIG_NAME} and "
                              f"{WEIGHTS_NAME}")
    return spec_cls.from_dict(yaml.safe_load(path.read_text()) or {}, str(path))
