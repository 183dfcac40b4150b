"""Loaded models, predictors and image embeddings, cached so a click only runs SAM2's prompt decoder.

Model refs: BASE_REF (the pretrained facebook/sam2.1-hiera-tiny, or a random-init tiny when offline), a local hub
name "owner/name", a visitor's session model, a folder, or a Hub repo id — resolved by demo/access.py (a public Space
takes no folders).
Embeddings: a bounded LRU keyed by (image hash, model ref, precision) holding the predictor's _features/_orig_hw.
Loading: one lock per model ref (a slow Hub download of one model never holds up another); the base model is pinned,
never evicted by visitors' picks.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

import numpy as np
import torch

from demo import access, sessions, settings
from hub_cards import list_local_models, load_model
from hub_cards.fetch import recorded_normalization
from trainer import precision as prec
from trainer.sam2_model.model import Sam2Spec, build_model, make_mask_generator, make_predictor
from trainer.sam2_model.point_decoder import PointDecoder, predict as predict_points

BASE_REF = "facebook/sam2.1-hiera-tiny"
BASE_SIZE = "tiny"
log = logging.getLogger("segkit.demo")


def device() -> torch.device:
    return torch.device(settings.get().device or prec.default_device())


def image_size() -> int:
    """SAM2 input size for the base model (1024 = the pretrained one; tests use 256)."""
    return settings.get().image_size


def offline() -> bool:
    return settings.get().is_offline


class LRU:
    """A small thread-safe LRU cache; get_or_make builds a missing value outside the lock's fast path."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def drop(self, doomed: Callable[[Any], bool]) -> None:
        """Remove every entry whose key `doomed(key)` says must go."""
        with self._lock:
            for key in [k for k in self._items if doomed(k)]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class Sam2Handle:
    """One loaded SAM2 model with its predictor; the lock serialises use of the (stateful) predictor."""

    ref: str
    model: torch.nn.Module
    spec: Any
    note: str
    predictor: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    normalization: str | None = None  # recorded at training time; uploads are brought to uint8 RGB the same way
    folder: Any = None  # the model's folder (None for the base model): a repo's onnx/decoder.onnx is read from it
    browser: Any = None  # its decoder for the visitor's browser, once asked for (demo/browser_decode.py)


@dataclass
class D2Handle:
    """One loaded Detectron2 (or semantic) segmenter; the lock guards its precision attribute during a prediction."""

    ref: str
    segmenter: Any
    normalization: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class PromptResult:
    masks: np.ndarray  # CxHxW bool
    scores: np.ndarray  # C
    embed_ms: float  # 0 when the embedding came from the cache
    decode_ms: float
    cached: bool


_models = LRU(settings.get().model_cache)
_embeddings = LRU(settings.get().embed_cache)
_pinned: dict[Any, Any] = {}  # the base model: loaded once, never evicted
_locks: dict[Any, threading.Lock] = {}  # one per model key: two visitors picking the same new model load it once
_locks_lock = threading.Lock()


def _load_lock(key: Any) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(key, threading.Lock())


def _cached(key: Any) -> Any:
    return _pinned.get(key) or _models.get(key)


def _keep(key: Any, handle: Any) -> None:
    if key == ("sam2", BASE_REF):
        _pinned[key] = handle
    else:
        _models.put(key, handle)


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check before downloading: huggingface_hub's own retries take ~25 s to give up when offline."""
    url = urlparse(settings.get().hf_endpoint)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False


def _load_base(dev: torch.device) -> tuple[torch.nn.Module, Any, str]:
    spec = Sam2Spec(size=BASE_SIZE, image_size=image_size())
    if offline():
        reason = "offline (SEGKIT_OFFLINE / HF_HUB_OFFLINE)"
    elif not hub_reachable():
        reason = "the Hugging Face Hub is unreachable"
    else:
        try:
            return build_model(spec, BASE_REF, device=dev), spec, f"pretrained {BASE_REF}"
        except Exception as err:  # no network / gated: fall back rather than fail the Space
            log.warning("base model download failed, using random init: %s", err)
            reason = "the download failed (see the log)"
    torch.manual_seed(0)
    return (build_model(spec, None, device=dev), spec,
            f"⚠️ RANDOM-INIT sam2.1 tiny ({reason}): masks are meaningless, for wiring/speed only")


