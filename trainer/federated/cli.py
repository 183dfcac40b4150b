"""`python -m trainer federated ...`: federated SAM2 fine-tuning with Flower (flags from config.FederatedConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer
from trainer.engine import summary
from trainer.engine.summary import change


def register(subparsers) -> None:
    register_trainer(subparsers, TrainerCommand(
        name="federated", help="federated SAM2 fine-tuning across sites with Flower (FedAvg / FedProx / FedAdam)",
        description="Fine-tune SAM2 across clients that keep their data: each round every client trains the SAM2 "
                    "trainer's steps locally and sends back only the trainable parameters; a Flower strategy "
                    "aggregates them. Runs in Flower's Simulation Engine; the same apps run on a SuperLink + "
                    "SuperNodes (README). Clients: --client-data A --client-data B, or --clients N --split iid. "
                    "Resume: --out RUN_DIR --resume [--rounds MORE].",
        config="trainer.federated.config:FederatedConfig", run="trainer.federated.pipeline:run", report=report))


def report(result, cfg) -> None:
    s = result.summary
    fed = s["federated"]
    lines = [f"{fed['clients']} clients, {fed['rounds_done']}/{fed['rounds']} rounds of {fed['local_steps']} local "
             f"steps, {fed['strategy']}; {fed['update_bytes'] / 1e6:.1f} MB per client update "
             f"(whole model {fed['model_bytes'] / 1e6:.1f} MB)"]
    if s["metrics"]["after"]:
        lines.append(f"global model, pooled validation mIoU (box / 1 point): {change(s, 'miou_box')} / "
                     f"{change(s, 'miou_1pt')}")
        lines += [f"  {c['client']}: box {c['before'].get('miou_box', 0):.3f} -> {c['after'].get('miou_box', 0):.3f}"
                  for c in fed["per_client"]]
    summary.report(result, "federated", lines, rate="rounds")
