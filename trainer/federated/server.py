"""The server's side of a federated run, given a Flower Grid: evaluation before, the strategy's rounds, a checkpoint
after every round, the run folder.

The global model lives here: base weights (frozen parts, identical on every client) + the aggregated trainable
parameters, saved as model.safetensors in sam2's key layout after each round, with state/ (round, FedAdam's moments,
RNG) so --resume continues from the last finished round.
"""

from __future__ import annotations

import time
from typing import Any

import flwr
import torch
from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp import Grid
from tqdm import tqdm

from trainer.checkpoint import STATE_NAME, load_state, rng_state, save_state, save_weights, set_rng_state
from trainer.engine.loop import TrainingStopped
from trainer.engine.summary import Summary
from trainer.federated.client import frozen_fingerprint, load_trainable, trainable_names, trainable_state
from trainer.federated.config import FederatedConfig
from trainer.federated.history import GLOBAL, RoundLog
from trainer.federated.sites import site_names
from trainer.federated.strategy import load_strategy_state, make_strategy, strategy_state
from trainer.runlog import RunDir
from trainer.sam2_ft.pipeline import build
from trainer.sam2_model.model import Sam2Spec, save_spec

ROUND_TIMEOUT_S = 7 * 24 * 3600  # Flower's default (1 h) is shorter than one round of a real fine-tune


def run_federation(grid: Grid, cfg: FederatedConfig, model: torch.nn.Module | None = None,
                   dataset: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or continue) the federation in cfg.out; returns summary.json's content.
    `model`: the starting global model if the caller built it already; `dataset`: what the caller knows of the
    clients' data (format, class names) for the summary — a real server knows nothing of it."""
    run = RunDir(cfg.out)
    if model is None:
        model = build(cfg, run.weights_path if cfg.resume else cfg.base_weights, torch.device("cpu"))
    trainable = trainable_names(model, cfg.frozen)
    state = load_state(run.state_dir / STATE_NAME) if cfg.resume else {}
    done = int(state.get("round", 0))
    if cfg.resume:
        set_rng_state(state["rng"])
        run.truncate_metrics(done, step_key="round")
    else:
        run.write_config(cfg.to_dict())
        save_spec(Sam2Spec(cfg.size, cfg.image_size), run.path)
        if run.metrics_path.exists():
            run.metrics_path.unlink()  # a fresh run in an old folder starts a fresh log

    log = RoundLog(run, site_names(cfg))
    strategy = make_strategy(cfg, log, round_offset=done)
    load_strategy_state(strategy, state.get("strategy", {}))
    arrays = ArrayRecord(trainable_state(model))
    config = {"base-fingerprint": frozen_fingerprint(model)}
    if not cfg.resume and cfg.eval:  # the global model before any round, on every client's validation split
        replies = grid.send_and_receive(strategy.configure_evaluate(0, arrays, ConfigRecord(config), grid),
                                        timeout=ROUND_TIMEOUT_S)
        strategy.aggregate_evaluate(0, replies)

    session = cfg.rounds - done if not cfg.stop_after else min(cfg.rounds - done, cfg.stop_after)
    elapsed = float(state.get("train_time_s", 0.0))
    bar = tqdm(total=cfg.rounds, initial=done, desc="federated rounds", disable=not cfg.progress, dynamic_ncols=True)
    start = time.perf_counter()

    def checkpoint(server_round: int, global_arrays: ArrayRecord) -> None:
        """Flower calls this before the first round (0) and after each round's training and evaluation."""
        if server_round == 0:
            return None
        load_trainable(model, global_arrays.to_torch_state_dict())
        save_weights(model.state_dict(), run.weights_path)
        save_state({"round": done + server_round, "strategy": strategy_state(strategy), "rng": rng_state(),
                    "train_time_s": elapsed + time.perf_counter() - start}, run.state_dir / STATE_NAME)
        bar.update(1)
        bar.set_postfix(loss=f"{log.last('train').get('loss', float('nan')):.4f}",
                        miou_box=f"{log.last('eval').get('miou_box', float('nan')):.3f}")
        return None

    status = "finished"
    try:
        strategy.start(grid, arrays, num_rounds=session, timeout=ROUND_TIMEOUT_S, train_config=ConfigRecord(config),
                       evaluate_config=ConfigRecord(config), evaluate_fn=checkpoint)
    except TrainingStopped as err:
        status = "stopped"
        tqdm.write(f"warning: {err}; the last finished round's model is kept")
    finally:
        bar.close()
    rounds_done = int(load_state(run.state_dir / STATE_NAME)["round"]) if (run.state_dir / STATE_NAME).exists() else 0
    if status == "finished" and rounds_done < cfg.rounds:
        status = "paused"
    if rounds_done == 0:  # nothing trained: the starting model is the run's model
        save_weights(model.state_dict(), run.weights_path)
    timing = elapsed + time.perf_counter() - start
    log.plot()
    return summarise(cfg, log, model, trainable, status, rounds_done, timing, dataset or {}).write(run)


