"""The README.md model card of a pushed run, built with huggingface_hub's ModelCard from summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hub_cards.kinds import METRIC_LABELS, Kind, get_kind
from hub_cards.public import dataset_name, hub_id_or_none

TEMPLATE = Path(__file__).parent / "templates" / "modelcard.md"
DEFAULT_LICENSE = "apache-2.0"


def _fmt(value: Any) -> str:
    """One table cell: floats to 4 significant digits, lists comma-joined, missing as a dash."""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_fmt, value)) or "–"
    return f"{value:.4g}" if isinstance(value, float) else ("–" if value is None else str(value))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "es" if noun.endswith(("s", "x", "sh", "ch")) else "s")


def metric_label(name: str) -> str:
    """A metric's name in words; per-class IoUs (iou_<class>, semantic models) name their class."""
    return METRIC_LABELS.get(name) or (f"IoU, class {name[4:]}" if name.startswith("iou_") else name)


def metric_rows(kind: Kind, metrics: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(label, before, after, change) for the kind's metrics present in the summary, then any others."""
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    names = [m for m in kind.metrics if m in after or m in before]
    names += sorted(k for k in {**before, **after} if k not in names and isinstance(after.get(k), (int, float)))
    rows = []
    for name in names:
        b, a = before.get(name), after.get(name)
        delta = f"{round(a - b, 4):+.4g}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else "–"
        rows.append((f"{metric_label(name)} (`{name}`)", _fmt(b), _fmt(a), delta))
    return rows


def baseline_rows(kind: Kind, summary: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(label, baseline, this model) for a run that scored a baseline (semantic: SAM2's automatic masks)."""
    baseline = (summary.get("baseline") or {}).get("metrics") or {}
    after = (summary.get("metrics") or {}).get("after") or {}
    return [(f"{metric_label(name)} (`{name}`)", _fmt(baseline[name]), _fmt(after.get(name)))
            for name in [*kind.metrics, *sorted(k for k in baseline if k not in kind.metrics)] if name in baseline]


def federated_rows(summary: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, ...]]]:
    """The federated recipe and each client's box / 1-point mIoU before -> after ([] for other runs)."""
    fed = summary.get("federated") or {}
    if not fed:
        return [], []
    recipe = [(key.replace("_", " "), _fmt(fed[key])) for key in (
        "framework", "strategy", "clients", "split", "rounds", "rounds_done", "local_steps", "fraction_train",
        "proximal_mu", "server_lr", "trainable_parameters", "total_parameters", "update_bytes", "model_bytes")
        if key in fed]
    clients = [(str(c.get("client")), _fmt(c.get("num_train")), _fmt(c.get("num_val_objects")),
                *(f"{_fmt(c.get('before', {}).get(m))} → {_fmt(c.get('after', {}).get(m))}"
                  for m in ("miou_box", "miou_1pt"))) for c in fed.get("per_client", [])]
    return recipe, clients


def card_data(summary: Mapping[str, Any], model_name: str, license: str = DEFAULT_LICENSE) -> ModelCardData:
    """YAML metadata: library, task, base model and datasets (only real Hub ids), tags, eval results."""
    kind = get_kind(summary.get("kind"), "summary.json")
    dataset = summary.get("dataset") or {}
    dataset_id = hub_id_or_none(dataset.get("path"))
    after = (summary.get("metrics") or {}).get("after") or {}
    evals = [EvalResult(task_type=kind.pipeline_tag, dataset_type=dataset_id or "custom",
                        dataset_name=dataset_id or dataset_name(dataset.get("path")),
                        dataset_split="validation", metric_type=name, metric_name=METRIC_LABELS.get(name, name),
                        metric_value=float(after[name]))
             for name in kind.metrics if isinstance(after.get(name), (int, float))]
    return ModelCardData(
        library_name=kind.library_name, pipeline_tag=kind.pipeline_tag, license=license,
        base_model=hub_id_or_none(summary.get("base_model")), datasets=[dataset_id] if dataset_id else None,
        tags=["segkit", kind.name, "fine-tuned", kind.pipeline_tag, *kind.tags],
        model_name=model_name if evals else None, eval_results=evals or None,
    )


def build_card(summary: Mapping[str, Any], repo_id: str, curves: str | None = "curves.png",
               overlays: list[str] | None = None, license: str = DEFAULT_LICENSE,
               repo: Path | None = None) -> ModelCard:
    """The model card; `curves`/`overlays` are paths relative to the repo root (None/[] when absent). A snippet that
    needs a file (its 4th item) is shown only when `repo`, the staged folder, holds it (all are without `repo`)."""
    kind = get_kind(summary.get("kind"), "summary.json")
    dataset = summary.get("dataset") or {}
    classes = dataset.get("class_names") or []
    data_line = f"`{dataset_name(dataset.get('path'))}`" if dataset.get("path") else "a custom dataset"
    base = summary.get("base_model") or "random init"
    base_id = hub_id_or_none(base)
    recipe = summary.get("recipe") or {}
    federated_recipe, federated_clients = federated_rows(summary)
    return ModelCard.from_template(
        card_data(summary, repo_id.split("/")[-1], license),
        template_path=str(TEMPLATE),
        title=repo_id.split("/")[-1],
        kind=kind.name,
        dataset_line=f"{data_line} ({_count(len(classes), 'class')}: {', '.join(map(str, classes))})"
        if classes else data_line,
        base_model_line=f"[{base_id}](https://huggingface.co/{base_id})" if base_id else f"`{base}`",
        dataset_rows=[("dataset" if k == "path" else k, _fmt(v)) for k, v in dataset.items() if k != "class_names"]
        + [("classes", ", ".join(map(str, classes)))],
        recipe_rows=[(k, _fmt(v)) for k, v in recipe.items()]
        + [("train time (s)", _fmt(summary.get("train_time_s")))],
        main_metric=summary.get("main_metric", kind.main_metric),
        metric_rows=metric_rows(kind, summary.get("metrics") or {}),
        federated_recipe=federated_recipe,
        federated_clients=federated_clients,
        curves=curves,
        overlays=overlays or [],
        usage=kind.usage.format(repo_id=repo_id),
        # the other libraries read Hub ids and folders, not segkit's "file:" refs
        snippets=[(heading, text, code.format(repo_id=repo_id.removeprefix("file:")))
                  for heading, text, code, *needs in kind.snippets
                  if repo is None or all((repo / need).is_file() for need in needs)],
        files=kind.files,
        classes=[(c.get("name"), c.get("color")) for c in summary.get("classes") or []],
        baseline=summary.get("baseline") or {},
        baseline_rows=baseline_rows(kind, summary),
    )
