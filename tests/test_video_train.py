"""`python -m trainer sam2-video` end to end on the built-in clips: run folder, summary, card, push/pull, evaluate,
resume (2 + 2 steps = 4, bitwise), the weights a plain sam2 video predictor loads, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from trainer.cli import main

FAST = ["--data", "builtin", "--no-pretrained", "--image-size", "128", "--frames", "3", "--correction-points", "1",
        "--lr", "1e-4", "--no-progress"]
ARTIFACTS = ["config.yaml", "model_config.yaml", "model.safetensors", "metrics.jsonl", "summary.json", "curves.png",
             "state/resume_state.pt", "overlays/val_00.png"]


@pytest.fixture(autouse=True)
def local_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_LOCAL_HUB", str(tmp_path / "hub"))


def test_run_folder_card_push_pull_and_evaluate(tmp_path, capsys, one_thread):
    from demo.testing import make_sam2_repo
    from test_video_data import davis

    out = tmp_path / "run"
    image_model = make_sam2_repo(tmp_path / "image-model", image_size=128)
    code = main(["sam2-video", *FAST, "--steps", "3", "--eval-clips", "1", "--overlays", "1", "--out", str(out),
                 "--compare-with", str(image_model), "--push-to", "local:me/video"])
    assert code == 0, capsys.readouterr().err
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "sam2-video" and summary["main_metric"] == "jf_mask"
    assert set(summary["metrics"]["after"]) == {"jf_mask", "j_mask", "f_mask", "jf_click", "j_click", "f_click"}
    assert summary["dataset"]["num_train"] == 16 and summary["dataset"]["num_val"] == 6
    assert summary["recipe"]["trained"] == ["memory_attention", "memory_encoder", "mask_decoder", "obj_ptr"]
    assert yaml.safe_load((out / "model_config.yaml").read_text())["kind"] == "sam2-video"
    assert summary["baseline"]["model"] == "image-model" and "jf_mask" in summary["baseline"]["metrics"]
    printed = capsys.readouterr().out
    assert "J&F, first-frame mask" in printed and "image model image-model as a video predictor" in printed
    assert "references: nothing predicted" in printed and set(summary["references"]["metrics"]) == {"jf_none", "jf_copy"}
    assert "pushed:" in printed

    repo = tmp_path / "hub" / "me" / "video"
    card = (repo / "README.md").read_text()
    assert "J&F, first-frame mask" in card and "propagate_in_video" in card and str(tmp_path) not in card
    assert "Baseline, scored the same way on the same clips: a SAM2 image model used as a video predictor" in card
    assert main(["pull", "local:me/video", "--kind", "sam2-video"]) == 0
    capsys.readouterr()

    clips = davis(tmp_path / "clips", videos=("a",), frames=4)
    assert main(["evaluate", "local:me/video", "--data", str(clips), "--json", str(tmp_path / "e.json")]) == 0
    results = json.loads((tmp_path / "e.json").read_text())
    assert results["kind"] == "sam2-video" and 0 <= results["metrics"]["jf_mask"] <= 1
    assert main(["evaluate", "local:me/video", "--data", str(tmp_path / "nope")]) == 2


def test_resume_after_a_pause_equals_one_run_and_its_weights_are_a_plain_sam2_video_checkpoint(tmp_path, one_thread):
    from sam2.build_sam import build_sam2_video_predictor

    from trainer.sam2_model.model import CONFIGS

    common = [*FAST, "--steps", "4", "--no-eval", "--overlays", "0", "--save-every", "0", "--warmup-steps", "1"]
    assert main(["sam2-video", *common, "--out", str(tmp_path / "one")]) == 0
    assert main(["sam2-video", *common, "--out", str(tmp_path / "two"), "--stop-after", "2"]) == 0
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["status"] == "paused"
    assert main(["sam2-video", "--out", str(tmp_path / "two"), "--resume"]) == 0
    one, two = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    changed = [k for k in one if k.startswith("memory_attention") and not torch.equal(one[k], two[k])]
    assert not changed and all(torch.equal(one[k], two[k]) for k in one)
    steps = [r["step"] for r in map(json.loads, (tmp_path / "two" / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2, 3, 4]

    # the run's weights are a checkpoint plain sam2 loads into its video predictor
    torch.save({"model": one}, tmp_path / "model.pt")
    predictor = build_sam2_video_predictor(CONFIGS["tiny"], str(tmp_path / "model.pt"), device="cpu",
                                           hydra_overrides_extra=["++model.image_size=128"])
    assert torch.equal(predictor.state_dict()["memory_attention.layers.0.linear1.weight"],
                       one["memory_attention.layers.0.linear1.weight"])


def test_bad_options_and_data_are_one_line_errors(tmp_path, capsys):
    from test_video_data import davis

    assert main(["sam2-video", *FAST, "--frames", "1", "--out", str(tmp_path / "a")]) == 2
    assert "--frames must be >= 2" in capsys.readouterr().err
    assert main(["sam2-video", *FAST, "--train", "image_encoder", "--out", str(tmp_path / "b")]) == 2
    assert "--train: unknown part(s) ['image_encoder']" in capsys.readouterr().err
    clips = davis(tmp_path / "clips", videos=("a", "b"), frames=3)
    (clips / "JPEGImages" / "b" / "00001.jpg").write_bytes(b"junk")
    assert main(["sam2-video", *FAST, "--data", str(clips), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "b/00001.jpg" in err and "--skip-bad" in err


def test_torchrun_two_processes_bf16_and_accumulation(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "trainer", "sam2-video",
           *FAST, "--steps", "2", "--batch-size", "2", "--grad-accum", "2", "--precision", "bf16", "--no-eval",
           "--overlays", "0", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["recipe"]["precision"] == "bf16"
    assert [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())] == [1, 2]


def test_quickstart_video_step_starts_from_its_image_run_and_its_headline_gives_the_references(tmp_path, capsys):
    from trainer.quickstart import headline, recipe

    runs = tmp_path / "runs"
    alone = recipe("sam2-video", str(runs))  # `--only sam2-video` on a fresh clone: random init, said so
    assert "--no-pretrained" in alone and "--weights" not in alone and "no SAM2 run" in capsys.readouterr().out
    (runs / "quickstart-sam2").mkdir(parents=True)
    (runs / "quickstart-sam2" / "model.safetensors").write_bytes(b"")
    chained = recipe("sam2-video", str(runs))
    assert "--no-pretrained" not in chained
    assert chained[chained.index("--weights") + 1] == str(runs / "quickstart-sam2")
    assert chained[chained.index("--image-size") + 1] == "256"  # the image run's size
    assert "starts from the SAM2 image model" in capsys.readouterr().out

    summary = {"kind": "sam2-video", "metrics": {"before": {"jf_mask": 0.1, "jf_click": 0.1},
                                                 "after": {"jf_mask": 0.3, "jf_click": 0.2}},
               "references": {"metrics": {"jf_none": 0.21, "jf_copy": 0.1}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert headline(tmp_path / "summary.json") == ("J&F, first-frame mask 0.10 -> 0.30 | J&F, one click on the first "
                                                   "frame 0.10 -> 0.20 | references: nothing predicted 0.21, frame "
                                                   "0's mask copied 0.10")
