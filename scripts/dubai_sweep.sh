#!/usr/bin/env bash
# The Dubai method sweep of docs/benchmarks.md, as one-thread processes sharing the same cells (two on a
# 2-core machine: about a quarter more throughput than one two-thread process); the last commands read every
# finished cell and write the summaries. Resumable: re-run to finish (a cell cut off
# mid-way continues from its last checkpoint).
# Usage: [MIRROR=DIR] [WORKERS=N] [STOP_AT=UNIX_TIME] [FINISH_BY=UNIX_TIME] [NO_SUMMARY=1] scripts/dubai_sweep.sh OUT [SET]
#   MIRROR: a folder under version control (benchmarks/dubai-sweep/ of this repo) that receives each finished
#   cell's rows, configs, logs and metrics (no models), and whose finished cells count as finished in OUT: a
#   sweep continued on a new machine (`bench sweep --mirror`).
#   WORKERS: processes (default 2, one per core here; on a GPU machine several share the GPU:
#   scripts/device_sweep.sh). STOP_AT: no new cell is started after this time (`bench sweep --stop-at`).
#   FINISH_BY: a cell starts only when it is expected to end by this time (`bench sweep --finish-by`: a CPU
#   machine lent for a session, where a cell still running at its end is lost).
#   SET: discriminative (issue #3, default) | multitask (#5) | generative (#6) | sar (#7: simulated SAR)
#   | strong-view (#3's diagnosis: FixMatch / UniMatch / mean teacher without per-band changes, 2 images only)
#   | top-q (#3's intervention: FixMatch keeping each class's most confident half instead of τ, 4 images only)
#   | device-check (supervised again, 2 images: on a GPU, its offset from the CPU cells; twice with
#   train.deterministic=warn, whether two GPU runs then agree)
#   | several in quotes ("generative sar") | all (discriminative top-q generative multitask sar strong-view, in
#   that order).
#   Every set shares OUT's supervised and oracle cells (the same budgets and seeds); `sar` adds its own
#   optical + simulated-SAR baselines, since its input differs, and its DLLR ablation rows (2 images only).
set -euo pipefail
OUT=${1:?usage: scripts/dubai_sweep.sh OUT [discriminative|multitask|generative|sar|strong-view|top-q|all]}
SETS=${2:-discriminative}
# every set in the planned order; re-run to continue where it stopped. Each process goes through the sets on
# its own, so none idles at the end of a set while another finishes that set's last cell.
# strong-view last: #3's answer (why the methods trail supervised) stands on the measured target shares and the
# top-q intervention (docs/benchmarks.md); the strong view's remaining seeds add to it and wait behind the sets
# that other issues have no rows without (session 18)
[ "$SETS" != all ] || SETS="discriminative top-q generative multitask sar strong-view"
S="${SEMILAND:-.venv/bin/semiland}"
SAR="data.simulate_sar=true"  # a SAR-like channel made from the optical image only (data/paired.py)
define_set() {  # METHODS and ABLATION of set $1
  ABLATION=""  # rows run at one budget only (3 seeds): "supervised,label=method:overrides,…"
  ABLATION_AT=B1  # that budget: B1 (2 images) unless the set says B2
  AT_B2=""  # rows run at the 4-image budget only, right after its supervised cells: ",label=method:overrides,…"
  case "$1" in
    discriminative)
      METHODS="supervised,s4net,mean_teacher,pseudo_label,fixmatch,unimatch,cps,self_training:method.rounds=1"
      # the methods drift the rarest class (vegetation) to water on the unlabeled images (docs/benchmarks-log.md,
      # session 12): does FixMatch with FlexMatch's class-wise thresholds keep it? (2 images, chosen by val)
      ABLATION="supervised,fixmatch_flex=fixmatch:method.flex=true" ;;
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
      for part in masking complementary reassign cps; do ABLATION+=",dllr_no_$part=dllr:$SAR method.$part=false"; done
      # DLLR again where the ablation trains: float32 CPU runs are bit-identical on one CPU but not across CPU
      # generations (session 26: the losses part by step 9), so each dllr_no_<part> is paired with a DLLR of
      # its own machine (the summary pairs a variant with its base's recipe trained on its machine, under any
      # label), and dllr_rerun − dllr measures what a change of machine alone moves
      ABLATION+=",dllr_rerun=dllr:$SAR"
      # the reassignment's levels (issue #41): three confidence strata (kept / transported with the residual
      # marginal / ignored), dllr_lv_three, against the one-level form trained beside it on the same machine,
      # dllr_lv (its variant base by label: the summary pairs them seed by seed)
      ABLATION+=",dllr_lv=dllr:$SAR,dllr_lv_three=dllr:$SAR method.levels=three"
      # likewise supervised again where the 4-image rows train (the kept 4-image supervised cells trained on
      # another CPU generation): the summary pairs those rows with it (`supervised_rerun − supervised`: the
      # machine's own offset)
      AT_B2=",supervised_rerun=supervised" ;;
    strong-view)  # why FixMatch / UniMatch / mean teacher gain nothing here? Their strong view without its per-band
      # changes (blur and CutMix kept): `bench targets --strong` shows the supervised model's accuracy falling on it
      METHODS="supervised" ABLATION="supervised,fixmatch_p0=fixmatch:method.photometric=0"
      ABLATION+=",mean_teacher_p0=mean_teacher:method.photometric=0,unimatch_p0=unimatch:method.photometric=0" ;;
    top-q)  # the methods lose the vegetation at 4 images because no vegetation pixel passes τ = 0.95 (the kept
      # targets' class shares, docs/benchmarks.md): does FixMatch keep it when each predicted class keeps its
      # most confident half instead? An intervention on the mechanism, at the budget where it bit
      METHODS="supervised" ABLATION="supervised,fixmatch_q50=fixmatch:method.top_q=0.5" ABLATION_AT=B2 ;;
    device-check)  # a lent GPU's cells are paired with CPU supervised cells, but GPU runs are not bit-reproducible
      # (session 21: the same cell twice, ±1.2-1.5 mIoU): supervised again on the GPU, paired by seed with the CPU
      # cells, measures the device's offset; twice with train.deterministic=warn, whether that makes two GPU runs
      # agree. Not in `all` (CPU runs are deterministic already: supervised_rerun reproduces the CPU cells)
      DET="supervised:train.deterministic=warn"
      METHODS="supervised" ABLATION="supervised,supervised_rerun=supervised,supervised_det=$DET,supervised_det_again=$DET" ;;
    *) echo "unknown set '$1': discriminative | multitask | generative | sar | strong-view | top-q | device-check | all" >&2; exit 2 ;;
  esac
}
for set in $SETS; do define_set "$set"; done  # an unknown set fails before anything runs
B1="2img=data.labeled_count=2"  # 2 of tile 4's 9 images labeled (seeded); see configs/dubai/sweep.yaml
# 4 labeled images: the same 2 plus tile 4's images 5 and 8 (nested; how they were drawn: the file's "info")
B2="4img=data.split_mode=file data.split_file=configs/dubai/split-4img.json"
# Every cell is also scored on its unlabeled images (Dubai has their masks; never trained on): 52 images, 22× the
# test tile's labeled pixels, with every class well represented — what a user mapping those tiles gets.
ON="--also-on unlabeled"
[ -z "${MIRROR:-}" ] || ON+=" --mirror $MIRROR"
WORKERS=${WORKERS:-2}
TRAIN_FLAGS="${STOP_AT:+--stop-at $STOP_AT}${FINISH_BY:+ --finish-by $FINISH_BY}"  # the training calls only
# NO_SUMMARY: no summary per call either. A call whose cells are all done then costs its imports only (~10 s,
# not ~25: the plots), so on a GPU lent for minutes a worker reaches its first free cell before STOP_AT.
TRAIN_FLAGS+="${NO_SUMMARY:+ --no-summary}"
sweep() {
  for t in "${STOP_AT:-}" "${FINISH_BY:-}"; do  # past either, skip the start-up too
    [ -z "$t" ] || [ "$(date +%s)" -lt "${t%.*}" ] || return 0
  done
  OMP_NUM_THREADS=1 "$S" bench sweep --config configs/dubai/sweep.yaml --methods "$METHODS" $ON $TRAIN_FLAGS -o "$OUT" "$@"; }
