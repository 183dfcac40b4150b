"""Flower's strategies (FedAvg, FedProx, FedAdam from `flwr.serverapp.strategy`) with what a segkit run adds:

- round numbers that continue after --resume (Flower's `Strategy.start` counts from 1 each session), so clients'
  schedules and FedAdam's bias correction see the run's true round;
- every reply handed to an observer before aggregation (per-client metrics, errors, bytes);
- metric aggregation that leaves out the client index (the weighted mean of the rest is Flower's own);
- the server-side optimizer state of FedAdam saved and restored with the run; its float64 result sent as float32.

Aggregation itself is Flower's: FedAvg weights each client's arrays by its `num-examples`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords

from trainer.federated.client_app import CLIENT_KEY
from trainer.federated.config import FederatedConfig

# observer(phase "train" | "evaluate", true round, replies, aggregated metrics or None)
Observer = Callable[[str, int, list[Message], MetricRecord | None], None]


def aggregate_metrics(records: list[RecordDict], weighted_by_key: str) -> MetricRecord:
    """Flower's weighted mean of the replies' metrics, without the client index."""
    pooled = aggregate_metricrecords(records, weighted_by_key)
    if CLIENT_KEY in pooled:
        del pooled[CLIENT_KEY]
    return pooled


class RunRounds:
    """Mixed in before a Flower strategy (see the module docstring)."""

    round_offset: int = 0
    observer: Observer | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        return super().configure_train(server_round + self.round_offset, arrays, config, grid)  # type: ignore[misc]

    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        arrays, metrics = super().aggregate_train(server_round + self.round_offset, replies)  # type: ignore[misc]
        self._observe("train", server_round, replies, metrics)
        if arrays is not None:  # FedOpt steps in float64; the model, and what travels to the clients, stays float32
            arrays = ArrayRecord({k: Array(a.numpy().astype(np.float32) if a.dtype == "float64" else a.numpy())
                                  for k, a in arrays.items()})
        return arrays, metrics

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                           grid: Grid) -> Iterable[Message]:
        return super().configure_evaluate(server_round + self.round_offset, arrays, config, grid)  # type: ignore[misc]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        metrics = super().aggregate_evaluate(server_round + self.round_offset, replies)  # type: ignore[misc]
        self._observe("evaluate", server_round, replies, metrics)
        return metrics

    def _observe(self, phase: str, server_round: int, replies: list[Message], metrics: MetricRecord | None) -> None:
        if self.observer is not None:
            self.observer(phase, server_round + self.round_offset, replies, metrics)


class SegkitFedAvg(RunRounds, FedAvg):
    pass


class SegkitFedProx(RunRounds, FedProx):
    pass


class SegkitFedAdam(RunRounds, FedAdam):
    pass


def make_strategy(cfg: FederatedConfig, observer: Observer | None = None, round_offset: int = 0) -> FedAvg:
    """The --strategy for cfg.num_clients clients (all must be connected; --fraction-train of them train)."""
    n = cfg.num_clients
    common: dict[str, Any] = dict(
        fraction_train=cfg.fraction_train, fraction_evaluate=1.0 if cfg.eval else 0.0,
        min_train_nodes=max(1, math.ceil(cfg.fraction_train * n)), min_evaluate_nodes=n if cfg.eval else 0,
        min_available_nodes=n, train_metrics_aggr_fn=aggregate_metrics, evaluate_metrics_aggr_fn=aggregate_metrics)
    if cfg.strategy == "fedavg":
        strategy: FedAvg = SegkitFedAvg(**common)
    elif cfg.strategy == "fedprox":
        strategy = SegkitFedProx(**common, proximal_mu=cfg.proximal_mu)
    elif cfg.strategy == "fedadam":
        strategy = SegkitFedAdam(**common, eta=cfg.server_lr, eta_l=cfg.lr)
    else:
        raise ValueError(f"--strategy: unknown strategy {cfg.strategy!r}")
    strategy.round_offset, strategy.observer = round_offset, observer  # type: ignore[attr-defined]
    return strategy


SERVER_STATE = ("m_t", "v_t")  # FedOpt's moments; FedAvg and FedProx keep nothing between rounds


def strategy_state(strategy: FedAvg) -> dict[str, dict[str, torch.Tensor]]:
    """The strategy's server-side optimizer state as tensors (for the weights-only resume file)."""
    return {name: {k: torch.from_numpy(np.asarray(v)) for k, v in getattr(strategy, name).items()}
            for name in SERVER_STATE if getattr(strategy, name, None)}


def load_strategy_state(strategy: FedAvg, state: dict[str, dict[str, torch.Tensor]]) -> None:
    for name, arrays in state.items():
        setattr(strategy, name, {k: v.numpy() for k, v in arrays.items()})