def summarise(cfg: FederatedConfig, log: RoundLog, model: torch.nn.Module, trainable: list[str], status: str,
              rounds_done: int, train_time_s: float, dataset: dict[str, Any]) -> Summary:
    """summary.json: the sam2 schema (the Hub card and `pull` read it as a sam2 model) + "federated"."""
    evals = log.evals()
    names = site_names(cfg)
    trains = [r for r in log.run.read_metrics() if r.get("phase") == "train" and r.get("client") in names]
    num_train = {r["client"]: int(r["num_examples"]) for r in trains}

    def pick(record: dict[str, Any]) -> dict[str, float]:
        return {k: v for k, v in record.items() if k.startswith(("miou_", "noc_", "auto_"))}

    def phase(client: str) -> tuple[dict, dict]:
        rounds = evals.get(client, {})
        return pick(rounds.get(0, {})), (pick(rounds[rounds_done]) if status == "finished" and rounds_done in rounds
                                         else {})

    images = rounds_done * cfg.local_steps * cfg.batch_size * cfg.grad_accum * len(num_train)
    state = model.state_dict()
    update_bytes = ArrayRecord({k: state[k] for k in trainable}).count_bytes()
    before, after = phase(GLOBAL)
    return Summary(
        kind="sam2", base_model=str(cfg.base_weights or "random-init"),
        model={"size": cfg.size, "image_size": cfg.image_size},
        dataset={"path": " + ".join(names) if cfg.client_data else str(cfg.data), **dataset,
                 "num_train": sum(num_train.values())},
        recipe={"loss": cfg.loss, "prompts": cfg.prompt_types, "correction_clicks": cfg.correction_clicks,
                "freeze": cfg.frozen, "precision": cfg.precision,
                "steps": cfg.steps, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "lr": cfg.lr,
                "weight_decay": cfg.weight_decay, "seed": cfg.seed},
        before=before, after=after, main_metric="miou_box", train_time_s=train_time_s,
        speed={"images_per_s": images / max(train_time_s, 1e-9)}, status=status,
        sections={"per_class": {"before": {}, "after": {}}, "federated": {
            "framework": f"flower {flwr.__version__}", "strategy": cfg.strategy, "clients": cfg.num_clients,
            "split": "one dataset per client" if cfg.client_data else cfg.split, "rounds": cfg.rounds,
            "rounds_done": rounds_done, "local_steps": cfg.local_steps, "fraction_train": cfg.fraction_train,
            **({"proximal_mu": cfg.proximal_mu} if cfg.strategy == "fedprox" else {}),
            **({"server_lr": cfg.server_lr} if cfg.strategy == "fedadam" else {}),
            "trainable_parameters": sum(state[k].numel() for k in trainable),
            "total_parameters": sum(p.numel() for p in model.parameters()),
            "update_bytes": update_bytes,  # one client's reply (and the global arrays sent to it)
            "model_bytes": sum(t.numel() * t.element_size() for t in state.values()),
            "bytes_per_round": 2 * update_bytes * max(1, round(cfg.fraction_train * cfg.num_clients)),
            "per_client": [{"client": name, "num_train": num_train.get(name),
                            "num_val_objects": evals.get(name, {}).get(0, {}).get("num_objects"),
                            "before": phase(name)[0], "after": phase(name)[1]} for name in names],
        }},
    )

