"""`python -m trainer sam2-video ...`: fine-tune SAM2's video memory on clips (flags from config.VideoTrainConfig)."""

from __future__ import annotations

from trainer.commands import TrainerCommand, register_trainer


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
    before, after = s["metrics"]["before"], s["metrics"]["after"]
    baseline = (s.get("baseline") or {}).get("metrics") or {}
    print(f"\nrun {result.status}: {result.path}")
    if after:
        print(f"  J&F, first-frame mask: {before.get('jf_mask', 0):.3f} -> {after['jf_mask']:.3f} "
              f"(J {after['j_mask']:.3f}, F {after['f_mask']:.3f})")
        print(f"  J&F, one click on the first frame: {before.get('jf_click', 0):.3f} -> {after['jf_click']:.3f}")
    if baseline:
        print(f"  image model {s['baseline']['model']} as a video predictor: J&F mask {baseline['jf_mask']:.3f}, "
              f"click {baseline['jf_click']:.3f}")
    print(f"  {s['clips_per_s']:.2f} clips/s over {s['train_time_s']:.0f} s")
    print(f"  look at: {result.path / 'summary.json'}, {result.path / 'curves.png'}, {result.path / 'overlays'}/")
    if result.status == "paused":
        print(f"  continue with: python -m trainer sam2-video --out {result.path} --resume")
