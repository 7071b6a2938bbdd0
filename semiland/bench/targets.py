"""`semiland bench targets`: how good are a trained model's targets for unlabeled crops with batch norm's
running statistics vs each batch's own? (`method.target_bn`; docs/benchmarks.md)

Draws random training crops (the run's crop size and data.scale) from the run's unlabeled images that have
masks (or, with `--images val`, its validation images: what a user without unlabeled masks can measure on),
predicts them in batches with batch norm in eval mode (running statistics), in train mode (each batch's own
statistics, running statistics untouched) and with the statistics of a batch of the run's labeled crops
(`method.unlabeled_bn=labeled`), and scores each against the masks.
On Dubai the more accurate mode at the start (running statistics) made the worse pseudo-label run: a
diagnostic of how far unlabeled batches' statistics sit from the labeled ones, not a chooser of
`method.target_bn` (choose that by validation mIoU).

`--strong S` also scores the predictions on FixMatch's / UniMatch's strong photometric view of the same
crops (per-band gain, bias and noise of strength S, blur with probability `--blur-p`; batch statistics, as
the student sees it): classes whose accuracy falls there are those the strong view makes look like others,
so the consistency loss asks the network to call one class's appearance another's (docs/benchmarks.md).
`--affine` also scores S4Net's view: each crop warped by a random affine transform (S4Net's ranges; reflection
padding, batch statistics), predicted and mapped back with the inverse, against the mask on the pixels the
round trip keeps; and S4Net's consistency term itself (the squared L2 between two such views' class
distributions, averaged over pixels valid in both) with the crops' mean confidence (max p): does the
consistency the method asks for already hold, and what do the views it compares get right?
Usage: semiland bench targets --ckpt RUN/checkpoints/best.ckpt [--images unlabeled|val] [--batches 20]
       [--strong 1.0 --blur-p 0.5] [--affine]
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from semiland.console import progress_bar
from semiland.data.datamodule import CropStream
from semiland.data.prepare import prepare_data
from semiland.data.store import SampleStore
from semiland.engine.metrics import confusion_metrics
from semiland.engine.runner import load_task
from semiland.errors import SemilandError
from semiland.methods.network_modes import bn_stats_frozen, drop_labeled_statistics, target_mode, use_labeled_statistics
from semiland.methods.perturb import invert_affine, random_affine, strong_photometric, warp, warp_valid
from semiland.methods.s4net import S4NetConfig
from semiland.methods.selection import masked_mse


def affine_views(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """S4Net's view of crops (B, C, H, W): ϕ⁻¹(softmax f(ϕ(x))) (B, K, H, W), and the round trip's valid
    pixels (B, H, W); S4Net's default ranges, batch statistics (running ones untouched), as the method trains."""
    c, (b, _, h, w) = S4NetConfig(), x.shape
    theta = random_affine(b, x.device, c.translate, (c.scale_min, c.scale_max), c.rotate)
    inverse = invert_affine(theta)
    with target_mode("batch", model.train()):
        probs = model(warp(x, theta, padding="reflection")).softmax(1)
    return warp(probs, inverse), warp_valid(theta, inverse, h, w)


def _shares(counts: np.ndarray, names: list[str]) -> str:
    """Pixel counts per class (a confusion matrix's row or column sums) as "name share" percentages."""
    total = max(counts.sum(), 1)
    return "  ".join(f"{c} {100 * n / total:.1f}" for c, n in zip(names, counts))


