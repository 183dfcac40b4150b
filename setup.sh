#!/usr/bin/env bash
# One-command install of the real stack into .venv (Python 3.11); the Space's Dockerfile runs this same script.
# Every version is pinned in requirements-stack.txt / requirements.txt (plus sam2 and the detectron2 commit below);
# detectron2 and sam2 go in last with --no-deps, so nothing unpinned comes in through them.
# detectron2 0.6 declares iopath<0.1.10 while sam2 needs >=0.1.10; 0.1.10 serves both (the tests run both), so that
# stale pin is dropped from detectron2's wheel metadata before installing: no resolver error, `pip check` clean.
# Idempotent: a stamp of the requirement files skips everything when nothing changed.
# Also fetches onnxruntime-web's WebAssembly build into demo/static/ort/ (demo/ort_assets.py).
# Env: VENV (default .venv), PYTHON (python3.11), VENDOR (a folder with detectron2's wheel / source, ../shared/vendor),
# D2_SOURCE (what pip builds detectron2 from when VENDOR has no usable wheel: default the vendored source, else git).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
VENDOR=${VENDOR:-../shared/vendor}
D2_COMMIT=02b5c4e295e990042a714712c21dc79b731e8833
D2_TORCH=2.14.1   # the vendored wheel's C++ ABI matches this torch only
SAM2=sam2==1.1.0

# onnxruntime-web (the Prompt tab's in-browser decoder), pinned and integrity-checked, from the npm registry; before
# the stamp check, so a fresh clone whose venv is up to date still gets it (a no-op when present). Without it the
# app still runs and decodes clicks on the server (it says so); tests/test_browser_decode.py fails, naming this step.
"$PY" demo/ort_assets.py || echo "setup: onnxruntime-web was not fetched (above); the Prompt tab will decode" \
  "clicks on the server. Retry: $PY demo/ort_assets.py" >&2

stamp_now=$(cat setup.sh requirements.txt requirements-stack.txt | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$stamp_now" ]; then
  echo "setup: $VENV is up to date"; exit 0
fi

# The stack (torch's CUDA build among it) takes ~7.5 GB in the venv: say so up front rather than fail mid-install
# with pip's "No space left on device" (a CI machine once had too little room and failed that way).
need_gb=${SETUP_NEED_GB:-9}
free_gb=$(df -Pk "$(dirname "$VENV")" | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$free_gb" -lt "$need_gb" ] && [ ! -x "$VENV/bin/python" ]; then
  echo "setup: only ${free_gb} GB free under $(cd "$(dirname "$VENV")" && pwd); the stack needs ~${need_gb} GB" \
       "(torch alone is ~5.5 GB). Free some space or set VENV to a bigger disk." >&2
  exit 1
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# This machine's pip config adds local indexes that print one harmless warning per package: keep the log readable.
pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
export PIP_NO_CACHE_DIR=${PIP_NO_CACHE_DIR:-1}  # a second copy of every wheel in ~/.cache costs GBs of disk
pip install -q "pip==26.3" "uv==0.13.9"

# uv installs the two requirement files (~20 s on 2 cores where pip took ~90: it unpacks wheels in parallel). It does
# not read pip's configuration, so pip's (index, extra indexes, find-links, constraints, CA bundle) is handed over,
# with pip's rule of the best version across all indexes; should uv fail, pip installs them.
uv_env() {
  local -A conf=()
  local key value
  while IFS='=' read -r key value; do  # listed from the lowest precedence up (files, then PIP_* variables): last wins
    value=${value#\'}; value=${value%\'}; conf[${key##*.}]=${value//\\n/ }
  done < <("$VENV/bin/python" -m pip config list 2>/dev/null)
  uv_set UV_DEFAULT_INDEX "${conf[index-url]:-}"
  uv_set UV_EXTRA_INDEX_URL "${conf[extra-index-url]:-}"
  uv_set UV_FIND_LINKS "$(tr -s ' ' ',' <<<"${conf[find-links]:-}")"
  uv_set UV_CONSTRAINT "${conf[constraint]:-}"
  uv_set SSL_CERT_FILE "${conf[cert]:-}"
  uv_set UV_INDEX_STRATEGY unsafe-best-match
  uv_set UV_NO_CACHE "$PIP_NO_CACHE_DIR"
}
uv_set() { [ -n "${!1:-}" ] || [ -z "$2" ] || export "$1=$2"; }  # a variable the user set stays as set
install_requirements() {
  (uv_env && "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r "$1") ||
    { echo "setup: uv could not install $1 (above); pip installs it" >&2; pip install -q -r "$1"; }
}

# A wheel of detectron2 @ D2_COMMIT: the vendored one when torch matches, else built from D2_SOURCE, the vendored
# source, or upstream git (a Space: needs git and a compiler); then the same metadata fix for all of them.
detectron2_wheel() {
  local out=$1 torch_ver wheel source
  torch_ver=$("$VENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])")
  wheel=$(ls "$VENDOR"/detectron2-0.6-cp311-*.whl 2>/dev/null | head -1 || true)
  if [ -n "$wheel" ] && [ "$torch_ver" = "$D2_TORCH" ]; then
    cp "$wheel" "$out/"
  else
    source=${D2_SOURCE:-$VENDOR/detectron2-${D2_COMMIT:0:7}.tar.gz}
    [ -n "${D2_SOURCE:-}" ] || [ -f "$source" ] || source="git+https://github.com/facebookresearch/detectron2.git@$D2_COMMIT"
    echo "setup:   building detectron2 from $source (a few minutes)"
    pip wheel -q --no-deps --no-build-isolation -w "$out" "$source"
  fi
  wheel=$(ls "$out"/detectron2-*.whl)
  "$VENV/bin/python" -m wheel unpack -d "$out/unpacked" "$wheel" >/dev/null
  sed -i 's/^Requires-Dist: iopath.*/Requires-Dist: iopath>=0.1.7/' "$out"/unpacked/*/*.dist-info/METADATA
  rm "$wheel"
  "$VENV/bin/python" -m wheel pack -d "$out" "$out"/unpacked/* >/dev/null   # rewrites RECORD
}

# Installed, importable, and consistent with its (fixed) metadata: nothing to do.
detectron2_ready() {
  local problems
  problems=$("$VENV/bin/python" -m pip check 2>/dev/null || true)
  "$VENV/bin/python" -c "import detectron2._C" 2>/dev/null && ! grep -q "^detectron2 " <<<"$problems"
}

echo "setup: [1/4] torch + build tools"
install_requirements requirements-stack.txt

echo "setup: [2/4] pinned dependencies (app, hub, data, tests, and those of detectron2 and sam2)"
install_requirements requirements.txt

echo "setup: [3/4] detectron2 @ ${D2_COMMIT:0:7}"
if ! detectron2_ready; then
  work=$(mktemp -d)
  detectron2_wheel "$work"
  pip install -q --no-deps --force-reinstall "$work"/detectron2-*.whl
  rm -rf "$work"
fi

echo "setup: [4/4] $SAM2 (CPU build, no CUDA extension)"
SAM2_BUILD_CUDA=0 pip install -q --no-deps --no-build-isolation "$SAM2"

"$VENV/bin/python" -m pip check
"$VENV/bin/python" -c "import sam2, detectron2, detectron2._C, gradio, huggingface_hub, datasets, pycocotools, matplotlib"
echo "$stamp_now" > "$VENV/.setup-stamp"
echo "setup: done ($VENV)"
