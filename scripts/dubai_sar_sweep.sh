#!/usr/bin/env bash
# The optical + SAR test bed on Dubai (issue #7): SAR-like bands simulated from each optical image
# (data/paired.py, simulated_sar; never from the masks). DLLR, each component off in turn, and the baselines,
# on the sweep's protocol and budget (configs/dubai/sweep.yaml, 1 labeled tile). Resumable.
# Usage: scripts/dubai_sar_sweep.sh OUT [SEEDS=0,1,2]
set -euo pipefail
OUT=${1:?usage: scripts/dubai_sar_sweep.sh OUT [SEEDS]}; SEEDS=${2:-0,1,2}
S="${SEMILAND:-.venv/bin/semiland}"
SAR="data.simulate_sar=true"
D="dllr:$SAR"
METHODS="supervised,sar_only=supervised:$SAR data.modality=sar,early_fusion=supervised:$SAR"
METHODS+=",mm_cps=$D method.masking=false method.complementary=false method.reassign=false"
METHODS+=",dllr=$D,dllr_no_masking=$D method.masking=false,dllr_no_complementary=$D method.complementary=false"
METHODS+=",dllr_no_reassign=$D method.reassign=false,dllr_no_cps=$D method.cps=false"
"$S" bench sweep --config configs/dubai/sweep.yaml --methods "$METHODS" --seeds "$SEEDS" --no-oracle -o "$OUT" \
  --budget "1tile=data.labeled=[tile_4] data.unlabeled=[tile_1,tile_5,tile_6,tile_7,tile_8]"
