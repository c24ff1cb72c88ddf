#!/usr/bin/env bash
# Renders the Meta-World data sets reproducibly (fixed seeds; byte-identical frames on EGL and OSMesa).
#
#   bash scripts/render_metaworld.sh            # eval and train
#   bash scripts/render_metaworld.sh eval       # held-out eval stream  -> data/metaworld/eval (committed, ~4 MB)
#   bash scripts/render_metaworld.sh train      # training stream       -> data/metaworld-train/ (git-ignored)
#   bash scripts/render_metaworld.sh train-large  # 196 training episodes (seed 0, ~5,300 frames, ~12 min)
#                                               -> data/metaworld-train/train196 (the default model's data)
#   bash scripts/render_metaworld.sh eval2      # a second held-out stream (seed 1000001, 28 episodes, ~2 min)
#                                               -> data/metaworld-extra/eval2 (git-ignored): how far one bag's
#                                               numbers carry over to another
#   bash scripts/render_metaworld.sh val        # validation stream (training seed range, seed 1, 28 episodes, ~2 min)
#                                               -> data/metaworld-train/val: for choosing between training runs, so
#                                               the held-out eval bag is only ever reported, never chosen on
#   bash scripts/render_metaworld.sh val-more   # two more validation streams (seeds 2 and 3, ~2 min each)
#                                               -> data/metaworld-train/val2, val3: how far one bag's numbers carry,
#                                               measured without touching held-out data
#
# Creates .venv-metaworld first if needed. Rendering is software OpenGL on the CPU: ~7-8 frames/s on 2 shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."

WHICH="${1:-all}"
EVAL_SEED=1000000  # held-out seeds are >= 1,000,000 (vljepa_ros.world.dataset.HELD_OUT_SEED_START)
TRAIN_SEED=0
VAL_SEED=1  # a training-range seed no training stream uses (episode seeds derive from the stream seed)
PY=.venv-metaworld/bin/python

bash scripts/setup_metaworld_env.sh

if [[ "$WHICH" == all || "$WHICH" == eval ]]; then
  # Two episodes of each of the 14 tasks (~740 frames, ~4.5 MB).
  "$PY" -m vljepa_ros.world.metaworld_render --seed "$EVAL_SEED" --episodes 28 --name metaworld-eval \
    --bag data/metaworld/eval --overwrite
fi
if [[ "$WHICH" == all || "$WHICH" == train ]]; then
  "$PY" -m vljepa_ros.world.metaworld_render --seed "$TRAIN_SEED" --episodes 42 --name metaworld-train \
    --bag data/metaworld-train/train --npz data/metaworld-train/train.npz --overwrite
fi
if [[ "$WHICH" == eval2 ]]; then
  "$PY" -m vljepa_ros.world.metaworld_render --seed "$((EVAL_SEED + 1))" --episodes 28 --name metaworld-eval2 \
    --bag data/metaworld-extra/eval2 --overwrite
fi
if [[ "$WHICH" == val ]]; then
  "$PY" -m vljepa_ros.world.metaworld_render --seed "$VAL_SEED" --episodes 28 --name metaworld-val \
    --bag data/metaworld-train/val --overwrite
fi
if [[ "$WHICH" == val-more ]]; then
  for seed in 2 3; do
    "$PY" -m vljepa_ros.world.metaworld_render --seed "$seed" --episodes 28 --name "metaworld-val$seed" \
      --bag "data/metaworld-train/val$seed" --overwrite
  done
fi
if [[ "$WHICH" == train-large ]]; then
  "$PY" -m vljepa_ros.world.metaworld_render --seed "$TRAIN_SEED" --episodes 196 --name metaworld-train-196 \
    --bag data/metaworld-train/train196 --overwrite
fi
