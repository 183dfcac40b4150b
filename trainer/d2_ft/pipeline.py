"""`run(config)`: prepare data and weights once, train in one or more processes, write the run folder.

Preparation (data loading and validation, the image cache, weight resolution) happens in the launching process,
so bad input is a one-line error there rather than a traceback from every spawned worker; the workers get a
small picklable `Plan`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from trainer import quiet
from trainer.checkpoint import CheckpointError, save_weights
from trainer.d2_ft import weights
from trainer.d2_ft.config import D2TrainConfig
from trainer.d2_ft.evaluate import coco_metrics, draw_overlays
from trainer.d2_ft.model import D2Spec, InstanceSegmenter, build_cfg, save_spec
from trainer.d2_ft.register import dataset_dicts, register
from trainer.d2_ft.weights import InitWeights
from trainer.data import load_dataset
from trainer.data.sample import SegmentationDataset
from trainer.engine.memory import tune_malloc
from trainer.engine.session import RunResult
from trainer.engine.summary import Summary
from trainer.precision import Precision, default_device, resolve
from trainer.runlog import RunDir

TRAIN_NAME, VAL_NAME = "d2ft_train", "d2ft_val"


@dataclass
class Plan:
    config: D2TrainConfig
    run_path: str
    spec: D2Spec
    init: InitWeights
    precision: Precision
    device: str
    train_dicts: list[dict[str, Any]]
    val_dicts: list[dict[str, Any]]
    dataset_info: dict[str, Any] = field(default_factory=dict)


def default_out() -> str:
    return os.path.join("runs", time.strftime("detectron2-%Y%m%d-%H%M%S"))


def make_spec(config: D2TrainConfig, class_names: list[str], init: InitWeights) -> D2Spec:
    """The architecture: from a folder we fine-tune (must have our class count), else from the flags."""
    sizes = {} if config.min_size <= 0 else dict(min_size_train=[config.min_size], min_size_test=config.min_size,
                                                 max_size_train=config.max_size, max_size_test=config.max_size)
    if init.spec is not None:
        if init.spec.num_classes != len(class_names):
            raise CheckpointError(f"{init.ref}: weights trained for {init.spec.num_classes} classes "
                                  f"{init.spec.class_names}, but the data has {len(class_names)}: {class_names}")
        return replace(init.spec, class_names=list(class_names), **sizes)
    return D2Spec(zoo_config=config.zoo_config, class_names=list(class_names), norm=config.resolved_norm,
                  depth=config.depth, freeze_at=2 if config.pretrained else 0, **sizes)


def prepare(config: D2TrainConfig, dataset: SegmentationDataset | None = None) -> Plan:
    """Everything that can fail on bad input, before any training process starts. `dataset` (in-memory data,
    e.g. synthetic) replaces reading config.data."""
    device = config.device or str(default_device())
    precision = resolve(config.precision, device)
    if dataset is None:
        dataset = load_dataset(config.data, config.format, config.skip_bad)
    train, val = dataset.split(config.val_fraction, config.seed)
    if len(train) == 0:
        raise ValueError(f"{config.data}: no training images")
    init = weights.resolve(config.weights, config.pretrained, config.zoo_config)
    spec = make_spec(config, dataset.class_names, init)
    run = RunDir(config.out or default_out())  # only now: bad input leaves no half-made run folder
    cache = run.state_dir / "images"
    plan = Plan(config=replace(config, out=str(run.path)), run_path=str(run.path), spec=spec, init=init,
                precision=precision, device=device,
                train_dicts=dataset_dicts(train, cache / "train", desc="caching train images"),
                val_dicts=dataset_dicts(val, cache / "val", desc="caching val images"),
                dataset_info={**dataset.describe(train, val, dataset.root or config.data, config.format),
                              "skipped": [str(e) for e in getattr(dataset, "skipped", [])]})
    try:  # a bad --opts key or value fails here once, not in every training process
        train_cfg(plan)
    except (KeyError, ValueError, AssertionError, TypeError) as err:
        raise ValueError(f"--opts {' '.join(config.opts)}: {err}") from err
    run.write_config(replace(plan.config, resume=False).to_dict())  # the file reruns the recipe as a fresh run
    return plan


def train_cfg(plan: Plan):
    """build_cfg(spec) plus the recipe: solver, datasets, run folder, then the user's --opts."""
    c = plan.config
    cfg = build_cfg(plan.spec, device=plan.device)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (TRAIN_NAME,), ((VAL_NAME,) if plan.val_dicts else ())
    cfg.SOLVER.BASE_LR = c.lr
    cfg.SOLVER.IMS_PER_BATCH = c.batch_size
    cfg.SOLVER.MAX_ITER = c.steps
    cfg.SOLVER.WARMUP_ITERS = c.warmup_iters
    cfg.SOLVER.STEPS = ()  # constant lr after warm-up, as in the balloon tutorial
    cfg.SOLVER.CHECKPOINT_PERIOD = c.save_every if c.save_every > 0 else c.steps
    cfg.SOLVER.AMP.ENABLED = plan.precision.name != "fp32"
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = c.roi_batch
    cfg.DATALOADER.NUM_WORKERS = c.loader_workers
    cfg.TEST.EVAL_PERIOD = c.eval_every
    cfg.SEED = c.seed
    cfg.OUTPUT_DIR = str(RunDir(plan.run_path).state_dir)
    if c.opts:
        cfg.merge_from_list(list(c.opts))
    return cfg


