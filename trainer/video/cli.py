"""`python -m trainer sam2-video ...`: fine-tune SAM2's video memory on clips (flags from config.VideoTrainConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer
from trainer.engine import summary
from trainer.engine.summary import change


def register(subparsers) -> None:
    register_trainer(subparsers, TrainerCommand(
        name="sam2-video", help="fine-tune SAM2's video memory (memory attention, memory encoder, decoder) on clips",
        description="Fine-tune SAM2 on video clips with sam2's own SAM2Train and loss: the first frame prompted (mask, "
                    "box or click), corrective clicks on --correct-frames frames, memory over --frames frames; the "
                    "image encoder frozen and its per-frame features cached. Data: JPEGImages/ + Annotations/ "
                    "(DAVIS / MOSE), videos/ + Annotations/, or builtin. Multi-process: torchrun --nproc_per_node "
                    "N -m trainer sam2-video ...  Resume: --out RUN_DIR --resume [--steps MORE].",
        config="trainer.video.config:VideoTrainConfig", run="trainer.video.pipeline:run", report=report))


def report(result, cfg) -> None:
    s = result.summary
    after, baseline = s["metrics"]["after"], (s.get("baseline") or {}).get("metrics") or {}
    lines = [f"J&F, first-frame mask: {change(s, 'jf_mask')} (J {after['j_mask']:.3f}, F {after['f_mask']:.3f})",
             f"J&F, one click on the first frame: {change(s, 'jf_click')}"] if after else []
    refs = (s.get("references") or {}).get("metrics") or {}
    if refs:
        lines.append(f"references: nothing predicted {refs['jf_none']:.3f}, "
                     f"frame 0's mask copied {refs['jf_copy']:.3f}")
    if baseline:
        lines.append(f"image model {s['baseline']['model']} as a video predictor: J&F mask {baseline['jf_mask']:.3f}, "
                     f"click {baseline['jf_click']:.3f}")
    summary.report(result, "sam2-video", lines, rate="clips")
