"""The Method contract, parametrized over every registered method (a new method inherits these tests)."""

import json
import math

import pytest
import torch

from semiland.config import ModelConfig
from semiland.errors import SemilandError
from semiland.methods import METHODS, build_method
from semiland.methods.base import MethodContext, TargetConfig, UnlabeledConfig, sigmoid_rampup
from semiland.methods.network_modes import bn_stats_frozen, drop_labeled_statistics
from semiland.models import build_model

K = 4


def make(name: str, bands: int, **method_cfg):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="tiny_unet", width=8)
    ctx = MethodContext(
        K,
        bands,
        255,
        max_steps=10,
        model_factory=lambda in_channels=bands, num_classes=K: build_model(cfg, in_channels, num_classes),
        channels=[bands - 1, 1] if name == "dllr" else [bands],
    )  # fmt: skip  (dllr: the last band plays SAR)
    return build_method({"name": name, **method_cfg}, build_model(cfg, bands, K), ctx)


def open_gates(name: str) -> dict:
    """Config that makes the unsupervised term active on an untrained net: no confidence threshold."""
    fields = METHODS[name].Config.__dataclass_fields__
    if "top_q" in fields and fields["top_q"].default > 0:
        return {}  # each predicted class's top fraction is kept whatever the confidence
    return {"threshold": 0.0} if "threshold" in fields else {}


def batches(bands: int, seed: int = 0, all_ignore: bool = False):
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, K, (2, 32, 32), generator=g)
    if all_ignore:
        mask[:] = 255
    labeled = {
        "image": torch.randn(2, bands, 32, 32, generator=g),
        "mask": mask,
        "valid": torch.ones(2, 32, 32, dtype=torch.bool),
    }
    unlabeled = {"image": torch.randn(2, bands, 32, 32, generator=g), "valid": torch.ones(2, 32, 32, dtype=torch.bool)}
    # pseudo-label masks, for methods that train on saved ones (self-training); others ignore them
    unlabeled["mask"] = torch.randint(0, K, (2, 32, 32), generator=g)
    return labeled, unlabeled


@pytest.mark.parametrize(
    ("name", "bands"), [(n, b) for n in METHODS for b in (1, 4, 13) if not (n == "dllr" and b == 1)]
)  # dllr needs two modalities, so at least two bands
def test_finite_loss_and_gradients_reach_the_network(name, bands):
    method = make(name, bands)
    labeled, unlabeled = batches(bands)
    out = method.training_step(labeled, unlabeled if method.uses_unlabeled else None, step=3)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.model.parameters())
    assert method.predict(labeled["image"]).shape == (2, K, 32, 32)
    method.after_step(3)


@pytest.mark.parametrize("name", list(METHODS))
def test_all_ignore_masks_give_no_nan(name):
    method = make(name, 3)
    labeled, unlabeled = batches(3, all_ignore=True)
    out = method.training_step(labeled, unlabeled if method.uses_unlabeled else None, step=0)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", list(METHODS))
def test_state_dict_round_trip(name):
    a, b = make(name, 3), make(name, 3)
    for p in b.parameters():
        p.data.add_(1.0)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(a.predict(x), b.predict(x))


SEMI = [n for n, m in METHODS.items() if m.uses_unlabeled]


@pytest.mark.parametrize("name", SEMI)
def test_unsupervised_loss_depends_on_the_unlabeled_batch(name):
    method = make(name, 3, **open_gates(name))
    labeled, unlabeled = batches(3)
    _, other = batches(3, seed=1)
    torch.manual_seed(0)
    a = method.training_step(labeled, unlabeled, step=9)["loss_unsup"]
    torch.manual_seed(0)
    b = method.training_step(labeled, other, step=9)["loss_unsup"]
    assert a > 0 and not torch.isclose(a, b)


