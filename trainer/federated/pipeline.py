"""`python -m trainer federated`: check every client's data, then run the ServerApp and the ClientApps in Flower's
Simulation Engine (Ray: one actor per --client-cpus / --client-gpus), then draw overlays of the global model.

The apps are the ones a real deployment runs (SuperLink + SuperNodes, see README); the simulation hands them the
config directly instead of through a Flower run config.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import torch

from trainer.engine.session import RunResult
from trainer.federated.config import FederatedConfig
from trainer.federated.sites import Site, load_sites
from trainer.runlog import RunDir
from trainer.sam2_ft.overlays import draw_overlays, predict_for_overlays
from trainer.sam2_ft.pipeline import build


def run(cfg: FederatedConfig) -> RunResult:
    cfg.validate()
    cfg.out = cfg.out or f"runs/federated-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = RunDir(cfg.out)
    if cfg.resume:
        run_dir.require_resumable()
    sites = load_sites(cfg)  # every client's data is checked before any round; errors name the client and file
    # bad weights fail here, before Ray starts; the simulation's ServerApp (same process) starts from this model
    model = build(cfg, run_dir.weights_path if cfg.resume else cfg.base_weights, torch.device("cpu"))
    simulate(cfg, model, describe(sites))
    summary = run_dir.read_summary()
    if summary["status"] == "finished" and cfg.overlays > 0:
        draw(cfg, run_dir, sites)
    return RunResult(run_dir.path, summary["status"], summary)


def simulate(cfg: FederatedConfig, model: torch.nn.Module, dataset: dict[str, Any]) -> None:
    """Flower's Simulation Engine: one virtual SuperNode per client."""
    # lazy: Flower only for the simulation, not for a deployment or `federated --help`
    from flwr.simulation import run_simulation

    from trainer.federated.client_app import make_client_app
    from trainer.federated.server_app import make_server_app

    logging.getLogger("flwr").setLevel(logging.WARNING)  # rounds are shown by our progress bar
    for_actors = portable(cfg)  # Ray actors do not share the driver's working directory
    with environment(ACTOR_ENV):
        run_simulation(server_app=make_server_app(cfg, model, dataset), client_app=make_client_app(for_actors),
                       num_supernodes=cfg.num_clients,
                       backend_config={"client_resources": {"num_cpus": cfg.client_cpus,
                                                            "num_gpus": cfg.client_gpus}})


# Inherited by Ray's actors: no per-actor notice about GPU variables (a user's own setting wins).
ACTOR_ENV = {"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def portable(cfg: FederatedConfig) -> FederatedConfig:
    """The config with local paths made absolute."""
    def absolute(path: str | None) -> str | None:
        return str(Path(path).resolve()) if path and Path(path).exists() else path

    return replace(cfg, data=absolute(cfg.data), client_data=[absolute(p) for p in cfg.client_data],
                   weights=absolute(cfg.weights), out=absolute(cfg.out))


def describe(sites: list[Site]) -> dict[str, Any]:
    """What summary.json says of the data (in a simulation the driver holds every site)."""
    names: list[str] = []
    for site in sites:
        names += [n for n in site.train.class_names if n not in names]
    first = sites[0].train
    return {"format": first.format, "class_names": names, "normalization": first.normalization,
            "num_val": sum(len(site.val) for site in sites)}


def draw(cfg: FederatedConfig, run_dir: RunDir, sites: list[Site]) -> None:
    """overlays/: the base model vs the global model on validation images, taken from each client in turn."""
    samples = [site.val[i] for i in range(max(map(lambda s: len(s.val), sites))) for site in sites
               if i < len(site.val)][:cfg.overlays]
    if not samples:
        return
    device = torch.device("cpu")
    tuned = predict_for_overlays(build(cfg, run_dir.weights_path, device), samples, cfg.seed)
    base = predict_for_overlays(build(cfg, cfg.base_weights, device), samples, cfg.seed)
    draw_overlays(samples, base, tuned, run_dir.overlays, titles=("base", "federated (global model)"))
