"""Where initial weights come from, and loading them without unpickling anything we don't trust.

    none                     random init (--no-pretrained)
    'zoo' / zoo URL          detectron2's COCO weights (.pkl), via DetectionCheckpointer — pickle, so only
                             from detectron2's own download server (TRUSTED_URLS)
    run folder / Hub repo    our model_config.yaml + model.safetensors (the architecture comes from its spec);
                             Hub ids and local-hub refs (file:PATH, local:owner/name) via hub_cards.fetch.pull
    file.safetensors         our weights
    file.pth                 a detectron2 checkpoint, read with torch.load(weights_only=True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hub_cards.kinds import D2_CONFIG_NAME
from trainer.checkpoint import WEIGHTS_NAME, CheckpointError, atomic_write, check_keys, load_any_weights
from trainer.d2_ft.model import D2Spec, load_spec
from trainer.hub_ids import hub_repo_id

TRUSTED_URLS = ("https://dl.fbaipublicfiles.com/detectron2/", "detectron2://")


@dataclass
class InitWeights:
    kind: str  # "none" | "zoo" | "folder" | "file"
    ref: str = ""  # URL, folder or file
    spec: D2Spec | None = None  # the architecture a folder was trained with

    @property
    def description(self) -> str:
        """For summary.json / the model card: what the run started from."""
        return "random-init" if self.kind == "none" else self.ref


def resolve(weights: str | None, pretrained: bool, zoo_config: str) -> InitWeights:
    """Turn --weights / --no-pretrained into a concrete source (downloads a Hub repo folder)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2 import model_zoo

    if not pretrained:
        return InitWeights("none")
    if weights in (None, "zoo"):
        try:
            return _fetch_zoo(model_zoo.get_checkpoint_url(zoo_config))
        except RuntimeError as err:
            raise CheckpointError(f"{zoo_config}: no zoo weights for this config ({err})") from err
    if weights.startswith(TRUSTED_URLS):
        return _fetch_zoo(weights)
    if "://" in weights:
        raise CheckpointError(f"{weights}: refusing a pickle from an untrusted URL; download it and convert to "
                              "safetensors, or use a detectron2 zoo URL")
    path = Path(weights)
    if path.is_dir():
        return InitWeights("folder", str(path), load_spec(path)[0])
    if path.is_file():
        if path.suffix == ".pkl":
            raise CheckpointError(f"{path}: .pkl files are pickles; only detectron2's zoo URLs are loaded that way "
                                  "(pass the URL, or a .safetensors file)")
        return InitWeights("file", str(path))
    if weights.startswith(("file:", "local:")) or hub_repo_id(weights):
        return _pull(weights)
    raise CheckpointError(f"{weights}: not a file, folder, zoo URL or Hub repo id")


def _fetch_zoo(url: str) -> InitWeights:
    """Download now (into detectron2's file cache, where its checkpointer finds it), so an offline machine gets
    one clear error before training starts rather than one traceback per training process."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.utils.file_io import PathManager

    try:
        PathManager.get_local_path(url)
    except Exception as err:  # URLError, HTTPError, OSError, ...: all mean "cannot use these weights"
        raise CheckpointError(f"{url}: could not download zoo weights ({type(err).__name__}: {err}); "
                              "use --no-pretrained, or --weights with a local file or run folder") from err
    return InitWeights("zoo", url)


def _pull(ref: str) -> InitWeights:
    """A pushed detectron2 model: Hub repo id, local hub name, or file:/local: ref (hub_cards resolves them and
    raises HubError, a CheckpointError, for a missing repo or one of another kind)."""
    from hub_cards.fetch import pull  # lazy: only these refs need the Hub code

    folder = pull(ref, kind="detectron2")
    return InitWeights("folder", str(folder), load_spec(folder)[0])


def load_init(model: torch.nn.Module, init: InitWeights, checkpointer) -> None:
    """Load `init` into the (unwrapped) model; zoo weights go through detectron2's checkpointer, whose
    shape-mismatch skipping drops COCO's 80-class heads for our class count."""
    if init.kind == "none":
        return
    if init.kind == "zoo":
        try:
            checkpointer.load(init.ref, checkpointables=[])
        except (OSError, RuntimeError) as err:
            raise CheckpointError(f"{init.ref}: could not load zoo weights ({type(err).__name__}: {err}); "
                                  "use --no-pretrained or --weights offline") from err
        return
    path = Path(init.ref)
    if init.kind == "folder":
        path = path / WEIGHTS_NAME
    state = load_any_weights(path)
    check_keys(model, state, str(path))
    model.load_state_dict(state)


def stage_repo(run_dir: str | Path, out_dir: str | Path) -> Path:
    """push: the run's cfg as detectron2 dumps it, for detectron2's own get_cfg().merge_from_file (segkit's
    model_config.yaml wraps the same cfg with the class names). MODEL.WEIGHTS empty: the weights are the repo's
    safetensors, loaded into DefaultPredictor's model; MODEL.DEVICE cpu, which runs anywhere."""
    _, cfg = load_spec(run_dir)
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.DEVICE = "cpu"
    text = cfg.dump()
    return atomic_write(Path(out_dir) / D2_CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))
