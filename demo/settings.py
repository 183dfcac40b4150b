"""Every setting of the Space in one place, read from the environment once (as huggingface_hub's constants.py does).

Each field is one named limit or switch, with its environment variable beside its default. `get()` parses the
environment once and keeps the result; it parses again only when one of these variables changes (a test that sets
one, an app built after `os.environ` was edited), so no other module of demo/ reads `os.environ`.

The access rules fail closed: a server is public (demo/access.py's rules: no server paths, no owner's token) unless
SEGKIT_OPEN=1 asks for the open rules, or the app binds to a loopback address only (a local run on your machine).
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

MB = 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_TRUE = ("1", "true", "yes", "on")


def _env(name: str, default: Any) -> Any:
    return field(default=default, metadata={"env": name})


@dataclass(frozen=True)
class Settings:
    # who may do what
    space_id: str = _env("SPACE_ID", "")  # set by Hugging Face on a Space: always public
    force_public: bool = _env("SEGKIT_PUBLIC", False)
    open_rules: bool = _env("SEGKIT_OPEN", False)  # any folder, file: pushes, the owner's HF_TOKEN: trusted users only
    server_name: str = _env("GRADIO_SERVER_NAME", "0.0.0.0")
    server_port: int = _env("GRADIO_SERVER_PORT", 7860)
    oauth_client_id: str = _env("OAUTH_CLIENT_ID", "")
    hf_endpoint: str = _env("HF_ENDPOINT", "https://huggingface.co")
    # models
    device: str = _env("SEGKIT_DEVICE", "")
    image_size: int = _env("SEGKIT_IMAGE_SIZE", 1024)  # the base model's input (tests use 256)
    offline: bool = _env("SEGKIT_OFFLINE", False)
    hf_offline: bool = _env("HF_HUB_OFFLINE", False)
    model_cache: int = _env("SEGKIT_MODEL_CACHE", 3)  # loaded models besides the (pinned) base
    embed_cache: int = _env("SEGKIT_EMBED_CACHE", 8)
    model_max_image_size: int = _env("SEGKIT_MODEL_MAX_IMAGE_SIZE", 1024)  # a picked sam2/semantic model's input
    d2_max_test_size: int = _env("SEGKIT_D2_MAX_TEST_SIZE", 1333)  # detectron2's MIN/MAX_SIZE_TEST of a picked model
    config_max_bytes: int = _env("SEGKIT_CONFIG_MAX_BYTES", 256 * 1024)  # a model_config.yaml / config.json
    hub_max_mb: float = _env("SEGKIT_HUB_MAX_MB", 1024.0)  # a visitor's Hub pick (sam2.1 large is ~0.9 GB)
    hub_cache_mb: float = _env("SEGKIT_HUB_CACHE_MB", 3072.0)
    hub_cache: str = _env("SEGKIT_HUB_CACHE", "")
    # one request
    max_points: int = _env("SEGKIT_MAX_POINTS", 64)  # prompt points in one request (a person clicks a dozen)
    max_prompt_chars: int = _env("SEGKIT_MAX_PROMPT_CHARS", 16 * 1024)  # the prompts JSON text
    auto_max_points_per_side: int = _env("SEGKIT_AUTO_MAX_POINTS_PER_SIDE", 32)  # the Automatic tab's grid
    max_file_mb: float = _env("SEGKIT_MAX_FILE_MB", 50.0)
    max_pixels: int = _env("SEGKIT_MAX_PIXELS", 50_000_000)  # refused from the header, before decoding
    max_side: int = _env("SEGKIT_MAX_SIDE", 1024)  # images are downscaled to this longest side
    video_max_frames: int = _env("SEGKIT_VIDEO_MAX_FRAMES", 120)
    video_max_seconds: float = _env("SEGKIT_VIDEO_MAX_SECONDS", 20.0)
    video_max_side: int = _env("SEGKIT_VIDEO_MAX_SIDE", 512)
    video_max_source_pixels: int = _env("SEGKIT_VIDEO_MAX_SOURCE_PIXELS", 3840 * 2160)  # a frame before downscaling
    # sharing the server
    click_concurrency: int = _env("SEGKIT_CLICK_CONCURRENCY", 2)  # clicks: their own light group
    concurrency: int = _env("SEGKIT_CONCURRENCY", 2)  # a free CPU Space has 2 vCPUs
    heavy_concurrency: int = _env("SEGKIT_HEAVY_CONCURRENCY", 1)  # automatic, video, compare, detectron2, semantic
    queue_size: int = _env("SEGKIT_QUEUE_SIZE", 64)
    # visitors' sessions
    session_dir: str = _env("SEGKIT_SESSION_DIR", "")
    session_mb: float = _env("SEGKIT_SESSION_MB", 1000.0)
    sessions_mb: float = _env("SEGKIT_SESSIONS_MB", 10000.0)
    session_ttl_s: float = _env("SEGKIT_SESSION_TTL_S", 3 * 3600.0)
    my_images: int = _env("SEGKIT_MY_IMAGES", 20)
    my_masks: int = _env("SEGKIT_MY_MASKS", 60)
    gradio_cache_s: int = _env("SEGKIT_GRADIO_CACHE_S", 900)  # Gradio's own copies of uploads and outputs
    # fine-tuning child processes
    train_jobs: int = _env("SEGKIT_TRAIN_JOBS", 1)
    train_max_s: float = _env("SEGKIT_TRAIN_MAX_S", 300.0)
    train_steps: int = _env("SEGKIT_TRAIN_STEPS", 0)  # 0: sized to the data
    train_threads: int = _env("SEGKIT_TRAIN_THREADS", 2)
    train_max_mb: float = _env("SEGKIT_TRAIN_MAX_MB", 6144.0)  # the child's address space
    push_private: bool = _env("SEGKIT_PUSH_PRIVATE", True)  # a visitor's push makes a private repo

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        """Parsed values; ValueError naming the variable for a value of the wrong type."""
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"], "")
            if raw == "":
                continue
            try:
                values[f.name] = raw.lower() in _TRUE if isinstance(f.default, bool) else type(f.default)(raw)
            except ValueError:
                raise ValueError(f"{f.metadata['env']}={raw!r}: expected {type(f.default).__name__}") from None
        return cls(**values)

    @property
    def public(self) -> bool:
        """Public rules unless asked for the open ones (SEGKIT_OPEN=1) or bound to loopback only; a Space and
        SEGKIT_PUBLIC=1 are always public."""
        if self.space_id or self.force_public:
            return True
        return not (self.open_rules or self.server_name in LOOPBACK)

    @property
    def is_offline(self) -> bool:
        return self.offline or self.hf_offline

    @property
    def sessions_root(self) -> Path:
        return Path(self.session_dir or Path(tempfile.gettempdir()) / "segkit-sessions")

    @property
    def hub_cache_dir(self) -> Path:
        return Path(self.hub_cache or Path.home() / ".cache" / "segkit" / "space-models")

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * MB)


ENV_NAMES = tuple(f.metadata["env"] for f in fields(Settings))
_lock = threading.Lock()
_cached: tuple[tuple[str | None, ...], Settings] | None = None


def get() -> Settings:
    """The settings, parsed on first use and again only after one of their variables changed."""
    global _cached
    seen = tuple(os.environ.get(name) for name in ENV_NAMES)
    with _lock:
        if _cached is None or _cached[0] != seen:
            _cached = seen, Settings.from_env(os.environ)
        return _cached[1]


def heavy_group() -> dict[str, Any]:
    """Event options of the heavy endpoints (automatic, video, compare, detectron2, semantic): one concurrency group
    of SEGKIT_HEAVY_CONCURRENCY, so they queue behind each other and never take the clicks' or default slots."""
    return {"concurrency_id": "heavy", "concurrency_limit": get().heavy_concurrency}