def _load(ref: str, kind: str, dev: torch.device) -> tuple[Any, str | None]:
    """(what the kind's loader returns, the recorded input normalisation); sam2 gives (model, spec, note, folder)."""
    if kind == "sam2" and ref == BASE_REF:
        return (*_load_base(dev), None), None
    folder = access.model_folder(ref, kind)  # a public Space refuses server paths and checks Hub repos first
    loaded = load_model(folder, kind=kind, device=str(dev))
    if kind == "sam2":
        model, spec = loaded
        converted = "" if (folder / "model_config.yaml").is_file() else ", converted from transformers' format"
        loaded = model, spec, f"{ref} (sam2.1 {spec.size}, image size {spec.image_size}{converted})", folder
    return loaded, recorded_normalization(folder)


def get_sam2(ref: str) -> Sam2Handle:
    """The loaded SAM2 model for `ref` (cached; the base plus at most SEGKIT_MODEL_CACHE models in memory)."""
    ref = (ref or BASE_REF).strip()

    def load() -> Sam2Handle:
        (model, spec, note, folder), normalization = _load(ref, "sam2", device())
        handle = Sam2Handle(ref, model.eval(), spec, note, normalization=normalization, folder=folder)
        handle.predictor = make_predictor(handle.model)
        return handle

    return cached_model(("sam2", ref), load)


def cached_model(key: tuple[str, str], load: Callable[[], Any]) -> Any:
    """The model cached under `key` (kind, ref), else `load()`'s, kept: built once however many visitors ask, under
    a lock of its own so other models keep loading and answering."""
    handle = _cached(key)
    if handle is None:
        with _load_lock(key):
            try:
                handle = _cached(key)
                if handle is None:
                    handle = load()
                    _keep(key, handle)
            finally:  # no lock kept per ref ever typed: those waiting hold it already and find the model cached
                with _locks_lock:
                    _locks.pop(key, None)
    return handle


def loaded_sam2(ref: str) -> Sam2Handle | None:
    """The SAM2 model for `ref` if it is already loaded, else None (never loads: the click's fast path)."""
    return _cached(("sam2", (ref or BASE_REF).strip()))


def embedding_ready(handle: Sam2Handle, key: str, precision_name: str) -> bool:
    """Whether a click on this image needs only the prompt decoder (its embedding is cached)."""
    return embedding_state(handle, key, precision_name) is not None


def embedding_state(handle: Sam2Handle, key: str, precision_name: str) -> dict[str, Any] | None:
    """The cached embedding of image `key` (a visitor key: demo/prompt_tab.visitor_key) for this model and
    precision, or None."""
    return _embeddings.get((key, handle.ref, resolve_precision(precision_name).name))


def resolve_precision(name: str) -> prec.Precision:
    """The header already says when bf16 is slow on this CPU; don't repeat resolve()'s warning in the log on every click."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return prec.resolve(name, device())


def detectron2_missing() -> str | None:
    """Why Detectron2 cannot run here (it is optional: a Space without it still serves the SAM2 tabs), or None."""
    try:
        import detectron2  # noqa: F401  (optional dependency: this is the probe for it)
    except ImportError as err:
        return f"Detectron2 is not installed on this server ({err}); the SAM2 tabs work without it"
    return None


def get_detectron2(ref: str) -> D2Handle:
    """The loaded Detectron2 segmenter for `ref` (cached with the SAM2 models)."""
    missing = detectron2_missing()
    if missing:
        raise ValueError(missing)
    return _segmenter("detectron2", "Detectron2", ref)


def get_semantic(ref: str) -> D2Handle:
    """The loaded semantic segmenter (SAM2 encoder + UNet head) for `ref`, cached with the other models."""
    return _segmenter("semantic", "semantic", ref)


def _segmenter(kind: str, label: str, ref: str) -> D2Handle:
    ref = (ref or "").strip()
    if not ref:
        raise ValueError(f"pick a {label} model: none in the local hub yet (python -m trainer push RUN --repo "
                         "local:owner/name), or type a folder / Hub id")
    return cached_model((kind, ref), lambda: D2Handle(ref, *_load(ref, kind, device())))


def detect(handle: D2Handle, image: np.ndarray, score_threshold: float, precision_name: str) -> dict[str, Any]:
    """Detectron2 instances for one image: {masks, boxes, class_ids, scores, class_names}."""
    with handle.lock:  # precision is an attribute of the shared segmenter: set and use it under one lock
        handle.segmenter.precision = resolve_precision(precision_name)
        return handle.segmenter.predict(image, score_threshold=score_threshold)


def segment_classes(handle: D2Handle, image: np.ndarray, precision_name: str) -> np.ndarray:
    """A semantic model's class map for one image: H x W indices into handle.segmenter.class_names."""
    with handle.lock:
        handle.segmenter.precision = resolve_precision(precision_name)
        return handle.segmenter.predict(image)


