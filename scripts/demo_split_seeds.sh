#!/usr/bin/env bash
# Supervised and oracle (every training tile labeled) on the demo's Dubai region split, several seeds,
# at the demo's budget. Prints one line per run and a mean ± std summary (docs/benchmarks.md).
# Usage: scripts/demo_split_seeds.sh [OUT_DIR] [SEEDS...]    (default: runs/demo-seeds, seeds 0 1 2)
set -euo pipefail
out=${1:-runs/demo-seeds}; shift || true
seeds=${*:-0 1 2}
bin=$(dirname "$0")/../.venv/bin
mkdir -p "$out"
for variant in supervised oracle; do
  for seed in $seeds; do
    run=$out/$variant-s$seed
    [ -f "$run/test/metrics.json" ] && continue  # finished runs are not redone
    oracle=false; [ "$variant" = oracle ] && oracle=true
    "$bin/semiland" fit --config configs/dubai/demo.yaml -o "$run" --overwrite \
      train.seed="$seed" data.oracle="$oracle" train.progress=false > "$run.log" 2>&1
  done
done
"$bin/python" - "$out" <<'PY'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
for variant in ("supervised", "oracle"):
    runs = sorted(out.glob(f"{variant}-s*/test/metrics.json"))
    miou = [100 * json.loads(p.read_text())["mIoU"] for p in runs]
    for p, m in zip(runs, miou):
        print(f"{p.parent.parent.name:<16} mIoU {m:6.2f}")
    if len(miou) > 1:
        print(f"{variant:<16} mean {statistics.mean(miou):6.2f} ± {statistics.stdev(miou):.2f} (n={len(miou)})")
PY
