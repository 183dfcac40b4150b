"""The run folder both trainers write, and the helpers that fill it.

    RUN_DIR/
      config.yaml          everything needed to rerun (kind, data, model, recipe)
      model_config.yaml    how to rebuild the model (sam2 config name / detectron2 cfg dump)
      model.safetensors    latest weights (checkpoint.save_weights)
      state/               resume state (never pushed)
      metrics.jsonl        one JSON object per logged step / eval
      summary.json         before/after metrics, timings, paths
      curves.png           plots of metrics.jsonl
      overlays/*.png       validation predictions drawn on the images
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from trainer.checkpoint import STATE_NAME, atomic_write


class RunDir:
    def __init__(self, path: str | Path, create: bool = True):
        """create=False: only read a run folder (another process's, perhaps still running)."""
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
            self.overlays.mkdir(exist_ok=True)

    # Well-known paths -----------------------------------------------------------------------------------------
    config_path = property(lambda self: self.path / "config.yaml")
    model_config_path = property(lambda self: self.path / "model_config.yaml")
    weights_path = property(lambda self: self.path / "model.safetensors")
    state_dir = property(lambda self: self.path / "state")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    summary_path = property(lambda self: self.path / "summary.json")
    curves_path = property(lambda self: self.path / "curves.png")
    overlays = property(lambda self: self.path / "overlays")

    def require_resumable(self) -> None:
        """--resume needs what an earlier session saved: the weights and the resume state."""
        if not ((self.state_dir / STATE_NAME).exists() and self.weights_path.exists()):
            raise FileNotFoundError(f"{self.path}: nothing to resume (no model.safetensors + state/)")

    # Writers ----------------------------------------------------------------------------------------------------
    def write_yaml(self, path: Path, data: Mapping[str, Any]) -> Path:
        text = yaml.safe_dump(_plain(data), sort_keys=False, width=10_000)  # a path stays on one line (grep-able)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    def write_config(self, config: Mapping[str, Any]) -> Path:
        return self.write_yaml(self.config_path, config)

    def read_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_path.read_text())

    def log(self, record: Mapping[str, Any]) -> None:
        """Append one metrics record (a 'time' field is added)."""
        with self.metrics_path.open("a") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **_plain(record)}) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record; a last line still being written (a live run read from outside) is left out."""
        if not self.metrics_path.exists():
            return []
        text = self.metrics_path.read_text()
        complete = text if text.endswith("\n") else text[:text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text())

    def truncate_metrics(self, after_step: int, step_key: str = "step") -> None:
        """On resume: drop records logged after the checkpoint's step so the curves don't repeat steps."""
        keep = [r for r in self.read_metrics() if r.get(step_key, -1) <= after_step]
        text = "".join(json.dumps(r) + "\n" for r in keep)
        atomic_write(self.metrics_path, lambda tmp: Path(tmp).write_text(text))

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        text = json.dumps(_plain(summary), indent=2)
        return atomic_write(self.summary_path, lambda tmp: Path(tmp).write_text(text))

    def plot_curves(self, keys: Iterable[str] | None = None, step_key: str = "step",
                    group_key: str | None = None) -> Path:
        """One panel per numeric metric found in metrics.jsonl (or just `keys`), against the step; with
        `group_key`, one line per value of that field in each panel (e.g. per client), with a legend."""
        # lazy: matplotlib only when drawing (seconds to import)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        records = self.read_metrics()
        names = list(keys) if keys is not None else sorted(
            {k for r in records for k, v in r.items() if isinstance(v, (int, float)) and k not in (step_key, "time", "epoch")})
        names = [n for n in names if any(n in r for r in records)] or ["loss"]
        cols = min(len(names), 3)
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
        groups = sorted({str(r.get(group_key)) for r in records if group_key in r}) if group_key else [None]
        for ax, name in zip(axes.flat, names):
            for group in groups:
                pts = [(r[step_key], r[name]) for r in records if name in r and step_key in r and r[name] is not None
                       and (group_key is None or str(r.get(group_key)) == group)]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, marker="o" if len(pts) < 20 else None, markersize=3, label=group)
            if group_key and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
            ax.set_title(name)
            ax.set_xlabel(step_key)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.tight_layout()
        atomic_write(self.curves_path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
        plt.close(fig)
        return self.curves_path


def _plain(value: Any) -> Any:
    """Make numpy/torch scalars, tuples and Paths YAML/JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value
