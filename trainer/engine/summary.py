"""summary.json, one schema for every trainer, and the one report `python -m trainer <command>` prints from it.

The Hub model card (hub_cards/card.py) reads these keys: kind, base_model, model, dataset, recipe, metrics
{before, after}, main_metric, train_time_s, the speeds, status, and a kind's own sections (per_class, classes,
per_object, baseline, federated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # runlog imports torch; the CLI's report (this module) is read by `--help`
    from trainer.runlog import RunDir


@dataclass
class Summary:
    kind: str  # the command that trained it (hub_cards/kinds.py: how the card and `pull` read the run)
    base_model: str  # what training started from: a Hub id, a file or folder, or "random-init"
    model: dict[str, Any]  # the architecture (size, image size, ...)
    dataset: dict[str, Any]  # SegmentationDataset.describe(...) or its like
    recipe: dict[str, Any]  # the options that shaped the training
    before: dict[str, Any]  # metrics before training ({} when not evaluated)
    after: dict[str, Any]  # metrics after training ({} unless finished and evaluated)
    main_metric: str  # the metrics key the card leads with
    train_time_s: float
    speed: dict[str, float | None] = field(default_factory=dict)  # {"images_per_s": ...} (video: clips too)
    status: str | None = "finished"  # "finished" | "paused" | "stopped" (None: the trainer does not record it)
    sections: dict[str, Any] = field(default_factory=dict)  # the kind's own: per_class, baseline, federated ...

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_model": self.base_model, "model": self.model, "dataset": self.dataset,
                "recipe": self.recipe, "metrics": {"before": self.before, "after": self.after},
                "main_metric": self.main_metric, "train_time_s": round(self.train_time_s, 2),
                **{k: v if v is None else round(v, 3) for k, v in self.speed.items()},
                **({"status": self.status} if self.status is not None else {}), **self.sections}

    def write(self, run: RunDir) -> dict[str, Any]:
        """RUN_DIR/summary.json; returns what was written."""
        data = self.to_dict()
        run.write_summary(data)
        return data


def picked(metrics: dict[str, Any], keep: Iterable[str] | None = None, prefixes: tuple[str, ...] = ()) -> dict:
    """The metrics a summary records: the keys in `keep` (all when None) and those starting with `prefixes`."""
    keep = None if keep is None else set(keep)
    return {k: v for k, v in metrics.items() if (keep is None or k in keep) or (prefixes and k.startswith(prefixes))}


# The CLI report --------------------------------------------------------------------------------------------------
def change(summary: dict[str, Any], key: str, digits: int = 3) -> str:
    """'before -> after' of one metric (before reads 0 when it was not measured)."""
    before, after = summary["metrics"]["before"], summary["metrics"]["after"]
    return f"{before.get(key, 0):.{digits}f} -> {after.get(key, 0):.{digits}f}"


def report(result: Any, command: str, lines: Iterable[str] = (), rate: str = "images") -> None:
    """What every trainer prints when its run ends: the outcome, the kind's metric lines, the speed, where to look,
    and how to continue a paused run."""
    s = result.summary
    print(f"\nrun {result.status}: {result.path}")
    for line in lines:
        print(f"  {line}")
    per_s = s.get(f"{rate}_per_s")
    print(f"  {per_s:.2f} {rate}/s over {s['train_time_s']:.0f} s" if per_s else f"  {s['train_time_s']:.0f} s")
    print(f"  look at: {result.path / 'summary.json'}, {result.path / 'curves.png'}, {result.path / 'overlays'}/")
    if result.status == "paused":
        print(f"  continue with: python -m trainer {command} --out {result.path} --resume")
