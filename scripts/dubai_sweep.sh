#!/usr/bin/env bash
# The Dubai method sweep of docs/benchmarks.md, as two one-thread processes on a 2-core machine (about a
# quarter more throughput than one two-thread process). Each runs its own cells of the same sweep; the
# last command reads every finished cell and writes the summary. Resumable: re-run to finish.
# Usage: scripts/dubai_sweep.sh OUT
set -euo pipefail
OUT=${1:?usage: scripts/dubai_sweep.sh OUT}
S="${SEMILAND:-.venv/bin/semiland}"
METHODS="supervised,s4net,mean_teacher,pseudo_label,fixmatch,unimatch,cps,self_training:method.rounds=1"
B1="2img=data.labeled_count=2"  # 2 of tile 4's 9 images labeled (seeded); see configs/dubai/sweep.yaml
B2="4img=data.labeled_count=4"
sweep() { OMP_NUM_THREADS=1 "$S" bench sweep --config configs/dubai/sweep.yaml --methods "$METHODS" -o "$OUT" "$@"; }
mkdir -p "$OUT"
# Process A: 2 images, seeds 0 and 1, then 4 images seed 1.  Process B: 2 images seed 2, then 4 images seeds 0, 2.
# Each first runs supervised and the oracle alone, so the protocol check (oracle ahead of supervised by more
# than the seed spread) is known early. Both budgets have the same training pool, so the 4-image budget
# shares the oracle runs (--no-oracle).
( sweep --seeds 0,1 --budget "$B1" --methods supervised && sweep --seeds 0,1 --budget "$B1" \
  && sweep --seeds 1 --budget "$B2" --no-oracle ) >>"$OUT/a.log" 2>&1 &
( sweep --seeds 2 --budget "$B1" --methods supervised && sweep --seeds 2 --budget "$B1" \
  && sweep --seeds 0,2 --budget "$B2" --no-oracle ) >>"$OUT/b.log" 2>&1 &
wait
"$S" bench sweep --config configs/dubai/sweep.yaml --methods "$METHODS" --seeds 0,1,2 --budget "$B1" --budget "$B2" -o "$OUT"