def worker(plan: Plan) -> None:
    """One training process (all of them run this; only the main one writes the run folder)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.engine import hooks
    from detectron2.utils import comm
    from detectron2.utils.env import seed_all_rng

    from trainer.d2_ft.hooks import EvalTimer, ExportHook, MetricsHook, ProgressHook
    from trainer.d2_ft.loop import D2Trainer

    quiet.install()  # a launched worker process does not inherit the fx logging filter
    c, run, main = plan.config, RunDir(plan.run_path), comm.is_main_process()
    if plan.device == "cpu":  # as the engine's loop does (trainer/engine/memory.py); 86 -> 82 s on the quickstart's run
        tune_malloc(plan.spec.min_size_test)  # its shortest edge (the zoo's 800 unless --min-size)
    if comm.get_world_size() > 1 and plan.device == "cpu":  # processes share the cores instead of oversubscribing
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // comm.get_local_size()))
    register(TRAIN_NAME, plan.train_dicts, plan.spec.class_names)
    register(VAL_NAME, plan.val_dicts, plan.spec.class_names)
    cfg = train_cfg(plan)
    seed_all_rng(c.seed + comm.get_rank())
    trainer = D2Trainer(cfg, plan.precision, c.augment)
    resumed = trainer.start(c.resume, plan.init)
    if main:  # drop records a resumed session will repeat (or all of them, for a fresh run in an old folder)
        if c.resume and not resumed:
            print(f"note: no checkpoint in {cfg.OUTPUT_DIR}; starting a fresh run", file=sys.stderr)
        run.truncate_metrics(trainer.start_iter if resumed else -1)

    evaluate = EvalTimer(lambda step=None: _evaluate(plan, trainer, run, step))
    before = _previous_before(run) if resumed else evaluate(step=0)
    extra = [ExportHook(lambda: _export(plan, trainer, run), c.save_every), hooks.EvalHook(c.eval_every, evaluate)]
    if main:
        extra += [MetricsHook(run, c.log_every), ProgressHook(c.progress)]
    trainer.register_hooks(extra)
    evaluate.seconds = 0.0  # training speed excludes evaluation, the one before training included
    start = time.perf_counter()
    trainer.train()
    train_time = max(time.perf_counter() - start - evaluate.seconds, 1e-9)
    if main:
        _finish(plan, trainer, run)
        summary(plan, before, evaluate.last, train_time, c.steps - trainer.start_iter).write(run)


def _evaluate(plan: Plan, trainer, run: RunDir, step: int | None) -> dict[str, float]:
    """COCO AP on the validation set (every process takes part), logged as val_* by the main one."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.utils import comm

    if not plan.val_dicts:
        return {}
    metrics = coco_metrics(trainer.cfg, trainer.model, VAL_NAME, run.state_dir / "eval", plan.precision)
    if comm.is_main_process():  # EvalHook calls after iteration `iter`, or after the loop with iter == max_iter
        step = step if step is not None else min(trainer.iter + 1, trainer.max_iter)
        run.log({"step": step, **{f"val_{k}": v for k, v in metrics.items()}})
    return metrics


def _export(plan: Plan, trainer, run: RunDir) -> None:
    """model.safetensors + model_config.yaml: the run folder is always a loadable model folder."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.utils import comm

    if comm.is_main_process():
        save_weights(trainer.unwrapped.state_dict(), run.weights_path, metadata={"kind": "detectron2"})
        save_spec(plan.spec, run.path, trainer.cfg)


def _finish(plan: Plan, trainer, run: RunDir) -> None:
    """Overlays of validation predictions and the curves (main process, after training)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.data import MetadataCatalog

    segmenter = InstanceSegmenter(trainer.unwrapped, trainer.cfg, plan.spec.class_names, plan.precision)
    draw_overlays(segmenter, plan.val_dicts, MetadataCatalog.get(VAL_NAME), run.overlays, plan.config.overlays)
    run.plot_curves()


def _previous_before(run: RunDir) -> dict[str, float]:
    """On resume: the before-training evaluation logged at step 0 by the first session."""
    for record in run.read_metrics():
        if record.get("step") == 0 and any(k.startswith("val_") for k in record):
            return {k[4:]: v for k, v in record.items() if k.startswith("val_")}
    return {}


def summary(plan: Plan, before: dict, after: dict, train_time: float, iters: int) -> Summary:
    c, spec = plan.config, plan.spec
    return Summary(
        kind="detectron2",
        base_model=plan.init.description if plan.init.kind != "zoo" else f"{spec.zoo_config} ({plan.init.ref})",
        model={"zoo_config": spec.zoo_config, "norm": spec.norm, "depth": spec.depth,
               "num_classes": spec.num_classes, "min_size_test": spec.min_size_test},
        dataset=plan.dataset_info,
        recipe={"precision": plan.precision.name, "augment": c.augment, "steps": c.steps, "batch_size": c.batch_size,
                "lr": c.lr, "roi_batch_per_image": c.roi_batch, "warmup": c.warmup_iters,
                "processes": c.num_workers * c.num_machines, "device": plan.device, "opts": list(c.opts)},
        before=before, after=after, main_metric="segm_AP", train_time_s=train_time,
        speed={"iters_per_s": iters / train_time if iters > 0 else None}, status=None)


def run(config: D2TrainConfig, dataset: SegmentationDataset | None = None) -> RunResult:
    """Train as configured (launching `num_workers` x `num_machines` processes when > 1)."""
    # lazy: detectron2 is optional (the SAM2 trainers and the app run without it); this module imports without it
    from detectron2.engine import launch

    plan = prepare(config, dataset)
    if config.num_workers * config.num_machines > 1:
        launch(worker, config.num_workers, num_machines=config.num_machines, machine_rank=config.machine_rank,
               dist_url=config.dist_url, args=(plan,))
    else:
        worker(plan)
    run_dir = RunDir(plan.run_path)
    return RunResult(run_dir.path, "finished", _read_summary(run_dir))


def _read_summary(run: RunDir) -> dict[str, Any]:
    return run.read_summary() if run.summary_path.exists() else {}