def predict_prompt(handle: Sam2Handle, image: np.ndarray, key: str, precision_name: str,
                   points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None,
                   multimask: bool) -> PromptResult:
    """Masks for one prompt, best score first; the image embedding is computed once per (image, model, precision)
    and reused, and the mask head upsamples only the masks shown."""
    precision = resolve_precision(precision_name)
    cache_key = (key, handle.ref, precision.name)
    predictor = handle.predictor
    with handle.lock, torch.inference_mode():
        state = _embeddings.get(cache_key)
        embed_ms = 0.0
        if state is None:
            start = time.perf_counter()
            with precision.autocast():
                predictor.set_image(image)
                state = _embedding_state(handle)
            embed_ms = (time.perf_counter() - start) * 1000
            _embeddings.put(cache_key, state)
        else:  # restore this image's features into the shared predictor (what set_image would have left there)
            predictor.reset_predictor()
            predictor._features, predictor._orig_hw = state["_features"], state["_orig_hw"]
            predictor._is_image_set, predictor._is_batch = True, False
        # One click is ambiguous (part or whole?): sam2 advises its 3 masks; show the best-scored one when one is asked
        single_click = box is None and points is not None and len(points) == 1
        start = time.perf_counter()
        with precision.autocast():
            masks, scores = predict_points(predictor, state["decoder"], points, labels, box,
                                           multimask or single_click, top=None if multimask else 1)
        decode_ms = (time.perf_counter() - start) * 1000
    return PromptResult(masks, scores, embed_ms, decode_ms, cached=embed_ms == 0.0)


def ensure_embedding(handle: Sam2Handle, image: np.ndarray, key: str, precision_name: str) -> float:
    """Compute (or find) the embedding ahead of the first click; returns the ms spent (0 = cached)."""
    precision = resolve_precision(precision_name)
    cache_key = (key, handle.ref, precision.name)
    if _embeddings.get(cache_key) is not None:
        return 0.0
    with handle.lock, torch.inference_mode():
        start = time.perf_counter()
        with precision.autocast():
            handle.predictor.set_image(image)
            _embeddings.put(cache_key, _embedding_state(handle))
        return (time.perf_counter() - start) * 1000


def _embedding_state(handle: Sam2Handle) -> dict[str, Any]:
    """What a click needs of the image the predictor was just set to: its features and size, and the decoder's
    image-side work done once (trainer/sam2_ft/point_decoder.py)."""
    predictor = handle.predictor
    features = predictor._features
    decoder = PointDecoder(handle.model, features["image_embed"][-1:], [f[-1:] for f in features["high_res_feats"]])
    decoder.precompute()
    return {"_features": features, "_orig_hw": predictor._orig_hw, "decoder": decoder}


def generate_masks(handle: Sam2Handle, image: np.ndarray, precision_name: str, **amg_kwargs: Any) -> list[dict]:
    """SAM2AutomaticMaskGenerator's masks (dicts with 'segmentation', 'area', 'predicted_iou', ...).
    The generator has its own predictor, so the shared one's lock is not held: clicks on the same model go on
    while a grid decodes (the heavy endpoints' own concurrency group bounds how many grids run)."""
    precision = resolve_precision(precision_name)
    generator = make_mask_generator(handle.model, **amg_kwargs)
    with torch.inference_mode(), precision.autocast():
        return generator.generate(image)


def local_models(kind: str) -> list[str]:
    """Names of the local hub's models of one kind (for the pickers); empty if the hub folder is missing."""
    try:
        return [m.name for m in list_local_models(kind=kind)]
    except OSError:
        return []


def forget(ref_prefix: str) -> None:
    """Unload the models (and their embeddings) whose ref starts with `ref_prefix`: a closed session's models."""
    _models.drop(lambda key: str(key[1]).startswith(ref_prefix))
    _embeddings.drop(lambda key: str(key[1]).startswith(ref_prefix))


def clear_caches() -> None:
    _models.clear()
    _pinned.clear()
    _embeddings.clear()


sessions.on_close(forget)


def embedding_cache_size() -> int:
    return len(_embeddings)

