#!/usr/bin/env bash
# The Dubai method sweep of docs/benchmarks.md, as two one-thread processes on a 2-core machine (about a
# quarter more throughput than one two-thread process). Each runs its own cells of the same sweep; the
# last command reads every finished cell and writes the summary. Resumable: re-run to finish.
# Usage: scripts/dubai_sweep.sh OUT
set -euo pipefail
OUT=${1:?usage: scripts/dubai_sweep.sh OUT}
S="${SEMILAND:-.venv/bin/semiland}"
METHODS="supervised,s4net,mean_teacher,pseudo_label,fixmatch,unimatch,cps,self_training:method.rounds=1"
B1="1tile=data.labeled=[tile_4] data.unlabeled=[tile_1,tile_5,tile_6,tile_7,tile_8]"
B2="2tiles=data.labeled=[tile_1,tile_4] data.unlabeled=[tile_5,tile_6,tile_7,tile_8]"
sweep() { OMP_NUM_THREADS=1 "$S" bench sweep --config configs/dubai/sweep.yaml --methods "$METHODS" -o "$OUT" "$@"; }
mkdir -p "$OUT"
# Process A: 1 tile, seeds 0 and 1, then 2 tiles seed 1.  Process B: 1 tile seed 2, then 2 tiles seeds 0 and 2.
# The 2-tile budget has the same training pool as the 1-tile one, so it shares its oracle runs (--no-oracle).
( sweep --seeds 0,1 --budget "$B1" && sweep --seeds 1 --budget "$B2" --no-oracle ) >"$OUT/a.log" 2>&1 &
( sweep --seeds 2 --budget "$B1" && sweep --seeds 0,2 --budget "$B2" --no-oracle ) >"$OUT/b.log" 2>&1 &
wait
"$S" bench sweep --config configs/dubai/sweep.yaml --methods "$METHODS" --seeds 0,1,2 --budget "$B1" --budget "$B2" -o "$OUT"
