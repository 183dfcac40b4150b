"""What the server records of each round: metrics.jsonl (one record per client per round and phase, plus the
aggregate as client "global"), curves.png by round, and summary.json (the sam2 schema + a "federated" section).

Records, keyed by "round" (0 = the evaluation before training):
    {"round": 2, "phase": "train", "client": "site_a", "loss": .., "lr": .., "num_examples": 6, "bytes_up": ..}
    {"round": 2, "phase": "eval", "client": "global", "miou_box": .., "miou_1pt": .., "num_objects": 14}
Everything here comes from the replies' MetricRecords and ArrayRecord sizes: numbers only.
"""

from __future__ import annotations

from typing import Any, Mapping

from flwr.app import Message, MetricRecord
from tqdm import tqdm

from trainer.engine.loop import TrainingStopped
from trainer.federated.client_app import CLIENT_KEY
from trainer.runlog import RunDir

GLOBAL = "global"
RENAME = {"train-loss": "loss", "num-examples": "num_examples", "skipped-steps": "skipped_steps"}
CURVES = ["miou_box", "miou_1pt", "loss"]


class RoundLog:
    """The strategy's observer: writes each round's replies to metrics.jsonl as they arrive."""

    def __init__(self, run: RunDir, names: list[str]):
        self.run, self.names = run, names

    def name(self, index: int) -> str:
        return self.names[index] if 0 <= index < len(self.names) else f"client_{index}"

    def __call__(self, phase: str, server_round: int, replies: list[Message], pooled: MetricRecord | None) -> None:
        kind = "train" if phase == "train" else ("before" if server_round == 0 else "eval")
        ok = sorted((r for r in replies if not r.has_error()), key=lambda r: int(r.content["metrics"][CLIENT_KEY]))
        errors = [f"node {r.metadata.src_node_id}: {r.error.reason}" for r in replies if r.has_error()]
        for reply in ok:
            metrics = reply.content["metrics"]
            record: dict[str, Any] = {"round": server_round, "phase": kind, "client": self.name(int(metrics[CLIENT_KEY]))}
            record.update(_numbers(metrics, phase))
            if phase == "train":
                record["bytes_up"] = reply.content["arrays"].count_bytes()
            self.run.log(record)
        for error in errors:
            self.run.log({"round": server_round, "phase": kind, "error": error})
            tqdm.write(f"round {server_round}: a client failed ({phase}): {error}")
        if pooled is not None:  # Flower's weighted mean; the weights (images / objects) are summed
            total = sum(int(r.content["metrics"]["num-examples"]) for r in ok)
            record = {"round": server_round, "phase": kind, "client": GLOBAL,
                      **_numbers({**pooled, "num-examples": total}, phase)}
            if phase == "train":
                record["bytes_up"] = sum(r.content["arrays"].count_bytes() for r in ok)
            self.run.log(record)
        elif phase == "train":
            raise TrainingStopped(f"round {server_round}: no client finished training"
                                  + (f" ({'; '.join(errors)})" if errors else ""))

    # Reading back -------------------------------------------------------------------------------------------------
    def evals(self) -> dict[str, dict[int, dict[str, Any]]]:
        """client -> round -> its evaluation record (the "before" one is round 0)."""
        out: dict[str, dict[int, dict[str, Any]]] = {}
        for r in self.run.read_metrics():
            if r.get("phase") in ("before", "eval") and "client" in r:
                out.setdefault(r["client"], {})[r["round"]] = r
        return out

    def last(self, phase: str, client: str = GLOBAL) -> dict[str, Any]:
        found = [r for r in self.run.read_metrics() if r.get("phase") == phase and r.get("client") == client]
        return found[-1] if found else {}

    def plot(self) -> None:
        self.run.plot_curves(keys=CURVES, step_key="round", group_key="client")


def _numbers(metrics: Mapping[str, Any], phase: str) -> dict[str, float]:
    out = {RENAME.get(k, k): v for k, v in metrics.items() if k != CLIENT_KEY}
    if phase != "train" and "num_examples" in out:  # an evaluation's weight is the number of objects
        out["num_objects"] = out.pop("num_examples")
    return out