@pytest.mark.parametrize("name", SEMI)
def test_unsupervised_gradient_reaches_the_student(name):
    """With every labeled pixel ignored, only the unsupervised term can move the student."""
    method = make(name, 3, **open_gates(name))
    labeled, unlabeled = batches(3, all_ignore=True)
    method.training_step(labeled, unlabeled, step=9)["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.model.parameters())


TEACHERS = [
    ("mean_teacher", {}),
    ("s4net", {"teacher": "ema"}),
    ("fixmatch", {}),  # its default teacher is the EMA (fixmatch.py)
    ("unimatch", {}),  # as FixMatch's (unimatch.py)
    ("pseudo_label", {"teacher": "ema", "top_q": 0.5, "align": True}),
]


@pytest.mark.parametrize(("name", "cfg"), TEACHERS)
def test_teacher_gets_no_gradient_and_follows_the_student(name, cfg):
    method = make(name, 3, **cfg)
    labeled, unlabeled = batches(3)
    method.training_step(labeled, unlabeled, step=9)["loss"].backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    before = [p.clone() for p in method.teacher.parameters()]
    with torch.no_grad():
        for p in method.model.parameters():
            p.add_(0.1)  # stands in for an optimizer step of the student
    method.after_step(100)
    after = list(method.teacher.parameters())
    assert all(not torch.equal(x, y) for x, y in zip(before, after))
    # and the teacher moved towards the student, not past it
    s = next(method.model.parameters())
    assert (after[0] - before[0]).abs().max() < (s - before[0]).abs().max()


def test_sigmoid_rampup():
    assert sigmoid_rampup(0, 100) == pytest.approx(torch.exp(torch.tensor(-5.0)).item())
    assert sigmoid_rampup(100, 100) == 1.0 and sigmoid_rampup(5, 0) == 1.0
    assert sigmoid_rampup(40, 100) < sigmoid_rampup(60, 100) < 1.0


@pytest.mark.parametrize("name", [m for m in METHODS if METHODS[m].uses_unlabeled])
def test_unlabeled_views_leave_batchnorm_running_statistics_alone(name):
    """Running statistics (used at evaluation) come from the labeled pass only: two steps that differ only in
    their unlabeled batch leave identical statistics (docs/design.md, "Batch norm and unlabeled views")."""
    stats = []
    for seed in (0, 1):
        method = make(name, 3, **open_gates(name))
        labeled, _ = batches(3)
        _, unlabeled = batches(3, seed=seed + 5)
        method.training_step(labeled, unlabeled, step=9)
        # the networks that predict (not a teacher, the VAE's branch, a discriminator or a generator)
        aside = ("teacher", "branch.", "discriminator.", "generator.")
        stats.append([b.clone() for n, b in method.named_buffers() if "running_" in n and not n.startswith(aside)])
    assert stats[0] and all(torch.equal(a, b) for a, b in zip(*stats))


@pytest.mark.parametrize("name", [m for m in METHODS if METHODS[m].uses_unlabeled])
def test_targets_in_eval_mode_gradients_in_train_mode(name):
    """Teachers, and targets with `target_bn=running`: every batch-norm call without gradient runs in eval
    mode, with the running statistics; every call with gradient trains in train mode."""
    running = {"target_bn": "running"} if issubclass(METHODS[name].Config, TargetConfig) else {}
    method = make(name, 3, **running, **open_gates(name))
    calls: list[tuple[bool, bool]] = []
    norms = [m for m in method.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    hooks = [m.register_forward_pre_hook(lambda mod, _: calls.append((mod.training, torch.is_grad_enabled())))
             for m in norms]  # fmt: skip
    labeled, unlabeled = batches(3)
    method.training_step(labeled, unlabeled, step=9)
    for h in hooks:
        h.remove()
    assert calls and all(training == grad for training, grad in calls), sorted(set(calls))


@pytest.mark.parametrize("name", [m for m in METHODS if issubclass(METHODS[m].Config, TargetConfig)])
def test_target_bn_batch_predicts_targets_with_batch_statistics_and_leaves_running_ones(name):
    """`target_bn=batch` (the default): every pass in train mode, targets included; running statistics still
    come from the labeled pass only (two steps that differ only in their unlabeled batch leave identical ones)."""
    assert METHODS[name].Config().target_bn == "batch"
    stats = []
    for seed in (0, 1):
        method = make(name, 3, **open_gates(name))
        calls: list[bool] = []
        hooks = [m.register_forward_pre_hook(lambda mod, _, seen=calls: seen.append(mod.training))
                 for m in method.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]  # fmt: skip
        labeled, _ = batches(3)
        _, unlabeled = batches(3, seed=seed + 5)
        method.training_step(labeled, unlabeled, step=9)
        for h in hooks:
            h.remove()
        assert calls and all(calls)
        stats.append([b.clone() for n, b in method.named_buffers() if "running_" in n])
    assert all(torch.equal(a, b) for a, b in zip(*stats))
    with pytest.raises(SemilandError, match="method.target_bn must be one of running, batch"):
        make(name, 3, target_bn="sideways")


def _norms(module: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_unlabeled_bn_labeled_normalises_unlabeled_passes_with_the_labeled_batch():
    """`unlabeled_bn=labeled`: after a labeled pass, an unlabeled pass (inside `bn_stats_frozen`, nested or
    not) gives what eval mode gives with running statistics set to the labeled batch's; each unlabeled
    sample's output is its own (no batch statistics); running statistics are not touched."""
    method = make("s4net", 3, unlabeled_bn="labeled")
    net = method.model.train()
    labeled, unlabeled = batches(3)
    x_l, x_u = labeled["image"], unlabeled["image"]
    with pytest.raises(SemilandError, match="unlabeled pass ran before any labeled one"), bn_stats_frozen(net):
        net(x_u)
    net(x_l)  # the labeled pass: records its batch statistics (and updates the running ones)
    running = [b.clone() for n, b in net.named_buffers() if "running_" in n]
    with bn_stats_frozen(net):
        with bn_stats_frozen(net):  # nested (CPS's targets inside its unlabeled pass)
            inner = net(x_u)
        out, first = net(x_u), net(x_u[:1])  # still the labeled statistics after the inner one ends
    assert torch.allclose(inner, out) and torch.allclose(out[:1], first, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(running, [b for n, b in net.named_buffers() if "running_" in n]))
    reference = make("s4net", 3).model  # same seed: same weights
    for m, ref in zip(_norms(net), _norms(reference)):
        ref.running_mean.copy_(m.labeled_stats[0])
        ref.running_var.copy_(m.labeled_stats[1])
    with torch.no_grad():
        assert torch.allclose(out, reference.eval()(x_u), atol=1e-4)
        with bn_stats_frozen(reference.train()):
            own = reference(x_u)  # each batch's own statistics (the switch is off there)
        assert not torch.allclose(own, out, atol=1e-3)
    # gradients flow through the labeled statistics: an unlabeled-only loss reaches the labeled input
    x_l = x_l.clone().requires_grad_(True)
    net(x_l)
    with bn_stats_frozen(net):
        net(x_u).pow(2).sum().backward()
    assert x_l.grad is not None and x_l.grad.abs().sum() > 0
    drop_labeled_statistics(net)  # a diagnostic's "each batch's own statistics" on such a run's network
    with torch.no_grad(), bn_stats_frozen(net):
        assert torch.allclose(net(x_u), own, atol=1e-5) and not any(hasattr(m, "labeled_stats") for m in _norms(net))


@pytest.mark.parametrize("name", [m for m in METHODS if issubclass(METHODS[m].Config, UnlabeledConfig)])
def test_unlabeled_bn_labeled_trains_every_method_that_takes_unlabeled_images(name):
    """Every such method has the switch; with it a step records the labeled statistics and gives a finite loss;
    running statistics still come from the labeled pass alone; a bad value is one line."""
    assert METHODS[name].uses_unlabeled and METHODS[name].Config().unlabeled_bn == "batch"
    stats = []
    for seed in (0, 1):
        # an EMA teacher predicts with its own batch norm: refused beside unlabeled_bn=labeled (tests/test_targets.py)
        own = {"teacher": "self"} if getattr(METHODS[name].Config(), "teacher", None) == "ema" else {}
        method = make(name, 3, unlabeled_bn="labeled", **own, **open_gates(name))
        labeled, _ = batches(3)
        _, unlabeled = batches(3, seed=seed + 5)
        out = method.training_step(labeled, unlabeled, step=9)
        assert torch.isfinite(out["loss"])
        assert any(m.labeled_stats is not None for m in _norms(method))
        aside = ("teacher", "branch.", "discriminator.", "generator.")
        stats.append([b.clone() for n, b in method.named_buffers() if "running_" in n and not n.startswith(aside)])
    assert all(torch.equal(a, b) for a, b in zip(*stats))
    with pytest.raises(SemilandError, match="method.unlabeled_bn must be one of batch, labeled"):
        make(name, 3, unlabeled_bn="running")


def test_class_thresholds_lower_the_bar_for_classes_the_model_is_unsure_of():
    """FlexMatch's curriculum: class 0 is predicted confidently (0.99) everywhere but a strip of class 1 at 0.8.
    A fixed τ = 0.95 never keeps class 1; the class-wise thresholds soon do, while class 0 keeps τ."""
    from semiland.methods.selection import ClassThresholds, confident_pseudo

    probs = torch.zeros(1, K, 8, 8)
    probs[:, 0], probs[:, 1] = 0.99, 0.01
    probs[:, 0, :2], probs[:, 1, :2] = 0.2, 0.8  # two rows predicted class 1, unsure
    thresholds = ClassThresholds(K, threshold=0.95, momentum=0.5)
    _, fixed = confident_pseudo(probs, 0.95)
    assert not fixed[:, :2].any()
    for _ in range(5):
        pseudo, keep = thresholds(probs)
    assert keep[:, :2].all() and keep[:, 2:].all() and (pseudo[:, :2] == 1).all()
    assert thresholds.sigma[0] > thresholds.sigma[1] and "sigma" in thresholds.state_dict()
    probs[:, 0, 2:] = 0.9  # class 0 below its own threshold (still τ: it is the best-learned class)
    assert not thresholds(probs)[1][:, 2:].any()


def test_fixmatch_with_class_thresholds_trains_and_saves_them():
    method = make("fixmatch", 3, flex=True, threshold=0.5, top_q=0.0, burnin=0.0)
    labeled, unlabeled = batches(3)
    out = method.training_step(labeled, unlabeled, 0)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and "thresholds.sigma" in method.state_dict()
    assert not torch.allclose(method.thresholds.sigma, torch.full((K,), 1 / K))  # updated from the batch


def test_top_q_keeps_each_predicted_class_its_most_confident_fraction():
    """Per predicted class, ⌈q·n⌉ of its n pixels, each kept one at least as confident as any it leaves."""
    from semiland.methods.selection import top_q_keep

    g = torch.Generator().manual_seed(0)
    conf, pred = torch.rand(3, 17, 19, generator=g), torch.randint(0, K, (3, 17, 19), generator=g)
    pred[pred == 3] = 0  # class 3 never predicted: nothing to keep, no error
    for q in (0.25, 0.5, 1.0):
        keep = top_q_keep(conf, pred, q, K)
        assert keep.shape == conf.shape and not (keep & (pred == 3)).any()
        for k in range(3):
            sel = pred == k
            assert int((keep & sel).sum()) == math.ceil(q * int(sel.sum()))
            left = conf[~keep & sel]
            assert left.numel() == 0 or conf[keep & sel].min() >= left.max()


@pytest.mark.parametrize("name", ["fixmatch", "unimatch", "pseudo_label"])
def test_top_q_gives_targets_to_a_class_the_model_is_never_sure_of(name):
    """One τ keeps no pixel of a class below it everywhere; top_q keeps that class's most confident ones."""
    from semiland.methods.selection import confident_pseudo, target_shares

    probs = torch.zeros(1, K, 8, 8)
    probs[:, 0], probs[:, 1] = 0.99, 0.01
    probs[:, 0, :2], probs[:, 1, :2] = 0.3, 0.7  # two rows predicted class 1, never above τ
    pseudo, fixed = confident_pseudo(probs, 0.95)
    pseudo, quota = confident_pseudo(probs, 0.95, top_q=0.5)
    assert not fixed[:, :2].any() and int(quota[:, :2].sum()) == 8 and int(quota[:, 2:].sum()) == 24
    assert float(target_shares(pseudo, quota, ["a", "b", "c", "d"])["target/b"]) == pytest.approx(0.25)
    method = make(name, 3, top_q=0.5)  # and the methods take it: with it, every step keeps targets
    out = method.training_step(*batches(3), step=5)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and float(out["mask_ratio"]) > 0.4


def test_soft_targets_keep_the_share_a_hard_target_drops():
    """With soft_targets = T the strong view learns p^(1/T) renormalised: a class ranked second everywhere
    keeps its (sharpened) share of the target, where the arg-max gives it none."""
    from semiland.methods.fixmatch import weak_targets

    method = make("fixmatch", 3, soft_targets=0.5, burnin=0.0)
    _, unlabeled = batches(3)
    torch.manual_seed(1)  # the same random flip for both
    x_w, hard, keep_h = weak_targets(method.target_net, unlabeled, 0.0, "running", top_q=0.5)
    torch.manual_seed(1)
    _, soft, keep_s = weak_targets(method.target_net, unlabeled, 0.0, "running", top_q=0.5, soft=0.5)
    assert hard.shape == (2, 32, 32) and soft.shape == (2, K, 32, 32) and torch.equal(keep_h, keep_s)
    assert torch.allclose(soft.sum(1), torch.ones(2, 32, 32)) and torch.equal(soft.argmax(1), hard)
    with torch.no_grad():
        probs = method.target_net.eval()(x_w).softmax(1)
    sharp = probs**2 / (probs**2).sum(1, keepdim=True)  # T = 0.5: the first class's lead widens, none is dropped
    assert torch.allclose(soft, sharp, atol=1e-5) and (soft.sort(1).values[:, -2] > 0).all()
    method.target_net.train()
    out = method.training_step(*batches(3), step=5)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and float(out["loss_unsup"]) > 0


def test_target_flips_average_the_teachers_probabilities_over_the_flipped_views():
    """target_flips = 4: the teacher's probabilities are the mean over the weak view and its three flips, each
    flipped back (not the one view's); a step trains on them."""
    from semiland.methods.fixmatch import weak_targets
    from semiland.methods.perturb import FLIPS
    from semiland.methods.selection import teacher_probs

    method = make("fixmatch", 3, target_flips=4, burnin=0.0)
    _, unlabeled = batches(3)
    net = method.target_net.eval()
    x = unlabeled["image"]
    with torch.no_grad():
        views = [net(x.flip(dims)).softmax(1).flip(dims) for dims in FLIPS]
    averaged = teacher_probs(net, x, "running", flips=4)
    assert torch.allclose(averaged, sum(views) / 4, atol=1e-6) and not torch.allclose(averaged, views[0], atol=1e-3)
    torch.manual_seed(1)
    x_w, pseudo, _ = weak_targets(net, unlabeled, 0.0, "running", top_q=0.5, flips=4)
    assert torch.equal(pseudo, teacher_probs(net, x_w, "running", flips=4).argmax(1))
    net.train()
    out = method.training_step(*batches(3), step=5)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and float(out["loss_unsup"]) > 0


def test_pasted_labeled_boxes_carry_their_true_mask_and_drop_its_unknown_pixels():
    """BCP's inward paste (p = 1): inside each box the strong view is the labeled crop (the identity photometric
    view here) and the target its mask; pixels of unknown class are not kept; outside, nothing changes."""
    from semiland.methods.fixmatch import paste_labeled

    labeled, unlabeled = batches(3)
    labeled["mask"][0, :, :8] = 255  # a strip of unknown class
    x_s, hard, keep = unlabeled["image"], unlabeled["mask"], torch.ones(2, 32, 32, dtype=torch.bool)
    torch.manual_seed(0)
    x, t, k = paste_labeled(x_s, hard, keep, labeled, 1.0, 255, photometric=0.0, blur_p=0.0)
    box = (x != x_s).any(1)  # (B, H, W): where the labeled crop went
    assert box.any(dim=(1, 2)).all() and not box.all()  # a box in each image, not the whole image
    outside = ~box[:, None].expand_as(x)
    assert all(torch.equal(x[i][:, box[i]], labeled["image"][i][:, box[i]]) for i in range(2))
    assert torch.equal(x[outside], x_s[outside])
    known = labeled["mask"] != 255
    assert torch.equal(t[box & known], labeled["mask"][box & known]) and torch.equal(t[~box], hard[~box])
    assert torch.equal(k, ~box | known)  # the unknown strip is dropped only where it was pasted
    soft = torch.full((2, K, 32, 32), 1 / K)
    torch.manual_seed(0)
    _, ts, _ = paste_labeled(x_s, soft, keep, labeled, 1.0, 255, photometric=0.0, blur_p=0.0)
    assert torch.equal(ts.argmax(1)[box & known], labeled["mask"][box & known]) and ts.amax(1)[box].eq(1).all()
    method = make("fixmatch", 3, paste_labeled=1.0, burnin=0.0)
    out = method.training_step(*batches(3), step=5)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and float(out["loss_unsup"]) > 0


def test_fixmatch_refuses_two_ways_of_choosing_its_targets():
    with pytest.raises(SemilandError, match="flex and method.top_q"):
        make("fixmatch", 3, flex=True, top_q=0.5)


def test_target_shares_count_only_the_kept_pixels():
    from semiland.methods.selection import target_shares

    pseudo = torch.tensor([[[0, 0, 1, 2]]])  # (B, H, W)
    keep = torch.tensor([[[True, True, True, False]]])  # class 2 predicted but not kept: no share
    shares = target_shares(pseudo, keep, ["a", "b", "c"])
    assert list(shares) == ["target/a", "target/b", "target/c"]
    assert [round(float(v), 4) for v in shares.values()] == [0.6667, 0.3333, 0.0]
    assert all(float(v) == 0 for v in target_shares(pseudo, torch.zeros_like(keep), ["a", "b", "c"]).values())


@pytest.mark.parametrize("name", ["fixmatch", "unimatch", "pseudo_label", "cps"])
def test_hard_target_methods_log_each_class_share_of_their_targets(name):
    """What the unlabeled loss teaches, per class (the run report plots it): shares of the kept targets sum to 1."""
    method = make(name, 3, **open_gates(name))
    out = method.training_step(*batches(3), step=5)
    shares = [float(out[f"target/{k}"]) for k in range(K)]  # no class names in this context: their indices
    assert sum(shares) == pytest.approx(1.0) and all(0 <= x <= 1 for x in shares)


@pytest.mark.parametrize("name", list(METHODS))
def test_training_step_under_bf16_autocast(name):
    """train.precision=bf16-mixed runs every step under CPU autocast: convolutions inside augmentations (blur),
    index writes and losses must cope with bf16 tensors (the Dubai sweep runs in bf16)."""
    method = make(name, 4, **open_gates(name))
    labeled, unlabeled = batches(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method.training_step(labeled, unlabeled, 5)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]), name
    assert method.predict(labeled["image"]).dtype == torch.float32  # logits leave models as float32


def test_mean_teacher_student_view_follows_its_config(monkeypatch):
    import semiland.methods.mean_teacher as mt

    seen = []
    monkeypatch.setattr(mt, "strong_photometric", lambda x, blur_p, strength: seen.append((blur_p, strength)) or x)
    method = make("mean_teacher", 3, photometric=0.0, blur_p=0.25)
    method.training_step(*batches(3), step=3)
    assert seen == [(0.25, 0.0)]


def test_run_report_plots_the_class_shares_of_the_pseudo_labels(synth_root, tmp_path):
    """FixMatch's run logs `target/<class>` under its class names and its report draws them; a supervised run has
    none, so a report of it alone shows no such figure."""
    from semiland.engine.run_folder import read_log
    from semiland.engine.runner import fit
    from semiland.report.run_report import build_run_report, evaluate_run

    from .conftest import tiny_config

    fixmatch = fit(tiny_config(synth_root, method={"name": "fixmatch", "burnin": 0.0}), tmp_path / "fm")
    logged = read_log(fixmatch.run_dir / "logs" / "metrics.csv")
    assert {f"train/target/{c}" for c in fixmatch.data.spec.classes.names} <= set(logged)
    html = build_run_report(
        tmp_path / "a", "t", [evaluate_run(fixmatch, "fm", 1.0)], fixmatch.data, [], "c"
    ).read_text()
    assert "figures/target_shares.png" in html and (tmp_path / "a" / "figures" / "target_shares.png").is_file()
    supervised = fit(tiny_config(synth_root), tmp_path / "sup")
    html = build_run_report(
        tmp_path / "b", "t", [evaluate_run(supervised, "s", 1.0)], supervised.data, [], "c"
    ).read_text()
    assert "target_shares" not in html and not (tmp_path / "b" / "figures" / "target_shares.png").exists()


def test_a_threshold_that_keeps_nothing_is_warned_about_in_the_log_and_report(synth_root, tmp_path, capsys):
    from semiland.cli import main

    from .conftest import write_config

    cfg = write_config(tmp_path, synth_root)
    args = ["method.name=fixmatch_paper", "method.threshold=1.0", "data.unlabeled=[region_1]", "train.steps=3"]
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "run"), *args]) == 0
    assert "no pseudo-label was kept in the whole run" in capsys.readouterr().err
    warned = json.loads((tmp_path / "run" / "warnings.json").read_text())
    assert [w["key"] for w in warned] == ["mask_ratio"]
    assert "no pseudo-label was kept" in (tmp_path / "run" / "report.html").read_text()
    # a threshold that keeps some: no warning
    assert main(["fit", "--config", str(cfg), "-o", str(tmp_path / "ok"), *args[:-2], "method.threshold=0.0",
                 "data.unlabeled=[region_1]", "train.steps=3"]) == 0  # fmt: skip
    assert not (tmp_path / "ok" / "warnings.json").exists()
