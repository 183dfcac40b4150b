"""Each client's data: one site's dataset (`--client-data`, or a SuperNode's `data-path`), or one part of --data.

Every problem names the client and the file: `client 1 (site_b): 1 problem in 1 file in ...: <file>: <problem>`.
A site holds its own validation split (`--val-fraction`); the pooled validation set is the union of the sites'.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from hub_cards.public import dataset_name
from trainer.data import load_dataset
from trainer.data.sample import DataError, SegmentationDataset
from trainer.engine.images import usable_indices
from trainer.federated.config import FederatedConfig
from trainer.federated.partition import dominant_classes, partition


@dataclass
class Site:
    index: int
    name: str
    train: SegmentationDataset
    val: SegmentationDataset


def site_label(path: str) -> str:
    """A client's public name: its dataset named as the model card names datasets (folder, 'builtin', Hub id)."""
    return dataset_name(path)


def site_names(cfg: FederatedConfig) -> list[str]:
    """Client names used in metrics, curves and the model card (unique; no absolute paths)."""
    if not cfg.client_data:
        return [f"client_{i}" for i in range(cfg.num_clients)]
    labels = [site_label(p) for p in cfg.client_data]
    return [label if labels.count(label) == 1 else f"{label}_{i}" for i, label in enumerate(labels)]


def load_site(cfg: FederatedConfig, index: int, data_path: str | None = None) -> Site:
    """Client `index`'s train/val split. `data_path` (a SuperNode's own data) overrides the config's sources."""
    path = data_path or (cfg.client_data[index] if cfg.client_data else None)
    where = f"client {index} ({site_label(path) if path else cfg.data})"
    try:
        if path is not None:
            dataset = load_dataset(path, cfg.format, skip_bad=cfg.skip_bad)
        else:
            dataset = _split_part(cfg.data, cfg.format, cfg.skip_bad, cfg.num_clients, cfg.split, cfg.seed, index)
    except DataError as err:
        raise DataError(where, str(err)) from err
    except ValueError as err:  # a split that cannot give this many clients enough images
        raise ValueError(f"{where}: {err}") from err
    train, val = dataset.split(cfg.val_fraction, cfg.seed)
    name = site_label(data_path) if data_path else site_names(cfg)[index]
    return Site(index, name, train, val)


def load_sites(cfg: FederatedConfig) -> list[Site]:
    """Every client's data, fully checked (decoded, and each training split holding an object) before any round."""
    sites = [load_site(cfg, i) for i in range(cfg.num_clients)]
    for site in sites:
        try:
            usable_indices(site.train, progress=False)  # the trainer's own check: an object to train on
        except DataError as err:
            raise DataError(f"client {site.index} ({site.name})", str(err)) from err
    return sites


@lru_cache(maxsize=4)  # a simulation process serves several clients of the same split
def _split(data: str, format: str, skip_bad: bool, n_clients: int, split: str,
           seed: int) -> tuple[SegmentationDataset, list[list[int]]]:

    dataset = load_dataset(data, format, skip_bad=skip_bad)
    labels = dominant_classes([sample.class_ids for sample in dataset])
    return dataset, partition(labels, n_clients, split, seed)


def _split_part(data: str, format: str, skip_bad: bool, n_clients: int, split: str, seed: int,
                index: int) -> SegmentationDataset:
    dataset, parts = _split(data, format, skip_bad, n_clients, split, seed)
    return dataset.subset(parts[index])
