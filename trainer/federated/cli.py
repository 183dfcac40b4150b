"""`python -m trainer federated ...`: federated SAM2 fine-tuning with Flower (flags from config.FederatedConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer


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
    print(f"\nrun {result.status}: {result.path}")
    print(f"  {fed['clients']} clients, {fed['rounds_done']}/{fed['rounds']} rounds of {fed['local_steps']} local "
          f"steps, {fed['strategy']}; {fed['update_bytes'] / 1e6:.1f} MB per client update "
          f"(whole model {fed['model_bytes'] / 1e6:.1f} MB)")
    before, after = s["metrics"]["before"], s["metrics"]["after"]
    if after:
        print(f"  global model, pooled validation mIoU (box / 1 point): {before.get('miou_box', 0):.3f} -> "
              f"{after['miou_box']:.3f} / {before.get('miou_1pt', 0):.3f} -> {after['miou_1pt']:.3f}")
        for client in fed["per_client"]:
            b, a = client["before"], client["after"]
            print(f"    {client['client']}: box {b.get('miou_box', 0):.3f} -> {a.get('miou_box', 0):.3f}")
    print(f"  {s['train_time_s']:.0f} s")
    print(f"  look at: {result.path / 'summary.json'}, {result.path / 'curves.png'}, {result.path / 'overlays'}/")
    if result.status == "paused":
        print(f"  continue with: python -m trainer federated --out {result.path} --resume")
