"""onnxruntime-web, vendored: the Prompt tab decodes clicks in the visitor's browser with it (demo/browser_decode.py).

A pinned npm release, fetched by setup.sh (so also by the Space's Dockerfile) from the npm registry, checked against
the registry's sha512 and unpacked into demo/static/ort/ (git-ignored): the WebAssembly build only (no WebGPU /
WebGL), whose single-threaded runtime needs no cross-origin isolation (a Space has none). Three files: the API
(ort.wasm.min.js, a global `ort`), the Emscripten loader it imports and the runtime. Without them the app decodes
clicks on the server and says so.

    python demo/ort_assets.py        # fetch if missing (no dependencies beyond Python's standard library)
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "1.31.1"
TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
DIR = Path(__file__).resolve().parent / "static" / "ort"


def ready(folder: Path | None = None) -> bool:
    """Whether this version's files are all in `folder` (default DIR)."""
    folder = folder or DIR
    return (folder / "VERSION").is_file() and (folder / "VERSION").read_text().strip() == VERSION \
        and all((folder / name).is_file() for name in FILES)


def fetch(folder: Path | None = None, timeout: float = 120.0) -> Path:
    """Download the pinned tarball, check its integrity and unpack FILES into `folder` (written aside, then renamed:
    an interrupted fetch leaves no half set)."""
    folder = folder or DIR
    with urllib.request.urlopen(TARBALL, timeout=timeout) as response:
        blob = response.read()
    algo, expected = INTEGRITY.split("-", 1)
    if base64.b64encode(hashlib.new(algo, blob).digest()).decode() != expected:
        raise RuntimeError(f"{TARBALL}: the download does not match the pinned {algo} (corrupt or replaced)")
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for name in FILES:
            (partial / name).write_bytes(tar.extractfile(f"package/dist/{name}").read())
    (partial / "VERSION").write_text(VERSION + "\n")
    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
        folder.rmdir()
    partial.rename(folder)
    return folder


if __name__ == "__main__":
    if ready():
        print(f"onnxruntime-web {VERSION}: present in {DIR}")
        sys.exit(0)
    print(f"onnxruntime-web {VERSION}: fetching {TARBALL}")
    fetch()
    print(f"onnxruntime-web {VERSION}: {', '.join(FILES)} in {DIR}")