def run_targets(args: argparse.Namespace) -> int:
    task, cfg = load_task(args.ckpt)
    data, d = prepare_data(cfg), cfg.data
    refs = data.spec.by_id()
    ids = [i for i in getattr(data.split, args.images) if refs[i].mask is not None]
    if not ids:
        raise SemilandError(f"the run's {args.images} images have no masks to score targets against; try --images val")
    store = SampleStore(data.spec, d.bands, data.mean, data.std, cache=True, scale=d.scale)
    crops = CropStream(store, ids, d.crop_size, args.batches * args.batch_size, args.seed, labeled=True)  # + masks
    model, k = task.method.model, len(task.classes.names)
    drop_labeled_statistics(model)  # a run trained with method.unlabeled_bn=labeled: "batch" means the batch's own
    modes = {"running": np.zeros((k, k)), "batch": np.zeros((k, k)), "labeled": np.zeros((k, k))}
    # unlabeled_bn=labeled: a copy of the network normalises each batch with a labeled batch's statistics
    twin = copy.deepcopy(model)
    use_labeled_statistics(twin)
    refs_l = CropStream(store, data.split.labeled, d.crop_size, args.batches * args.batch_size, args.seed + 1, labeled=True)  # fmt: skip
    if args.strong is not None:
        modes["strong"] = np.zeros((k, k))
    if args.affine:
        modes["affine"] = np.zeros((k, k))
    consistency, confidence = [], []  # per batch: S4Net's term between two affine views; mean max p (batch mode)
    torch.manual_seed(args.seed)  # the strong views' draws
    with torch.no_grad():
        for b in progress_bar(range(args.batches), desc="target batches", disable=not args.progress):
            items = [crops[b * args.batch_size + i] for i in range(args.batch_size)]
            x, y = torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items])
            keep = y < k
            for mode, cm in modes.items():
                scored = keep
                if mode == "affine":
                    (back, valid), (back_2, valid_2) = affine_views(model, x), affine_views(model, x)
                    consistency.append(masked_mse(back, back_2, valid & valid_2 & keep).item())
                    pred, scored = back.argmax(1), keep & valid
                elif mode == "labeled":
                    twin.train()(
                        torch.stack([refs_l[b * args.batch_size + i]["image"] for i in range(args.batch_size)])
                    )
                    with bn_stats_frozen(twin):
                        pred = twin(x).argmax(1)
                else:
                    view = strong_photometric(x, args.blur_p, args.strong) if mode == "strong" else x
                    with target_mode("batch" if mode == "strong" else mode, model.train()):  # as a method predicts
                        probs = model(view).softmax(1)
                    pred = probs.argmax(1)
                    if mode == "batch":
                        confidence.append(probs.max(1).values[keep].mean().item())
                cm += np.bincount((y[scored] * k + pred[scored]).numpy(), minlength=k * k).reshape(k, k)
    model.eval()
    scores = {mode: confusion_metrics(cm, list(task.classes.names)) for mode, cm in modes.items()}
    print(
        f"targets on {len(crops)} crops of the run's {args.images} images ({args.batches} batches of {args.batch_size}):"
    )

    def num(x: float | None) -> str:  # None: a class absent from these crops and never predicted
        return "–" if x is None else f"{x:.3f}"

    for mode, m in scores.items():
        per_class = "  ".join(f"{c} {num(v['IoU'])}" for c, v in m["per_class"].items())
        name = {"strong": f"strong view (photometric {args.strong}, blur p {args.blur_p}), batch",
                "affine": "S4Net's affine view, mapped back", "labeled": "a labeled batch's statistics"}.get(
            mode, f"method.target_bn={mode}")  # fmt: skip
        print(f"  {name:<26} OA {num(m['OA'])}  mIoU {num(m['mIoU'])}  {per_class}")
        print(f"  {'':<26} predicted shares, %: {_shares(modes[mode].sum(0), task.classes.names)}")
    # a class the model stops predicting gets no pseudo-labels under any threshold or top-q selection
    print(f"  {'the masks':<26} true shares, %: {_shares(modes['batch'].sum(1), task.classes.names)}")
    gap = (scores["running"]["mIoU"] or 0.0) - (scores["batch"]["mIoU"] or 0.0)
    print(f"running − batch: {gap:+.3f} mIoU (how far unlabeled batches' statistics sit from the running ones; "
          "not a chooser of method.target_bn: docs/benchmarks.md)")  # fmt: skip
    print(f"mean confidence (max p, batch statistics): {np.mean(confidence):.3f}")
    if consistency:
        print(f"S4Net's consistency term between two affine views: {np.mean(consistency):.4f} (mean of "
              f"{len(consistency)} batches; squared L2 of class distributions over pixels valid in both)")  # fmt: skip
    return 0
