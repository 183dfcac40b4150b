"""The Space under one attacker and 20 normal visitors: the app's peak memory and the visitors' click p50 / p95.

    python bench/bench_app_attack_mix.py                      this checkout
    python bench/bench_app_attack_mix.py --repo /tmp/before   another checkout of segkit (e.g. main before issue 27)

The app (random-init sam2.1 tiny, offline, public rules, --image-size 256) runs in a child process of the given
checkout, under an address-space cap (--cap-mb) so an attack that would take the machine's memory fails instead.
Loopback only, bounded loops: each visitor makes --clicks clicks (/segment, one point, the astronaut photo, whose
embedding is computed once and cached), while the attacker repeats --attacks rounds of: a prompt of --points points
on /segment, and an automatic-mask grid of 64 points per side (the old slider's maximum). Peak memory is the child's
VmHWM, minus its value after a warm-up click.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

warnings.filterwarnings("ignore")
BASE = "facebook/sam2.1-hiera-tiny"
# the child: works with any segkit checkout that has demo.testing.running_app (main's has)
LAUNCH = """
import json, resource, sys
cap = int(sys.argv[2]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from demo.testing import running_app
with running_app(sys.argv[1], with_d2=False, with_semantic=False) as served:
    print(json.dumps({k: str(v) for k, v in served.items()}), flush=True)
    sys.stdin.read()
"""


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def photo(folder: Path) -> str:
    from PIL import Image
    from skimage import data

    path = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return str(path)


def visitor(url: str, image: str, clicks: int, seed: int) -> tuple[list[float], int]:
    """(latencies in s, errors) of one visitor's clicks."""
    import random

    from gradio_client import Client, handle_file

    client, rng, times, errors = Client(url, verbose=False), random.Random(seed), [], 0
    for _ in range(clicks):
        prompts = json.dumps({"points": [[rng.randint(50, 450), rng.randint(50, 450), 1]]})
        start = time.perf_counter()
        try:
            client.predict(handle_file(image), prompts, BASE, "fp32", False, api_name="/segment")
            times.append(time.perf_counter() - start)
        except Exception:
            errors += 1
    return times, errors


def attacker(url: str, image: str, rounds: int, points: int, stop: threading.Event) -> list[str]:
    """What each attack got back: 'answered' or the start of the refusal."""
    from gradio_client import Client, handle_file

    client, outcomes = Client(url, verbose=False), []
    many = json.dumps({"points": [[100, 100, 1]] * points}, separators=(",", ":"))
    attacks = [lambda: client.predict(handle_file(image), many, BASE, "fp32", False, api_name="/segment"),
               lambda: client.predict(handle_file(image), BASE, "fp32", 64, 0.0, 0.0, 0, api_name="/automatic")]
    for _ in range(rounds):
        for attack in attacks:
            if stop.is_set():
                return outcomes
            try:
                attack()
                outcomes.append("answered")
            except Exception as err:
                outcomes.append(str(err).splitlines()[0][:70])
    return outcomes


def run(repo: Path, args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="segkit-attack-mix-"))
    image = photo(root)
    env = {**os.environ, "SEGKIT_PUBLIC": "1", "SEGKIT_SESSION_DIR": str(root / "sessions"),
           "PYTHONPATH": str(repo)}
    child = subprocess.Popen([sys.executable, "-c", LAUNCH, str(root), str(args.cap_mb)], cwd=repo, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if not select.select([child.stdout], [], [], 300)[0]:
            raise RuntimeError("the app did not start")
        url = json.loads(child.stdout.readline())["url"]
        visitor(url, image, 1, 0)  # warm: model loaded, embedding cached
        baseline = peak_mb(child.pid)
        stop = threading.Event()
        with ThreadPoolExecutor(args.visitors + 1) as pool:
            attack = pool.submit(attacker, url, image, args.attacks, args.points, stop)
            clicks = [pool.submit(visitor, url, image, args.clicks, seed) for seed in range(args.visitors)]
            results = [c.result() for c in clicks]
            stop.set()
            outcomes = attack.result()
        times = sorted(t for ts, _ in results for t in ts)
        alive = child.poll() is None
        return {"repo": str(repo), "peak_growth_mb": round(peak_mb(child.pid) - baseline) if alive else None,
                "baseline_mb": round(baseline), "app_alive": alive,
                "click_p50_ms": round(1000 * statistics.median(times)) if times else None,
                "click_p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))]) if times else None,
                "clicks_ok": len(times), "click_errors": sum(e for _, e in results), "attacks": outcomes}
    finally:
        if child.poll() is None:
            child.stdin.close()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--attacks", type=int, default=3)
    parser.add_argument("--points", type=int, default=4000)
    parser.add_argument("--cap-mb", type=int, default=10240)
    args = parser.parse_args()
    print(json.dumps(run(args.repo.resolve(), args), indent=1))


if __name__ == "__main__":
    main()
