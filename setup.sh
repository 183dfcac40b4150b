#!/usr/bin/env bash
# One-command install of the real stack into .venv (Python 3.11).
# Order matters: torch -> detectron2 -> sam2 -> the rest. One pip call asking for detectron2 and
# sam2 together fails to resolve (detectron2 pins iopath<0.1.10, sam2 needs >=0.1.10; 0.1.10 works for both).
# Idempotent: a stamp of the requirement files skips everything when nothing changed.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
VENDOR=${VENDOR:-../shared/vendor}
D2_COMMIT=02b5c4e295e990042a714712c21dc79b731e8833

stamp_now=$(cat setup.sh requirements.txt requirements-stack.txt | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$stamp_now" ]; then
  echo "setup: $VENV is up to date"; exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# This machine's pip config adds local indexes that print one harmless warning per package: keep the log readable.
pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
pip install -q "pip==26.3"

echo "setup: [1/4] torch + build tools"
pip install -q -r requirements-stack.txt

echo "setup: [2/4] detectron2 @ ${D2_COMMIT:0:7}"
if ! "$VENV/bin/python" -c "import detectron2._C" 2>/dev/null; then
  wheel=$(ls "$VENDOR"/detectron2-0.6-cp311-*.whl 2>/dev/null | head -1 || true)
  torch_ver=$("$VENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])")
  if [ -n "$wheel" ] && [ "$torch_ver" = "2.14.1" ]; then
    pip install -q "$wheel"               # built from the same commit against torch 2.14.1
  elif [ -f "$VENDOR/detectron2-02b5c4e.tar.gz" ]; then
    pip install -q --no-build-isolation "$VENDOR/detectron2-02b5c4e.tar.gz"
  else
    pip install -q --no-build-isolation "git+https://github.com/facebookresearch/detectron2.git@$D2_COMMIT"
  fi
fi

echo "setup: [3/4] sam2 (CPU build, no CUDA extension)"
SAM2_BUILD_CUDA=0 pip install -q --no-build-isolation "sam2==1.1.0"
echo "setup: (pip's 'detectron2 requires iopath<0.1.10' line is expected: 0.1.10 serves both, tests import and run both)"

echo "setup: [4/4] app, hub, data, test dependencies"
pip install -q -r requirements.txt

"$VENV/bin/python" -c "import sam2, detectron2, detectron2._C, gradio, huggingface_hub, datasets, pycocotools, matplotlib"
echo "$stamp_now" > "$VENV/.setup-stamp"
echo "setup: done ($VENV)"
