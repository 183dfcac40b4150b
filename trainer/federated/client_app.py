"""The Flower ClientApp: one site. `train` = local SAM2 training from the global trainable parameters; `evaluate` =
the global model's mIoU on the site's validation split. Replies hold an ArrayRecord of the trainable parameters
(train only) and a MetricRecord of numbers; nothing else leaves the site.

Which data a node holds: its node config `data-path` (a SuperNode started with
`--node-config "partition-id=0 data-path='/data/site_a'"`), else `--client-data[partition-id]`, else part
`partition-id` of --data split into `--clients`. The run's options come from the simulation that built the app
(`make_client_app(cfg)`) or from the Flower run config (`flwr run`, module-level `app`).

A process keeps one model and each site's prepared data between rounds (a simulation actor or a SuperNode's
ClientApp process serves many messages): every round overwrites the trainable parameters anyway.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from trainer import quiet
from trainer.federated.client import (frozen_fingerprint, load_trainable, local_evaluate, local_train,
                                      trainable_names, trainable_state)
from trainer.engine.images import TrainingImages
from trainer.federated.config import FederatedConfig
from trainer.federated.sites import Site, load_site
from trainer.precision import default_device, resolve
from trainer.sam2_ft.pipeline import build

CLIENT_KEY = "client-index"  # the only identity a reply carries: the node's partition number
_MODELS: dict[str, tuple[torch.nn.Module, str]] = {}
_SITES: dict[str, tuple[Site, list]] = {}


def run_config_of(context: Context, cfg: FederatedConfig | None) -> FederatedConfig:
    quiet.install()  # a Ray actor or Flower's ClientApp process: the project's filters for known library warnings
    return cfg if cfg is not None else FederatedConfig.from_run_config(dict(context.run_config))


def client_index(context: Context) -> int:
    if "partition-id" not in context.node_config:
        raise ValueError("this SuperNode has no partition-id: start it with --node-config \"partition-id=N\" "
                         "(N = 0 .. clients - 1, unique per node)")
    return int(context.node_config["partition-id"])


def local_model(cfg: FederatedConfig) -> tuple[torch.nn.Module, str]:
    """The process's model (built once from the run's base weights) and its frozen parts' fingerprint."""
    device = torch.device(cfg.device) if cfg.device else default_device()
    key = json.dumps([cfg.size, cfg.image_size, str(cfg.base_weights), cfg.seed, cfg.freeze, str(device)])
    if key not in _MODELS:
        model = build(cfg, cfg.base_weights, device)
        trainable_names(model, cfg.frozen)
        _MODELS[key] = (model, frozen_fingerprint(model))
    return _MODELS[key]


def local_site(cfg: FederatedConfig, context: Context) -> tuple[Site, list]:
    """This node's site and its training images at model resolution (prepared once per process)."""
    index, data_path = client_index(context), context.node_config.get("data-path")
    fields = {k: v for k, v in cfg.to_dict().items() if k in ("data", "format", "skip_bad", "client_data", "clients",
                                                                "split", "seed", "val_fraction", "image_size", "augment",
                                                                "cache_views")}
    key = json.dumps([index, data_path, fields], default=str)
    if key not in _SITES:
        site = load_site(cfg, index, str(data_path) if data_path else None)
        _SITES[key] = (site, TrainingImages.for_run(site.train, cfg, progress=False))
    return _SITES[key]


def _global_model(cfg: FederatedConfig, message: Message) -> torch.nn.Module:
    """The process's model holding the global parameters the message carries."""
    model, fingerprint = local_model(cfg)
    expected = message.content["config"].get("base-fingerprint")
    if expected and expected != fingerprint:
        raise ValueError("this client's frozen model parts differ from the server's: both must start from the same "
                         "base weights (--weights / --no-pretrained / --seed / --size / --image-size)")
    load_trainable(model, message.content["arrays"].to_torch_state_dict())
    return model


def make_client_app(cfg: FederatedConfig | None = None) -> ClientApp:
    """A ClientApp for `cfg` (simulation), or reading the Flower run config when `cfg` is None (`flwr run`)."""
    app = ClientApp()

    @app.train()
    def train(message: Message, context: Context) -> Message:
        run_cfg = run_config_of(context, cfg)
        site, data = local_site(run_cfg, context)
        model = _global_model(run_cfg, message)
        config = message.content["config"]
        metrics = local_train(run_cfg, model, data, resolve(run_cfg.precision, next(model.parameters()).device),
                              int(config["server-round"]), float(config.get("proximal-mu", 0.0)))
        return _reply(message, {"arrays": ArrayRecord(trainable_state(model)),
                                "metrics": MetricRecord({**metrics, CLIENT_KEY: site.index})})

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        run_cfg = run_config_of(context, cfg)
        site, _ = local_site(run_cfg, context)
        metrics = local_evaluate(run_cfg, _global_model(run_cfg, message), site.val)
        return _reply(message, {"metrics": MetricRecord({**metrics, CLIENT_KEY: site.index})})

    return app


def _reply(message: Message, records: dict[str, Any]) -> Message:
    return Message(content=RecordDict(records), reply_to=message)


app = make_client_app()  # `flwr run` / SuperNodes: [tool.flwr.app.components] clientapp
