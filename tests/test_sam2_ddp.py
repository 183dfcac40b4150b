"""Two processes (torchrun, gloo on CPU) train the same weights as one process with the same global batch: the
SAM2 trainer and the semantic trainer, one after the other in the same three interpreters (one process alone, two
under torchrun), so the suite starts three interpreters for both instead of three each."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from trainer.checkpoint import load_weights
from trainer.sam2_model.model import Sam2Spec, build_model

ROOT = Path(__file__).resolve().parents[1]
WORKER = textwrap.dedent("""
    import sys
    from trainer.data.synthetic import make_dataset
    from trainer.sam2_ft.config import Sam2TrainConfig
    from trainer.sam2_ft.pipeline import run as run_sam2
    from trainer.semantic.config import SemanticTrainConfig
    from trainer.semantic.pipeline import run as run_semantic

    data = make_dataset(6, 128, seed=2)
    cfg = Sam2TrainConfig(image_size=128, no_pretrained=True, freeze="none", batch_size=4, grad_accum=1, steps=2,
                          lr=1e-4, warmup_steps=0, correction_clicks=1, eval=False, overlays=0, progress=False,
                          save_every=0, out=sys.argv[1] + "/sam2")
    print(run_sam2(cfg, data).status)
    cfg = SemanticTrainConfig(image_size=128, no_pretrained=True, batch_size=4, steps=2, warmup_steps=0, lr=1e-4,
                              eval=False, overlays=0, progress=False, save_every=0, out=sys.argv[1] + "/semantic")
    print(run_semantic(cfg, data).status)  # the process group of the first run serves this one too
    # (seconds of imports in every process of a run otherwise: lora.merged_state_dict at each save)
    assert "peft" not in sys.modules, "a run without --lora imported peft"
""")
RUNS = ("sam2", "semantic")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_and_two_processes(tmp_path: Path, worker: str, runs: tuple[str, ...], atol: float = 1e-5) -> dict[str, dict]:
    """Run `worker` (a script taking a folder, writing the run folders `runs` in it) alone and under torchrun with 2
    processes; each run's weights of the single process, checked to equal the two processes' (same keys, values to
    float rounding, `atol`). The default atol is a tenth of one AdamW step at the workers' lr 1e-4: Adam scales an
    element with a near-zero gradient up to ~lr whatever its size, so a different all-reduce summation order can
    move such an element by a few 1e-6 (1.6e-6 seen for the semantic head); a missing sync would flip whole
    updates (2e-4)."""
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    # the single process runs beside the two (each on one thread): their start-ups (imports) overlap
    one = subprocess.Popen([sys.executable, str(script), str(tmp_path / "one")], env=env, cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                              "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script),
                              str(tmp_path / "two")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        _, one_err = one.communicate(timeout=300)
    finally:
        if one.poll() is None:
            one.kill()
    assert one.returncode == 0, one_err[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    weights = {}
    for run in runs:
        a, b = (load_weights(tmp_path / side / run / "model.safetensors") for side in ("one", "two"))
        assert a.keys() == b.keys(), run
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=atol, msg=f"{run}: {key}")
        weights[run] = a
    return weights


def test_two_processes_match_one(tmp_path):
    from trainer.semantic.model import SemanticSpec, build_model as build_semantic

    weights = one_and_two_processes(tmp_path, WORKER, RUNS)
    # the comparison means something only if training moved what it trains (same seeded init): sam2's encoder and
    # decoder, the semantic model's head
    a = weights["sam2"]
    torch.manual_seed(0)
    init = build_model(Sam2Spec("tiny", 128)).state_dict()
    for part in ("image_encoder.", "sam_mask_decoder.", "sam_prompt_encoder."):
        assert any(not torch.equal(a[k], init[k]) for k in a if k.startswith(part)), part
    a = weights["semantic"]
    torch.manual_seed(0)
    init = build_semantic(SemanticSpec(["background", "vessel", "liquid"], "tiny", 128)).state_dict()
    assert any(not torch.equal(a[k], init[k]) for k in a if k.startswith("head."))
    for run in RUNS:
        assert (tmp_path / "two" / run / "config.yaml").exists() and (tmp_path / "two" / run / "state").is_dir()
    assert (tmp_path / "two" / "semantic" / "summary.json").is_file()
