#!/usr/bin/env bash
# The MiniFrance paper's experiments (Tables 6-9) as resumable sweeps; needs the data (not downloadable here).
# Usage: scripts/minifrance_protocol.sh MINIFRANCE_ROOT CASD_ROOT OUT [SEEDS=0]
set -euo pipefail
MF=${1:?MiniFrance (or tinyMiniFrance) folder}; CASD=${2:?CASD folder}; OUT=${3:?output folder}; SEEDS=${4:-0}
S="${SEMILAND:-.venv/bin/semiland}"
mt() { echo "$1=multitask:method.network=$2 method.aux_loss=$3"; }
# Table 6: supervised vs BerundaNet-late (L1, k-means) for both backbones, with the oracle (all 8 cities labeled).
for backbone in segnet unet; do
  "$S" bench sweep --config "configs/minifrance/$backbone.yaml" --seeds "$SEEDS" -o "$OUT/table6-$backbone" \
    --methods "supervised,$(mt late_l1 berunda_late l1),$(mt late_kmeans berunda_late kmeans)" data.root="$MF"
done
# Table 7: architectures (U-Net backbone), each with L1 and k-means.
"$S" bench sweep --config configs/minifrance/unet.yaml --seeds "$SEEDS" -o "$OUT/table7" --no-oracle \
  --methods "supervised,$(mt early_l1 berunda_early l1),$(mt early_kmeans berunda_early kmeans),$(mt late_l1 berunda_late l1),$(mt late_kmeans berunda_late kmeans),$(mt wnet_l1 wnet l1),$(mt wnet_kmeans wnet kmeans)" \
  data.root="$MF"
# Table 8: the auxiliary losses (BerundaNet-late, U-Net).
"$S" bench sweep --config configs/minifrance/unet.yaml --seeds "$SEEDS" -o "$OUT/table8" --no-oracle \
  --methods "supervised,$(mt l1 berunda_late l1),$(mt l2 berunda_late l2),$(mt kmeans berunda_late kmeans),$(mt mumford_shah berunda_late mumford_shah)" \
  data.root="$MF"
# Table 9: CASD, 4 runs per setting, the losses and a lambda sweep for k-means.
lam() { echo "kmeans_l$1=multitask:method.aux_loss=kmeans method.lambda_u=$1"; }
"$S" bench sweep --config configs/casd/unet.yaml --seeds 0,1,2,3 -o "$OUT/table9-casd" --no-oracle \
  --methods "supervised,$(mt l1 berunda_late l1),$(mt mumford_shah berunda_late mumford_shah),$(lam 1),$(lam 2),$(lam 5),$(lam 10)" \
  data.root="$CASD"
