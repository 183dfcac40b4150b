"""`python -m trainer detectron2 ...`: fine-tune a detectron2 Mask R-CNN (flags from config.D2TrainConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer
from trainer.engine import summary
from trainer.engine.summary import change


def register(subparsers) -> None:
    register_trainer(subparsers, TrainerCommand(
        name="detectron2", help="fine-tune a detectron2 Mask R-CNN (model zoo) on your instance masks",
        description="Fine-tune a detectron2 model-zoo Mask R-CNN. Multi-process: --num-workers N (GPUs, or gloo "
                    "processes on CPU). Resume: --out RUN_DIR --resume [--steps MORE]. Any detectron2 cfg key: "
                    "--opts MODEL.RPN.NMS_THRESH 0.6 ...",
        config="trainer.d2_ft.config:D2TrainConfig", run="trainer.d2_ft.pipeline:run", report=report, aliases={"num_workers": ["--num-gpus"]}))


def report(result, cfg) -> None:
    summary.report(result, "detectron2", [f"segm AP {change(result.summary, 'segm_AP', 2)}, "
                                          f"bbox AP {change(result.summary, 'bbox_AP', 2)}"], rate="iters")
