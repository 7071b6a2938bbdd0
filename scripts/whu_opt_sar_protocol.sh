#!/usr/bin/env bash
# WHU-OPT-SAR: DLLR, its ablation (each component off in turn) and the baselines (optical only, SAR only,
# early fusion, multimodal CPS), as one resumable sweep; needs the data (not downloadable here).
# Usage: scripts/whu_opt_sar_protocol.sh WHU_ROOT OUT [SEEDS=0,1,2]
set -euo pipefail
ROOT=${1:?WHU-OPT-SAR folder}; OUT=${2:?output folder}; SEEDS=${3:-0,1,2}
S="${SEMILAND:-.venv/bin/semiland}"
M="optical_only=supervised:data.modality=optical,sar_only=supervised:data.modality=sar"  # "supervised" = early fusion
M+=",mm_cps=dllr:method.masking=false method.complementary=false method.reassign=false,dllr=dllr"
for c in masking complementary reassign cps; do M+=",dllr_no_$c=dllr:method.$c=false"; done
"$S" bench sweep --config configs/whu_opt_sar/dllr.yaml --methods "$M" --seeds "$SEEDS" -o "$OUT" data.root="$ROOT"
