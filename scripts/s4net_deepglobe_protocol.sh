#!/usr/bin/env bash
# The S4Net paper's DeepGlobe experiments as resumable sweeps; needs the DeepGlobe land-cover training
# folder (not downloadable here). Table 4: 20 / 50 / 100 labeled images x 3 seeds, supervised vs S4Net, with
# the oracle. Fig. 5: the consistency weight lambda_max in {0.2, 2, 10, 20, 100} at 100 labeled images.
# Usage: scripts/s4net_deepglobe_protocol.sh DEEPGLOBE_TRAIN_FOLDER OUT [SEEDS=0,1,2]
set -euo pipefail
DG=${1:?DeepGlobe land-cover train folder}; OUT=${2:?output folder}; SEEDS=${3:-0,1,2}
S="${SEMILAND:-.venv/bin/semiland}"
"$S" bench sweep --config configs/deepglobe/s4net.yaml --seeds "$SEEDS" -o "$OUT/table4" --methods supervised,s4net \
  --budget l20=data.labeled=20 --budget l50=data.labeled=50 --budget l100=data.labeled=100 data.root="$DG"
lam() { echo "lambda_${1/./_}=s4net:method.lambda_max=$1"; }
"$S" bench sweep --config configs/deepglobe/s4net.yaml --seeds "$SEEDS" -o "$OUT/fig5" --no-oracle \
  --methods "supervised,$(lam 0.2),$(lam 2),$(lam 10),$(lam 20),$(lam 100)" --budget l100=data.labeled=100 data.root="$DG"
