#!/usr/bin/env bash
# Builds the out-of-distribution sets of issue 31 (knowing when it does not know) under data/ood/ (git-ignored),
# reproducibly (fixed seeds; the videos are Debian's opencv-doc samples). data/README.md describes each set.
#
#   bash scripts/make_ood_data.sh              # everything
#   bash scripts/make_ood_data.sh real         # the real videos only  (seconds)
#   bash scripts/make_ood_data.sh synthetic    # noise, blank, tabletop in unseen colours  (seconds)
#   bash scripts/make_ood_data.sh camera       # Meta-World from a camera the model never saw (~5-10 min on 2 cores)
#
# Used as: vljepa-ros eval --bag data/demo_tabletop --ood-bag data/ood/vtest data/ood/noise ... --json out.json
set -euo pipefail
cd "$(dirname "$0")/.."

WHICH="${1:-all}"
PY=.venv/bin/python
OUT=data/ood
VIDEOS=/usr/share/doc/opencv-doc/examples/data
mkdir -p "$OUT"

if [[ "$WHICH" == all || "$WHICH" == real ]]; then
  if [[ ! -f "$VIDEOS/vtest.avi" ]]; then
    echo "installing opencv-doc (the sample videos; Apache-2.0 AND BSD-3-Clause)" >&2
    sudo apt-get install -y opencv-doc
  fi
  # People in a square (the issue's example), a talking cartoon face, a tree in the wind: real cameras.
  for video in vtest Megamind tree; do
    "$PY" -m vljepa_ros.world.video_bag "$VIDEOS/$video.avi" --bag "$OUT/$video" --fps 10 --overwrite
  done
fi
if [[ "$WHICH" == all || "$WHICH" == synthetic ]]; then
  "$PY" -m vljepa_ros.world.ood_frames noise --bag "$OUT/noise" --seconds 60 --seed 3100001 --overwrite
  "$PY" -m vljepa_ros.world.ood_frames blank --bag "$OUT/blank" --seconds 60 --seed 3100002 --overwrite
  # Held-out tabletop seed no eval stream uses (1000000: demo bag, 1000001/1000002: eval streams).
  "$PY" -m vljepa_ros.world.ood_frames tabletop-unseen-colours --bag "$OUT/tabletop_unseen_colours" \
    --seed 1000003 --episodes 5 --overwrite
fi
if [[ "$WHICH" == all || "$WHICH" == camera ]]; then
  bash scripts/setup_metaworld_env.sh
  # One episode of each of the 14 tasks, held-out seed, seen from the other side, lower and farther than the
  # training camera (azimuth 200, elevation -45, distance 1.15: vljepa_ros/world/metaworld_render.py).
  .venv-metaworld/bin/python -m vljepa_ros.world.metaworld_render --seed 1000003 --episodes 14 \
    --name metaworld-unseen-camera --camera-azimuth 135 --camera-elevation -25 --camera-distance 1.35 \
    --bag "$OUT/metaworld_unseen_camera" --overwrite
fi
