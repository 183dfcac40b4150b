# The Hugging Face Space (README front matter: sdk docker, app_port 7860): the same install as ./setup.sh, from the
# same pinned requirement files, run as the non-root user 1000 that Spaces use.
#   docker build -t segkit . && docker run --rm -p 7860:7860 segkit      # then open http://localhost:7860
# It serves the public rules (demo/settings.py): no server folders, no owner token; SEGKIT_OPEN=1 only for trusted users.
FROM python:3.11-slim-bookworm

# git + a C++ compiler: setup.sh builds detectron2 from its pinned upstream commit (there is no wheel on the index).
RUN apt-get update && apt-get install -y --no-install-recommends git build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/venv/bin:$PATH \
    HF_HOME=/home/user/.cache/huggingface
WORKDIR /home/user/app

# torch's CPU build: a free Space has no GPU, and PyPI's default build brings gigabytes of CUDA libraries.
ARG PIP_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_EXTRA_INDEX_URL=https://pypi.org/simple
# Empty: detectron2 from its upstream git commit. A pip source (path or URL of its source or wheel) to use instead.
ARG D2_SOURCE=
# Only the install's inputs first, so editing the code does not redo the (long) install layer.
COPY --chown=user setup.sh requirements-stack.txt requirements.txt ./
COPY --chown=user demo/ort_assets.py demo/
RUN VENV=/home/user/venv PYTHON=python3.11 PIP_NO_CACHE_DIR=1 ./setup.sh

COPY --chown=user . .
ENV GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    PYTHONUNBUFFERED=1
EXPOSE 7860
CMD ["python", "app.py"]
