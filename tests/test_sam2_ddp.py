"""Two processes (torchrun, gloo on CPU) train the same weights as one process with the same global batch."""

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
    from trainer.sam2_ft.pipeline import run

    cfg = Sam2TrainConfig(image_size=128, no_pretrained=True, freeze="none", batch_size=4, grad_accum=1, steps=2,
                          lr=1e-4, warmup_steps=0, correction_clicks=1, eval=False, overlays=0, progress=False,
                          save_every=0, out=sys.argv[1])
    print(run(cfg, make_dataset(6, 128, seed=2)).status)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_and_two_processes(tmp_path: Path, worker: str, atol: float = 1e-5) -> tuple[dict, dict]:
    """Run `worker` (a script taking its run folder) alone and under torchrun with 2 processes; both weights,
    checked to hold the same keys and values (to float rounding, `atol`). The default atol is a tenth of one
    AdamW step at the workers' lr 1e-4: Adam scales an element with a near-zero gradient up to ~lr whatever its
    size, so a different all-reduce summation order can move such an element by a few 1e-6."""
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
    a, b = load_weights(tmp_path / "one" / "model.safetensors"), load_weights(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=atol, msg=key)
    return a, b


def test_two_processes_match_one(tmp_path):
    a, _ = one_and_two_processes(tmp_path, WORKER)
    # the comparison means something only if training moved the encoder and the decoder (same seeded init)
    torch.manual_seed(0)
    init = build_model(Sam2Spec("tiny", 128)).state_dict()
    for part in ("image_encoder.", "sam_mask_decoder.", "sam_prompt_encoder."):
        assert any(not torch.equal(a[k], init[k]) for k in a if k.startswith(part)), part
    assert (tmp_path / "two" / "config.yaml").exists() and (tmp_path / "two" / "state").is_dir()
