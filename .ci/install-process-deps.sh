#!/usr/bin/env bash
# Extra packages for `ernerf-process`; usage: bash .ci/install-process-deps.sh PIP
#
# ./setup.sh runs it on every call, after installing the project: any later `pip install -e .`
# re-resolves nerfstudio's `protobuf<=3.20.3` pin and downgrades protobuf again, so re-running
# ./setup.sh puts it back. It installs only when a package below is missing or out of range,
# and always ends with a smoke check of mediapipe's face mesh.
#
# Why this is not a plain dependency in pyproject.toml: mediapipe 0.10.21 (the last release
# whose wheel ships the face-mesh, face-detection and selfie-segmentation models) declares
# protobuf>=4.25.3,<5, opencv-contrib-python, jax and sounddevice, while nerfstudio 1.1.5 pins
# protobuf<=3.20.3, so no resolver can satisfy both. What we checked:
#   - mediapipe's solutions fail to build their graphs under protobuf 3.20.3 (the calculator
#     options arrive empty), whatever the protobuf implementation;
#   - under protobuf 4.25.8 and 4.25.9, `import nerfstudio.scripts.train`, `ns-train --help`,
#     `ns-train nerfacto --help`, tensorboard's SummaryWriter, wandb, comet_ml and viser all work;
#   - the solutions need only cv2 (opencv-python-headless already provides it; installing
#     opencv-contrib-python beside it would give two packages owning `cv2`), absl-py, attrs,
#     flatbuffers, numpy<2 and matplotlib; jax, jaxlib, sounddevice and sentencepiece are for
#     other mediapipe tasks and are left out.
# So: mediapipe without its declared dependencies, then the runtime ones it really imports.
set -euo pipefail
PIP="${1:?usage: $0 PIP (the pip executable of the environment that holds nerfstudio)}"
PYTHON="$(dirname "$PIP")/python"

# Exit 0 when every package below is installed in the range asked for (a fraction of a second).
satisfied() {
    [ -x "$PYTHON" ] || return 1
    "$PYTHON" -I - <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    from packaging.specifiers import SpecifierSet
except ImportError:
    from pip._vendor.packaging.specifiers import SpecifierSet

WANTED = {
    "mediapipe": "==0.10.21",
    "protobuf": ">=4.25.3,<5",
    "flatbuffers": ">=2.0",
    "absl-py": "",
    "attrs": ">=19.1.0",
    "numpy": "<2",
    "matplotlib": "",
    "transformers": ">=4.40,<6",
}
for name, spec in WANTED.items():
    try:
        installed = version(name)
    except PackageNotFoundError:
        print(f"install-process-deps: {name} missing", file=sys.stderr)
        sys.exit(1)
    if not SpecifierSet(spec).contains(installed, prereleases=True):
        print(f"install-process-deps: {name} {installed} is not {spec}, reinstalling", file=sys.stderr)
        sys.exit(1)
PY
}

if satisfied 2>/dev/null; then
    echo "install-process-deps: mediapipe, protobuf and the rest already in range"
else
    satisfied || true  # says which package is missing or out of range
    "$PIP" install -q --no-deps "mediapipe==0.10.21"
    # --no-deps keeps pip from downgrading protobuf back to nerfstudio's pin; pip may still print
    # that nerfstudio 1.1.5 requires protobuf<=3.20.3, which is expected (see above).
    "$PIP" install -q --no-deps "protobuf>=4.25.3,<5"
    "$PIP" install -q "flatbuffers>=2.0" absl-py "attrs>=19.1.0" "numpy<2" matplotlib
    # Optional HuBERT / wav2vec2 audio features (`--audio-model hubert|wav2vec2` with local weights).
    "$PIP" install -q "transformers>=4.40,<6"  # tested: 5.24.0
fi

# Smoke check: the face-mesh graph only builds when protobuf and mediapipe agree.
if [ -x "$PYTHON" ]; then
    "$PYTHON" - <<'PY'
import mediapipe as mp

mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True).close()
print("mediapipe", mp.__version__, "face mesh OK")
PY
fi
