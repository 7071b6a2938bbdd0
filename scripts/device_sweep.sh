#!/usr/bin/env bash
# The Dubai method sweep (scripts/dubai_sweep.sh) on a GPU machine lent for one short call: the cells a 2-core
# CPU trains in ~40 min each, run by many processes sharing one GPU. Same protocol (configs/dubai/sweep.yaml,
# float32 with TF32 off: `bench sweep` calls strict_float32), the same mirror (benchmarks/dubai-sweep/):
# the GPU trains only the cells the mirror lacks, and each row names its device.
#
# Here (the CPU machine), once per session:    scripts/device_sweep.sh prepare
#   wheels the GPU image lacks (.whl/) and a copy of the Dubai data (.data/dubai_aerial), both git-ignored
#   (.gitignore) and carried with the call, never committed.
#   Then `make test-slow`: it runs this script's `run`, `speed` and `merge` end to end on the CPU first.
# There, as the device tool's command, with carry [".whl", ".data"] and timeout_s 600:
#   scripts/device_sweep.sh run [MINUTES] [SET ...]
#   trains with WORKERS processes (default: the cores less two) until MINUTES (default 2) have passed, then
#   starts no new cell; the cells still running get until HARD seconds (default 565; cut off there: lost);
#   measured on an H100 with 14 processes (session 15), a cell's 1800 steps take 5-7 min (pseudo-labels,
#   mean teacher), 7-8 (S4Net, CPS, FixMatch), ~15 (UniMatch: never within one call), then its evaluation
#   on the test, validation and 52 unlabeled images about a minute more; on an H200 (session 17, 6 cells at
#   once) 3.1-4.5 min in all; so every worker starts one cell and none a second (2 minutes: a worker's calls
#   whose cells are all done cost ~10 s each of imports; they cost ~25 s with the per-call summary, which kept
#   8 of session 17's 14 workers from any cell: NO_SUMMARY now drops it from each call too);
#   session 21 (H200, 12 workers, multitask set): 12 cells, fit 4.0-6.0 min each, the whole call 427 s; then
#   6 workers: fit 2.1-3.2 min, 256 s — the GPU is shared, so fewer processes each go faster;
#   writes the new finished cells to $OUT/cells.tar.gz, the worker logs' ends to $OUT/logs.txt, and
#   prints a table of the new cells. SETS as dubai_sweep.sh's (default: all).
# There, optionally, as a first call of ~2.5 min (carry [".whl"], timeout_s 240; measured on an H200 in session
# 17: the engine at 0.81 of plain PyTorch, since then logging only on the logger's steps — worth re-measuring),
# then `run` at once on the still-warm machine (it is given back 30 s after a call), with HARD = the device time
# left (status) less ~40 s when that is under 10 minutes — a call cut off by the tool brings back no cells:
#   scripts/device_sweep.sh speed
#   the engine's overhead against plain PyTorch (`bench train-speed`, float32 and bf16) and each sweep
#   method's step against supervised's (`bench step-cost` on the sweep's setting), on the GPU: JSON files in
#   $OUT and the tables in the output, for docs/benchmarks.md (DEVICE, STEPS, REPEATS, SIZE, SPEED_METHODS:
#   knobs; 20 timed steps x 2 repeats by default, to fit the lent minutes).
# A second `run` on the still-warm machine (it is given back 30 s after a call) needs no merge here first: it
# takes the earlier calls' cells from their work folders there (a fresh checkout is sent with every call).
# Here again:                                   scripts/device_sweep.sh merge DIR/cells.tar.gz
#   adds the cells to benchmarks/dubai-sweep/ (a cell finished here meanwhile is kept, not overwritten); a
#   sweep running here takes them from the mirror instead of training them (`bench sweep --mirror`).
#   Their rows reach the mirror's results.json / summary.md with the next `bench sweep … --summary-only
#   --mirror` call naming their set's methods (docs/benchmarks.md gives it per set).
set -euo pipefail
cd "$(dirname "$0")/.."
self="$PWD/scripts/device_sweep.sh"
MIRROR=${MIRROR:-benchmarks/dubai-sweep}
WHEELS=(segmentation-models-pytorch==0.6.0 kornia==0.9.0 kornia-rs==0.2.0)  # the GPU image has torch, timm, lightning
cells() { find "$1" -mindepth 4 -maxdepth 4 -path '*/seed*/result.json' "${@:2}" -printf '%P\n' | xargs -r -n1 dirname | sort; }
setup() {  # a work folder; the carried wheels installed beside the image's packages; $SEMILAND; what is here
  work=$(mktemp -d -t semiland-device.XXXXXX)  # named: a later call on the same warm machine finds its cells
  local wheels=${WHEELHOUSE:-.whl}  # made by `prepare` for the GPU image's Python (3.12)
  [ ! -d "$wheels" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" "$wheels"/*.whl
  export PYTHONPATH="$PWD:$work/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
  export SEMILAND_DATA="${SEMILAND_DATA:-$PWD/.data/dubai_aerial}"
  if [ -z "${SEMILAND:-}" ]; then
    mkdir -p "$work/bin" && printf '#!/bin/sh\nexec python3 -m semiland "$@"\n' >"$work/bin/semiland"
    chmod +x "$work/bin/semiland" && SEMILAND="$work/bin/semiland"
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -c "import torch, lightning, timm, kornia, segmentation_models_pytorch as s; print('torch', \
    torch.__version__, 'cuda', torch.cuda.is_available(), 'lightning', lightning.__version__, 'smp', s.__version__)" \
    || { echo "semiland's packages are missing here: was .whl carried?" >&2; exit 2; }
}
mode=${1:?usage: scripts/device_sweep.sh prepare | run [MINUTES] [SET ...] | speed | merge CELLS.tar.gz}
shift

case "$mode" in
  prepare)
    data=${SEMILAND_DATA:-../shared/data/dubai_aerial}
    [ -d "$data" ] || { echo "no Dubai data at $data: set SEMILAND_DATA" >&2; exit 2; }
    rm -rf .whl && mkdir -p .data
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "${WHEELS[@]}"
    rm -rf .data/dubai_aerial && cp -r "$data" .data/dubai_aerial
    du -sh .whl .data
    echo 'ready: device run with command "scripts/device_sweep.sh run", carry [".whl", ".data"], timeout_s 600'
    ;;

  run)
    minutes=${1:-2}
    [ $# -eq 0 ] || shift
    sets="${*:-all}"
    hard=${HARD:-565}  # seconds: the device tool's 600-second command, less the packing (~2 s) and a margin
    start=$(date +%s)
    setup
    # A warm machine's earlier calls (it stays warm 30 s after each): their cells went back with them, but this
    # call's checkout is sent afresh and lacks them until merged on the CPU machine, so take them in here, before
    # the stamp, or they are trained again (session 21 lost a 4-minute call to that)
    for prev in "${TMPDIR:-/tmp}"/semiland-device.*/cells.tar.gz; do
      if [ -f "$prev" ]; then echo "an earlier call on this machine: $prev" && MIRROR="$MIRROR" "$self" merge "$prev"; fi
    done
    out=$work/sweep
    mkdir -p "$out" && cp -r "$MIRROR"/. "$out"/  # every finished cell in place before the workers start
    touch "$work/stamp"
    workers=${WORKERS:-$(($(nproc) > 3 ? $(nproc) - 2 : 1))}  # two cores left to the GPU's driver and the copies
    echo "$workers workers on sets '$sets'; no new cell after $minutes min; cut off at $hard s"
    # timeout ends the script and its workers (one process group); cells cut off are lost, not half-kept
    left=$((start + hard - $(date +%s)))
    MIRROR="$MIRROR" WORKERS=$workers STOP_AT=$((start + minutes * 60)) NO_SUMMARY=1 SEMILAND="$SEMILAND" \
      timeout $((left > 1 ? left : 1)) scripts/dubai_sweep.sh "$out" "$sets" || echo "sweep ended: $?"
    mapfile -t new < <(cells "$MIRROR" -newer "$work/stamp")
    tail -n 5 "$out"/*.log >"${OUT:-$work}/logs.txt" 2>&1 || true
    # cells cut off are lost, but how far they got sizes the next call: last logged step, seconds since start
    for d in "$out"/*/*/seed*/; do d=${d%/}
      [ -f "$d/result.json" ] || [ ! -f "$d/logs/metrics.csv" ] || echo "unfinished ${d#"$out"/}: step" \
        "$(tail -n 1 "$d/logs/metrics.csv" | cut -d, -f1) after $(($(stat -c %Y "$d/logs/metrics.csv") - $(stat -c %Y "$d/config.yaml"))) s"
    done | tee -a "${OUT:-$work}/logs.txt"
    [ ${#new[@]} -gt 0 ] || { echo "no new cell finished (the logs' ends: ${OUT:-$work}/logs.txt)"; exit 0; }
    tar -czf "$work/cells.tar.gz" -C "$MIRROR" "${new[@]}"  # kept in $work for a next call on this machine
    [ -z "${OUT:-}" ] || cp "$work/cells.tar.gz" "$OUT/cells.tar.gz"
    echo "${#new[@]} new cells in ${OUT:-$work}/cells.tar.gz (method budget seed: test mIoU, fit minutes, device):"
    for d in "${new[@]}"; do
      python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print(r['method'], r['budget'], r['seed'], \
        f\"{100 * r['mIoU']:.2f}\", f\"{r['fit_seconds'] / 60:.1f}\", r.get('device'))" "$MIRROR/$d/result.json"
    done
    ;;

  speed)  # the GPU's side of docs/benchmarks.md's speed tables: seconds, not cells; nothing from .data
    setup
    o=${OUT:-$work} steps=${STEPS:-20} repeats=${REPEATS:-2}  # ~3 min on a GPU, with 12 methods
    methods=${SPEED_METHODS:-supervised,s4net,mean_teacher,pseudo_label,fixmatch,unimatch,cps,multitask,adversarial,gan,vae,dllr=dllr:data.simulate_sar=true}
    for precision in 32-true bf16-mixed; do
      "$SEMILAND" bench train-speed --device "${DEVICE:-cuda}" --precision $precision --steps "$steps" \
        --repeats "$repeats" --size "${SIZE:-128}" --json "$o/train_speed_$precision.json"
    done
    # the sweep's setting (configs/dubai/sweep.yaml: float32, batches of 8 + 8 64² crops); random batches
    "$SEMILAND" bench step-cost --config configs/dubai/sweep.yaml --methods "$methods" --steps "$steps" \
      --repeats "$repeats" --json "$o/step_cost.json" train.accelerator="${DEVICE:-cuda}"
    ;;

  merge)  # whole cells only, and only those the mirror lacks (one finished here meanwhile is kept)
    cells=${1:?usage: scripts/device_sweep.sh merge CELLS.tar.gz}
    [ -f "$cells" ] || { echo "no such file: $cells" >&2; exit 2; }
    tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
    tar -xzf "$cells" -C "$tmp"
    added=0
    while read -r cell; do
      [ -f "$MIRROR/$cell/result.json" ] && continue
      rm -rf "${MIRROR:?}/$cell" && mkdir -p "$(dirname "$MIRROR/$cell")" && cp -r "$tmp/$cell" "$MIRROR/$cell"
      added=$((added + 1)) && echo "added $cell"
    done < <(cells "$tmp")
    echo "$added cells added to $MIRROR"
    ;;

  *) echo "unknown mode '$mode': prepare | run [MINUTES] [SET ...] | speed | merge CELLS.tar.gz" >&2; exit 2 ;;
esac
