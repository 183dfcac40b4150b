"""Every option of `python -m trainer federated`: the engine's loop options, the SAM2 model's and the SAM2
objective's (`Sam2Recipe`, as `python -m trainer sam2` has them: one source of defaults), plus the federation's.
Defaults follow the FedSAM write-up: image and prompt encoders frozen, box prompts, Dice + CE.

The same config travels to Flower apps started by `flwr run` as the run config (`to_run_config`: flat
`key-name = value` pairs, the form pyproject.toml's [tool.flwr.app.config] and `--run-config` take).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from trainer.engine.options import LoopOptions, option
from trainer.sam2_ft.config import Sam2Recipe
from trainer.sam2_model.options import AutoMaskOptions, Sam2ModelOptions

STRATEGIES = ("fedavg", "fedprox", "fedadam")
SPLITS = ("iid", "by-class", "dirichlet:ALPHA")
SIMULATION_ONLY = ("client_cpus", "client_gpus", "overlays", "push_to")  # what the CLI's driver does, not the apps
HIDDEN = {"cli": False}  # sam2 options that rounds replace (steps = rounds x local steps; every round is saved)


@dataclass
class FederatedConfig(Sam2Recipe, AutoMaskOptions, Sam2ModelOptions, LoopOptions):
    kind = "federated"
    freeze: str = option(Sam2Recipe, "freeze", "image_encoder,prompt_encoder")
    loss: str = option(Sam2Recipe, "loss", "dice_ce")
    prompts: str = option(Sam2Recipe, "prompts", "box")
    correction_clicks: int = option(Sam2Recipe, "correction_clicks", 0)
    warmup_steps: int = option(LoopOptions, "warmup_steps", 0)
    cache_views: int = option(LoopOptions, "cache_views", 8, "augmented views per image whose features the cache "
                              "keeps (frozen encoder): a step draws one (0 = auto, as `trainer sam2` defaults to)")
    auto_points_per_side: int = option(AutoMaskOptions, "auto_points_per_side", 0, "grid of the prompt-free "
                                       "evaluation (0 = off: prompted mIoU only)")
    stop_after: int = option(LoopOptions, "stop_after", 0, "stop this session after N rounds with a resumable "
                                                           "checkpoint (0 = run to --rounds)")
    steps: int = field(default=0, metadata=HIDDEN)
    eval_every: int = field(default=0, metadata=HIDDEN)
    save_every: int = field(default=0, metadata=HIDDEN)
    log_every: int = field(default=1, metadata=HIDDEN)
    # Federation
    client_data: list[str] = field(default_factory=list, metadata={
        "help": "one site's dataset, any format --data takes; repeat once per client (instead of splitting --data)",
        "metavar": "PATH"})
    clients: int = field(default=0, metadata={
        "help": "number of clients: splits --data into N (0 = one per --client-data, else 2)"})
    split: str = field(default="iid", metadata={
        "help": "how --data is split into clients: iid | by-class | dirichlet:ALPHA (label skew, smaller = more)"})
    rounds: int = field(default=3, metadata={"help": "federated rounds"})
    local_steps: int = field(default=10, metadata={"help": "optimizer steps each client trains per round"})
    strategy: str = field(default="fedavg", metadata={"help": "Flower strategy aggregating the clients' updates",
                                                      "choices": STRATEGIES})
    fraction_train: float = field(default=1.0, metadata={"help": "share of the clients trained each round"})
    proximal_mu: float = field(default=0.01, metadata={"help": "FedProx: weight of the proximal term"})
    server_lr: float = field(default=1e-3, metadata={"help": "FedAdam: server learning rate (eta)"})
    client_cpus: float = field(default=1.0, metadata={"help": "simulation: CPU cores per client"})
    client_gpus: float = field(default=0.0, metadata={"help": "simulation: GPUs per client (e.g. 0.5: two share one)"})

    @property
    def num_clients(self) -> int:
        return len(self.client_data) or self.clients or 2

    @property
    def dirichlet_alpha(self) -> float | None:
        """ALPHA of --split dirichlet:ALPHA (None for the other splits)."""
        if not self.split.startswith("dirichlet"):
            return None
        try:
            alpha = float(self.split.partition(":")[2])
        except ValueError:
            alpha = -1.0
        if alpha <= 0:
            raise ValueError(f"--split {self.split}: expected dirichlet:ALPHA with ALPHA > 0, e.g. dirichlet:0.5")
        return alpha

    def validate(self) -> "FederatedConfig":
        if self.client_data and self.clients not in (0, len(self.client_data)):
            raise ValueError(f"--clients {self.clients} but {len(self.client_data)} --client-data given; "
                             "give one --client-data per client, or --clients N to split --data")
        if self.split not in SPLITS[:2] and self.dirichlet_alpha is None:
            raise ValueError(f"--split: unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        for name in ("rounds", "local_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.lora:
            raise ValueError("--lora is not supported by the federated trainer yet: the sites exchange the trainable "
                             "weights, not LoRA adapters; train the decoder (the default) or use --freeze none")
        if not 0 < self.fraction_train <= 1:
            raise ValueError(f"--fraction-train must be in (0, 1], got {self.fraction_train}")
        self.clients = self.num_clients
        self.steps = self.rounds * self.local_steps  # each client's schedule spans the whole run
        super().validate()
        return self


    # Flower run config (flat scalars) ----------------------------------------------------------------------------
    def to_run_config(self) -> dict[str, bool | int | float | str]:
        """Every field as a Flower run config key (Flower accepts overrides of declared keys only: pyproject.toml
        declares all of them); lists are comma-joined, None is ""."""
        def scalar(value: Any) -> bool | int | float | str:
            return ",".join(value) if isinstance(value, list) else ("" if value is None else value)

        return {f.name.replace("_", "-"): scalar(getattr(self, f.name)) for f in fields(self)
                if f.metadata.get("cli", True) and f.name not in SIMULATION_ONLY}

    @classmethod
    def from_run_config(cls, run_config: dict[str, Any]) -> "FederatedConfig":
        """The config of a `flwr run` (pyproject.toml's [tool.flwr.app.config] + --run-config overrides)."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in run_config.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ValueError(f"run config: unknown key {key!r}")
            if known[name].default_factory is list:
                value = [v for v in str(value).split(",") if v]
            values[name] = None if value == "" else value
        return cls(**values).validate()
