#!/usr/bin/env bash
# Issue #40's protocol on Dubai: leave-one-tile-out (each of the 8 tiles the test tile once, the next one
# validates), two label budgets per fold — 2 images of one training tile (region:2) and 7 images (~1/8 of the
# 54 training images) drawn across the training tiles (random:7) — supervised, oracle and the methods, paired by
# fold and seed; the summary's "Leave-one-tile-out" table pools every fold and seed (mean Δ, 95 % CI, pairs won,
# paired t-test, gap recovered). Resumable: re-run the same command to go on (cells are claimed, so several
# processes may share OUT).
# Usage: [WORKERS=2] [SEEDS=0,1] [METHODS=…] [ENCODER=tu-tf_efficientnet_lite0] [CONFIG=configs/dubai/demo.yaml]
#        scripts/dubai_folds.sh OUT [cpu|gpu]
#   CONFIG: the protocol — configs/dubai/demo.yaml (the default: 700 steps, bf16 where native, ~2 min a
#     supervised cell and ~4.5 min a FixMatch cell on one core of a 2-core CPU); configs/dubai/sweep.yaml (1800
#     float32 steps); benchmarks/dubai-folds/sweep_config.yaml to add cells to the committed folds (a sweep
#     folder refuses another config than the one it was started with)
#   cpu (default): CONFIG with the ImageNet EfficientNet-Lite0 encoder that pip packages ship (offline); 2 kinds
#     × 8 folds × (methods + oracle) × seeds cells: plan on several sessions of a 2-core machine.
#   gpu: full resolution (data.scale=1), 256² crops, 6000 steps, bf16 where native: for a lent device.
set -euo pipefail
OUT=${1:?usage: scripts/dubai_folds.sh OUT [cpu|gpu]}
MODE=${2:-cpu}
S="${SEMILAND:-.venv/bin/semiland}"
SEEDS=${SEEDS:-0,1}
METHODS=${METHODS:-supervised,fixmatch,fixmatch_paper,pseudo_label}
ENCODER=${ENCODER:-tu-tf_efficientnet_lite0}
CONFIG=${CONFIG:-configs/dubai/demo.yaml}
COMMON=(model.arch=unet "model.encoder=$ENCODER" model.encoder_weights=imagenet)
case "$MODE" in
  cpu) EXTRA=() ;;
  gpu) EXTRA=(data.scale=1 data.crop_size=256 train.steps=6000 train.precision=auto train.accelerator=auto) ;;
  *) echo "scripts/dubai_folds.sh: error: MODE must be cpu or gpu, got '$MODE'" >&2; exit 2 ;;
esac
for _ in $(seq "${WORKERS:-2}"); do
  OMP_NUM_THREADS=1 "$S" bench sweep --config "$CONFIG" --methods "$METHODS" --seeds "$SEEDS" \
    --folds region:2,random:7 --no-summary -o "$OUT" "${COMMON[@]}" "${EXTRA[@]}" &
done
wait
"$S" bench sweep --config "$CONFIG" --methods "$METHODS" --seeds "$SEEDS" --folds region:2,random:7 \
  --summary-only -o "$OUT" "${COMMON[@]}" "${EXTRA[@]}"
