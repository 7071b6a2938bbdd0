#!/usr/bin/env bash
# The Dubai method sweep of docs/benchmarks.md, as two one-thread processes on a 2-core machine (about a
# quarter more throughput than one two-thread process) sharing the same cells; the last commands read every
# finished cell and write the summaries. Resumable: re-run to finish (a cell cut off
# mid-way continues from its last checkpoint).
# Usage: [MIRROR=DIR] scripts/dubai_sweep.sh OUT [SET]
#   MIRROR: a folder under version control (benchmarks/dubai-sweep/ of this repo) that receives each finished
#   cell's rows, configs, logs and metrics (no models), and whose finished cells count as finished in OUT: a
#   sweep continued on a new machine (`bench sweep --mirror`).
#   SET: discriminative (issue #3, default) | multitask (#5) | generative (#6) | sar (#7: simulated SAR)
#   | strong-view (#3's diagnosis: FixMatch / UniMatch / mean teacher without per-band changes, 2 images only)
#   | all (each of them in turn, in that order).
#   Every set shares OUT's supervised and oracle cells (the same budgets and seeds); `sar` adds its own
#   optical + simulated-SAR baselines, since its input differs, and its DLLR ablation rows (2 images only).
set -euo pipefail
OUT=${1:?usage: scripts/dubai_sweep.sh OUT [discriminative|multitask|generative|sar|strong-view|all]}
SET=${2:-discriminative}
if [ "$SET" = all ]; then  # every set in the planned order; re-run to continue where it stopped
  for set in discriminative strong-view generative multitask sar; do "$0" "$OUT" "$set"; done
  exit 0
fi
S="${SEMILAND:-.venv/bin/semiland}"
SAR="data.simulate_sar=true"  # a SAR-like channel made from the optical image only (data/paired.py)
ABLATION=""  # rows run at the 2-image budget only (3 seeds): "supervised,label=method:overrides,…"
case "$SET" in
  discriminative)
    METHODS="supervised,s4net,mean_teacher,pseudo_label,fixmatch,unimatch,cps,self_training:method.rounds=1" ;;
  multitask)  # MiniFrance's Tables 6-8: BerundaNet early / late and W-Net, each with L1 and relaxed k-means
    METHODS="supervised"
    for net in berunda_early berunda_late wnet; do
      for loss in l1 kmeans; do METHODS+=",${net}_${loss}=multitask:method.network=$net method.aux_loss=$loss"; done
    done ;;
  generative)
    METHODS="supervised,adversarial,gan,vae" ;;
  sar)  # baselines on the same optical + simulated-SAR pairs and DLLR at both budgets; DLLR with each component
    # off in turn at the 2-image budget only (4 rows at ~5x supervised's step: ~4.6 h of this machine per budget)
    METHODS="supervised,sar_only=supervised:$SAR data.modality=sar,early_fusion=supervised:$SAR"
    METHODS+=",mm_cps=dllr:$SAR method.masking=false method.complementary=false method.reassign=false"
    METHODS+=",dllr=dllr:$SAR"
    ABLATION="supervised"
    for part in masking complementary reassign cps; do ABLATION+=",dllr_no_$part=dllr:$SAR method.$part=false"; done ;;
  strong-view)  # why FixMatch / UniMatch / mean teacher gain nothing here? Their strong view without its per-band
    # changes (blur and CutMix kept): `bench targets --strong` shows the supervised model's accuracy falling on it
    METHODS="supervised" ABLATION="supervised,fixmatch_p0=fixmatch:method.photometric=0"
    ABLATION+=",mean_teacher_p0=mean_teacher:method.photometric=0,unimatch_p0=unimatch:method.photometric=0" ;;
  *) echo "unknown set '$SET': discriminative | multitask | generative | sar | strong-view" >&2; exit 2 ;;
esac
B1="2img=data.labeled_count=2"  # 2 of tile 4's 9 images labeled (seeded); see configs/dubai/sweep.yaml
# 4 labeled images: the same 2 plus tile 4's images 5 and 8 (nested; how they were drawn: the file's "info")
B2="4img=data.split_mode=file data.split_file=configs/dubai/split-4img.json"
# Every cell is also scored on its unlabeled images (Dubai has their masks; never trained on): 52 images, 22× the
# test tile's labeled pixels, with every class well represented — what a user mapping those tiles gets.
ON="--also-on unlabeled"
[ -z "${MIRROR:-}" ] || ON+=" --mirror $MIRROR"
sweep() { OMP_NUM_THREADS=1 "$S" bench sweep --config configs/dubai/sweep.yaml --methods "$METHODS" $ON -o "$OUT" "$@"; }
mkdir -p "$OUT"
# Two processes run the same commands and share the cells: each claims the next free one (`bench sweep` locks
# a cell while it trains), so neither waits on the other's share. First supervised and the oracle alone, so
# the protocol check (oracle ahead of supervised by more than the seed spread) is known early; then every
# method, the ablation rows, and the 4-image budget, which has the same training pool and so shares the
# oracle runs (--no-oracle).
ablation() { [ -z "$ABLATION" ] || sweep --seeds 0,1,2 --budget "$B1" --no-oracle --methods "$ABLATION"; }
all_cells() {
  sweep --seeds 0,1,2 --budget "$B1" --methods supervised && sweep --seeds 0,1,2 --budget "$B1" && ablation \
    && sweep --seeds 0,1,2 --budget "$B2" --no-oracle
}
all_cells >>"$OUT/a-$SET.log" 2>&1 &
all_cells >>"$OUT/b-$SET.log" 2>&1 &
wait
# The summaries train nothing (--summary-only): they say which cells are missing if a process failed.
summary() { "$S" bench sweep --config configs/dubai/sweep.yaml $ON -o "$OUT" --summary-only --seeds 0,1,2 "$@"; }
keep() { for f in results.csv results.json summary.md summary.html; do cp "$OUT/$f" "$OUT/${f%.*}-$1.${f##*.}"; done; }
summary --methods "$METHODS" --budget "$B1" --budget "$B2" && keep "$SET"  # one per set
if [ -n "$ABLATION" ]; then summary --methods "$METHODS${ABLATION#supervised}" --budget "$B1" && keep "$SET-ablation"; fi
