#!/usr/bin/env bash
# Creates the optional Meta-World rendering environment .venv-metaworld (idempotent).
#
# Why a separate venv: metaworld 3.1.1 pins mujoco==3.3.0, which must not leak into the main .venv.
# Only vljepa_ros/world/metaworld_render.py runs in it; everything downstream reads the bags it writes.
#
# Usage: bash scripts/setup_metaworld_env.sh [VENV_DIR]     (default: .venv-metaworld in the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_DIR="${1:-.venv-metaworld}"
PYTHON="${PYTHON:-python3}"
MESA_PACKAGES=(libosmesa6 libegl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0 libgles2)
# Exact pins: the renders (and the committed demo bag) are byte-reproducible only with the same simulator.
PIP_PACKAGES=(
  "metaworld==3.1.1"
  "mujoco==3.3.0"
  "gymnasium==1.3.0"
  "packaging"          # gymnasium imports it but does not declare it (FIELD-NOTES)
  "numpy==2.4.6"
  "opencv-python-headless==5.0.0.93"
  "rosbags==0.11.9"
  "rosbags-image==0.10.4"  # vljepa_ros.world.bag_io decodes/encodes through vljepa_ros.stream.images
)
STAMP="$VENV_DIR/.metaworld-installed"

start_s=$(date +%s)

# 1. Offscreen OpenGL: EGL (preferred) and OSMesa (fallback) from Debian's Mesa.
missing=()
for package in "${MESA_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "[metaworld-env] installing Mesa packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "[metaworld-env] need root for apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# 2. The venv with pinned packages; the stamp records the pin list so a changed list reinstalls.
wanted="${PIP_PACKAGES[*]}"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]]; then
  echo "[metaworld-env] $VENV_DIR is up to date"
else
  test -x "$VENV_DIR/bin/python" || "$PYTHON" -m venv "$VENV_DIR"
  # grep: this machine's pip config names local indexes that lack most packages and warns once per package.
  "$VENV_DIR/bin/python" -m pip install --quiet "${PIP_PACKAGES[@]}" 2>&1 | { grep -v "is ignored: it is neither" || true; }
  echo "$wanted" > "$STAMP"
fi

# 3. Smoke check: the simulator imports and one offscreen backend works.
MUJOCO_GL="${MUJOCO_GL:-egl}" "$VENV_DIR/bin/python" - <<'EOF'
import importlib.metadata, mujoco, metaworld
print(f"[metaworld-env] ok: metaworld {importlib.metadata.version('metaworld')}, mujoco {mujoco.__version__}")
EOF
echo "[metaworld-env] done in $(( $(date +%s) - start_s )) s"