mkdir -p "$OUT"
# The processes run the same commands and share the cells: each claims the next free one (`bench sweep` locks
# a cell while it trains), so none waits on another's share. First supervised and the oracle alone, so
# the protocol check (oracle ahead of supervised by more than the seed spread) is known early; then every
# method, the ablation rows, and the 4-image budget (supervised first again), which has the same training pool
# and so shares the oracle runs (--no-oracle).
ablation() { [ -z "$ABLATION" ] || sweep --seeds 0,1,2 --budget "${!ABLATION_AT}" --no-oracle --methods "$ABLATION"; }
# Each budget's supervised cells come before its methods: whether the budget adds anything over the smaller one
# (supervised 4img vs 2img, paired by seed) is known before its ~15 h of method cells.
# A set with re-runs for its machine (AT_B2) goes seed by seed at 4 images, each seed's rows right after its
# re-run: a sweep cut off by the end of a lent machine leaves whole seeds paired on one machine, not re-runs
# whose rows train on the next machine (session 28: a new CPU each session).
budget_two() {
  if [ -z "$AT_B2" ]; then
    sweep --seeds 0,1,2 --budget "$B2" --no-oracle --methods supervised && sweep --seeds 0,1,2 --budget "$B2" --no-oracle
  else
    for seed in 0 1 2; do
      sweep --seeds $seed --budget "$B2" --no-oracle --methods "supervised$AT_B2" \
        && sweep --seeds $seed --budget "$B2" --no-oracle --methods "$METHODS$AT_B2" || return 1
    done
  fi
}
all_cells() {
  sweep --seeds 0,1,2 --budget "$B1" --methods supervised && sweep --seeds 0,1,2 --budget "$B1" && ablation && budget_two
}
worker() { for set in $SETS; do define_set "$set" && all_cells >>"$OUT/$1-$set.log" 2>&1; done; }
NAMES=abcdefghijklmnopqrstuvwxyz  # worker logs: a-SET.log, b-SET.log, …
[ "$WORKERS" -ge 1 ] && [ "$WORKERS" -le ${#NAMES} ] || { echo "WORKERS must be 1 to ${#NAMES}" >&2; exit 2; }
for ((i = 0; i < WORKERS; i++)); do worker "${NAMES:i:1}" & done
wait
# The summaries train nothing (--summary-only): they say which cells are missing if a process failed.
# NO_SUMMARY=1 skips them (a machine lent for minutes: the summaries are made where the cells are merged).
[ -z "${NO_SUMMARY:-}" ] || exit 0
summary() { "$S" bench sweep --config configs/dubai/sweep.yaml $ON -o "$OUT" --summary-only --seeds 0,1,2 "$@"; }
keep() { for f in results.csv results.json summary.md summary.html; do cp "$OUT/$f" "$OUT/${f%.*}-$1.${f##*.}"; done; }
for set in $SETS; do
  define_set "$set"
  summary --methods "$METHODS$AT_B2" --budget "$B1" --budget "$B2" && keep "$set"  # one per set
  if [ -n "$ABLATION" ]; then
    summary --methods "$METHODS${ABLATION#supervised}" --budget "${!ABLATION_AT}" && keep "$set-ablation"
  fi
done
