"""`semiland bench sweep`: methods × label budgets × seeds on one config, plus the oracle, resumable.

Every run is an ordinary run folder (`OUT/<method>/<budget>/seed<k>`); a run whose test metrics exist is
not redone, and one interrupted after its first checkpoint continues from its last (`fit --resume`).
Processes given the same command share the cells (`train_cells`: each claims the next free one). The
summary gives, per method and budget, mean ± std (over seeds) of test mIoU and OA, the difference to
supervised paired by seed (mean ± std, seeds won), the share of the supervised → oracle gap recovered, and
wall time relative to supervised; `--also-on SET` adds the same on other images.

Budgets are named override sets, e.g. `--budget 1tile="data.labeled=[tile_4]"`; the oracle is the
supervised method with `data.oracle=true` (every training image labeled). Budgets whose splits share one
training pool (labeled ∪ unlabeled) share one oracle run per seed. A method may carry its own overrides and
a label (its name in folders and tables), `--methods "fixmatch,self_training:method.rounds=1,
late_km=multitask:method.network=berunda_late method.aux_loss=kmeans"`. `self_training` runs its rounds with the budget's
supervised run (same seed) as the round-0 teacher, so it costs only its students.

The parts, in the order a sweep runs them: `plan` (the cells: `RunSpec`), `schedule` (which cell a process
trains next), `cells` (train and test one cell), `layout` (where a cell lives, its row: `CellRow`, each of its numbers
named by a `Score`: set, metric, class, head), `mirror`
(cells kept under version control), then the summary: `stats` (paired statistics over rows), `tables`,
`maps`, `curves`, `heads`, `confusions`, `stability`, written by `report`. `run.run_sweep` is the command.
`bench/folds.py` makes the leave-one-tile-out budgets (`--folds`).
"""
