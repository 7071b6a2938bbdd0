"""How good are a trained model's targets for unlabeled crops, in eval mode vs train mode? (docs/benchmarks.md)

Draws random training crops (the run's crop size and data.scale) from the run's unlabeled images that have
masks (or, with `--images val`, its validation images: what a user without unlabeled masks can measure on),
predicts them in batches with batch norm in eval mode (running statistics) and in train mode (each
batch's own statistics, running statistics untouched), and scores both against the masks.
The better mode is the one to give `method.target_bn` (running | batch).
Usage: .venv/bin/python scripts/target_quality.py RUN/checkpoints/best.ckpt [--images unlabeled|val]
       [--batches 20] [--batch-size 8]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from semiland.data.datamodule import CropStream, SampleStore, prepare_data
from semiland.engine.metrics import confusion_metrics
from semiland.engine.runner import load_task
from semiland.methods.base import bn_stats_frozen, eval_mode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--images", choices=["unlabeled", "val"], default="unlabeled")
    args = ap.parse_args()
    task, cfg = load_task(args.ckpt)
    data, d = prepare_data(cfg), cfg.data
    refs = data.spec.by_id()
    ids = [i for i in getattr(data.split, args.images) if refs[i].mask is not None]
    store = SampleStore(data.spec, d.bands, data.mean, data.std, cache=True, scale=d.scale)
    crops = CropStream(store, ids, d.crop_size, args.batches * args.batch_size, args.seed, labeled=True)  # + masks
    model, k = task.method.model, len(task.classes.names)
    cms = {"eval mode (running statistics)": np.zeros((k, k)), "train mode (batch statistics)": np.zeros((k, k))}
    with torch.no_grad():
        for b in range(args.batches):
            items = [crops[b * args.batch_size + i] for i in range(args.batch_size)]
            x, y = torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items])
            with eval_mode(model):
                pred_eval = model(x).argmax(1)
            model.train()
            with bn_stats_frozen(model):
                pred_train = model(x).argmax(1)
            keep = y < k
            for cm, pred in zip(cms.values(), (pred_eval, pred_train)):
                cm += np.bincount((y[keep] * k + pred[keep]).numpy(), minlength=k * k).reshape(k, k)
    for name, cm in cms.items():
        m = confusion_metrics(cm, list(task.classes.names))
        print(f"{name}: OA {m['OA']:.3f}  mIoU {m['mIoU']:.3f}  " + "  ".join(
            f"{c} {v['IoU']:.3f}" for c, v in m["per_class"].items()))  # fmt: skip


if __name__ == "__main__":
    main()
