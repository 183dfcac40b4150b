"""The federated apps for real: a SuperLink and two SuperNodes on 127.0.0.1 (separate processes, Flower's own
executables), the app submitted with `flwr run` from this repo (pyproject.toml's [tool.flwr.app]), one short round.
In deployment Flower starts a fresh ClientApp process per message, so the run is kept to one training round."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import torch
from safetensors.torch import load_file

from trainer.federated.client import trainable_names
from trainer.federated.config import FederatedConfig
from trainer.sam2_ft.pipeline import build

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "flower-superlink exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"SuperLink on 127.0.0.1:{port} not healthy after {timeout} s")


def test_pyproject_declares_every_option_with_the_cli_default():
    """Flower only accepts --run-config keys the app declares; the declared values are the CLI's defaults."""
    app = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert app["config"] == FederatedConfig().to_run_config()
    assert app["components"] == {"serverapp": "trainer.federated.server_app:app",
                                 "clientapp": "trainer.federated.client_app:app"}


def test_superlink_and_two_supernodes_run_the_apps(tmp_path):
    home, out = tmp_path / "flwr_home", tmp_path / "run"
    link = free_port()
    home.mkdir()
    (home / "config.toml").write_text(f'[superlink]\ndefault = "local-test"\n\n[superlink.local-test]\n'
                                      f'address = "127.0.0.1:{link}"\ninsecure = true\n')
    env = {**os.environ, "FLWR_HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONWARNINGS": "ignore"}
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("superlink", "node0", "node1")}
    procs = [subprocess.Popen([BIN / "flower-superlink", "--insecure", "--disable-runtime-dependency-installation",
                               "--host", "127.0.0.1", "--port", str(link)], cwd=tmp_path, env=env,
                              stdout=logs["superlink"], stderr=subprocess.STDOUT)]
    try:
        wait_healthy(link, procs[0])
        for i in range(2):
            procs.append(subprocess.Popen(
                [BIN / "flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{link}", "--port",
                 str(free_port()), "--node-config", f"partition-id={i} num-partitions=2"],
                cwd=tmp_path, env=env, stdout=logs[f"node{i}"], stderr=subprocess.STDOUT))
        run_config = (f"no-pretrained=true image-size=128 rounds=1 local-steps=1 batch-size=1 eval=false "
                      f"progress=false out='{out}'")
        done = subprocess.run([BIN / "flwr", "run", str(REPO), "local-test", "--run-config", run_config, "--stream"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        for log in logs.values():
            log.close()

    logs_text = "".join((tmp_path / f"{name}.log").read_text() for name in logs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished", logs_text[-3000:]
    assert summary["federated"]["rounds_done"] == 1 and summary["kind"] == "sam2"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sorted(r["client"] for r in records if r["phase"] == "train") == ["client_0", "client_1", "global"]
    cfg = FederatedConfig(no_pretrained=True, image_size=128)
    base = build(cfg, None, torch.device("cpu"))
    trainable, final = trainable_names(base, cfg.frozen), load_file(out / "model.safetensors")
    start = base.state_dict()
    assert all(torch.equal(final[k], v) for k, v in start.items() if k not in trainable)
    assert any(not torch.equal(final[k], start[k]) for k in trainable)
