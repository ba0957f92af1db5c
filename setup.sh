#!/usr/bin/env bash
# One idempotent setup for ernerf-ns, then optionally the demo or the tests:
#
#   ./setup.sh            create or repair .venv (torch, the project with [dev], ernerf-process's mediapipe)
#   ./setup.sh demo ARGS  the same, then python examples/train_synthetic.py --output outputs/demo ARGS
#   ./setup.sh test ARGS  the same, then python -m pytest -q ARGS (exit 1 when no tests were collected)
#
# Safe to re-run at any time, also after a `pip install -e .` that downgraded protobuf:
#   1. .venv is created with $PYTHON (default python3, 3.10+) unless it already works;
#   2. torch (pinned: $ERNERF_TORCH, default the builds this machine's pip cap allows) and
#      `pip install -e ".[dev]"` run only when .venv/.ernerf-setup does not hold the hash of
#      pyproject.toml and this script, or the project's packages are missing;
#   3. .ci/install-process-deps.sh always runs: it reinstalls mediapipe 0.10.21 / protobuf 4.25
#      only when they are not what it wants (nerfstudio's pin pulls protobuf back to 3.20.3 on
#      every resolve), then checks that mediapipe's face mesh builds.
# pip, not uv: the pip cap on torch (/etc/xdg/pip) and the wheels on this disk are pip's only;
# uv would download a CUDA torch of about 3 GB instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$ROOT/$(basename "${BASH_SOURCE[0]}")"
cd "$ROOT"

VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
STAMP="$VENV/.ernerf-setup"
TORCH_PINS="${ERNERF_TORCH:-torch==2.14.1 torchvision==0.29.1}"

say() { echo "setup.sh: $*" >&2; }

case "${1:-}" in
  "" | demo | test) ;;
  -h | --help | help) sed -n '2,6p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) say "unknown command '$1' (use: ./setup.sh [demo|test] [ARGS...])"; exit 2 ;;
esac

# 1. The virtual environment.
if ! "$VPY" -c "import pip" >/dev/null 2>&1; then
  PYTHON="${PYTHON:-python3}"
  if ! "$PYTHON" -c "import sys; sys.exit(sys.version_info < (3, 10))" >/dev/null 2>&1; then
    say "needs Python 3.10 or newer as '$PYTHON' (set PYTHON=/path/to/python3.x)"
    exit 1
  fi
  say "creating .venv with $("$PYTHON" --version 2>&1)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi

# 2. torch and the project, when pyproject.toml or this script changed or something is missing.
key="$(cat pyproject.toml "$SELF" | "$VPY" -c "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())") $TORCH_PINS"
installed() {
  "$VPY" -I - "$ROOT" <<'PY'
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    for name in ("torch", "torchvision", "nerfstudio", "nerfacc", "ernerf-ns", "pytest", "ruff", "selenium"):
        version(name)
except PackageNotFoundError:
    sys.exit(1)
spec = importlib.util.find_spec("ernerf_ns")  # the editable install of this checkout, not another one
sys.exit(0 if spec is not None and spec.origin and Path(spec.origin).resolve().is_relative_to(Path(sys.argv[1]) / "ernerf_ns") else 1)
PY
}
if [ "$(cat "$STAMP" 2>/dev/null)" != "$key" ] || ! installed; then
  start=$SECONDS
  rm -f "$STAMP"
  say "installing pip, $TORCH_PINS and the project with [dev] into .venv"
  "$VPY" -m pip install -q --upgrade pip setuptools wheel
  # shellcheck disable=SC2086  # two requirement words
  "$VPY" -m pip install -q $TORCH_PINS
  "$VPY" -m pip install -q -e ".[dev]"
  echo "$key" >"$STAMP"
  say "project installed in $((SECONDS - start)) s"
fi

# 3. ernerf-process's mediapipe and protobuf, every time (fast when nothing needs changing).
bash "$ROOT/.ci/install-process-deps.sh" "$VENV/bin/pip"

# What the commands below run in: the environment, as `source .venv/bin/activate` would set it.
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:$PATH"

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  "")
    say "ready: source .venv/bin/activate (ns-train, ns-viewer, ernerf-process, ernerf-render, ernerf-live)" ;;
  demo)
    exec "$VPY" examples/train_synthetic.py --output outputs/demo "$@" ;;
  test)
    set +e
    "$VPY" -m pytest -q "$@"
    status=$?
    set -e
    if [ "$status" -eq 5 ]; then
      say "pytest collected no tests"
      exit 1
    fi
    exit "$status" ;;
esac
