"""The target recipe of FixMatch, UniMatch and pseudo-labeling (methods/targets.py): EMA teacher, distribution alignment,
burn-in — each does what its docstring says, resumes with the run and refuses what it cannot do."""

import pytest
import torch

from semiland.errors import SemilandError
from semiland.methods.targets import DistributionAlignment
from tests.test_methods import batches, make

RECIPE = ["fixmatch", "unimatch", "pseudo_label"]


def test_alignment_raises_a_class_the_model_predicts_less_often_than_the_labels_hold_it():
    align = DistributionAlignment(2, momentum=0.0)  # momentum 0: the shares are the last batch's
    mask = torch.tensor([[[0, 1], [0, 1]]])  # labels: half class 1
    align.observe(mask, torch.ones_like(mask, dtype=torch.bool))
    assert torch.allclose(align.labeled, torch.tensor([0.5, 0.5]))
    # the model gives class 1 a mean of 0.2 where the labels hold 0.5: a pixel at p1 = 0.4 becomes class 1
    probs = torch.tensor([0.8, 0.6, 0.6, 0.8]).view(1, 1, 2, 2)
    probs = torch.cat([probs, 1 - probs], 1)  # (1, 2, 2, 2), mean p1 = 0.3
    aligned = align(probs, torch.ones(1, 2, 2, dtype=torch.bool))
    assert torch.allclose(aligned.sum(1), torch.ones(1, 2, 2))
    assert torch.allclose(align.predicted, torch.tensor([0.7, 0.3]))
    assert (probs.argmax(1) == 0).all() and (aligned.argmax(1) == torch.tensor([[[0, 1], [1, 0]]])).all()


def test_alignment_ignores_pixels_that_are_not_valid_or_not_labeled():
    align = DistributionAlignment(3, momentum=0.0)
    mask = torch.tensor([[[0, 255], [2, 2]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    align.observe(mask, valid)
    assert torch.allclose(align.labeled, torch.tensor([0.5, 0.0, 0.5]))


@pytest.mark.parametrize("name", RECIPE)
def test_burnin_trains_on_the_labeled_crops_alone_then_starts_the_unlabeled_loss(name):
    method = make(name, 3, burnin=0.5, top_q=0.5)  # max_steps 10: steps 0–4 are burn-in
    labeled, unlabeled = batches(3)
    early = method.training_step(labeled, unlabeled, step=4)
    assert early["loss_unsup"] == 0 and early["mask_ratio"] == 0 and torch.equal(early["loss"], early["loss_sup"])
    late = method.training_step(labeled, unlabeled, step=5)
    assert late["loss_unsup"] > 0 and late["mask_ratio"] > 0


@pytest.mark.parametrize("name", RECIPE)
def test_aligned_targets_move_with_the_labeled_shares_and_are_checkpointed(name):
    method = make(name, 3, align=True, top_q=0.5, burnin=0.0)
    labeled, unlabeled = batches(3)
    method.training_step(labeled, unlabeled, step=0)["loss"].backward()
    state = method.state_dict()
    assert not torch.allclose(state["align.labeled"], torch.full((4,), 0.25))  # observed the labeled batch
    assert not torch.allclose(state["align.predicted"], torch.full((4,), 0.25))
    twin = make(name, 3, align=True, top_q=0.5, burnin=0.0)
    twin.load_state_dict(state)
    assert torch.equal(twin.align.predicted, method.align.predicted)


@pytest.mark.parametrize("name", RECIPE)
def test_the_ema_teacher_predicts_the_targets(name, monkeypatch):
    method = make(name, 3, teacher="ema", top_q=0.5, burnin=0.0)
    seen = []
    monkeypatch.setattr(method.teacher, "forward", lambda x: seen.append(x.shape) or method.model(x) * 0)
    method.training_step(*batches(3), step=0)
    assert seen, "the teacher was not asked for the targets"


@pytest.mark.parametrize(
    ("cfg", "says"),
    [({"teacher": "student"}, "method.teacher must be one of self, ema"),
     ({"teacher": "ema", "unlabeled_bn": "labeled"}, "cannot take method.unlabeled_bn=labeled")],
)  # fmt: skip
def test_recipe_refuses_what_it_cannot_do_in_one_line(cfg, says):
    with pytest.raises(SemilandError, match=says) as err:
        make("fixmatch", 3, **cfg)
    assert "\n" not in str(err.value)


def test_a_run_saved_before_the_recipe_existed_loads_with_the_settings_it_was_trained_with():
    """A config.yaml or checkpoint written before `teacher`, `align` and `burnin` existed: those settings take
    the values the code had then (the papers'), whatever today's defaults, so the saved network fits."""
    from semiland.methods import method_config

    saved = {"name": "fixmatch", "threshold": 0.95, "top_q": 0.0}  # a session-29 run's method section
    then = method_config(saved, saved=True)
    assert (then.teacher, then.align, then.burnin) == ("self", False, 0.0)
    old = make("fixmatch_paper", 3)
    again = make("fixmatch", 3, **{k: getattr(then, k) for k in ("teacher", "align", "burnin", "top_q")})
    again.load_state_dict(old.state_dict())  # strict: no teacher or alignment buffers missing
    # a config a user writes today gets today's defaults, and what a saved config names is kept
    assert method_config({"name": "fixmatch", "teacher": "ema"}, saved=True).teacher == "ema"


def test_fixmatch_defaults_are_the_recipe_and_fixmatch_paper_is_the_paper():
    from semiland.methods import method_config

    ours, paper = method_config({"name": "fixmatch"}), method_config({"name": "fixmatch_paper"})
    assert (ours.top_q, ours.teacher, ours.burnin, ours.align) == (0.5, "ema", 0.2, True)
    assert (paper.top_q, paper.teacher, paper.burnin, paper.threshold, paper.align) == (0.0, "self", 0.0, 0.95, False)


def test_unimatch_defaults_are_the_recipe_and_unimatch_paper_is_the_paper():
    from semiland.methods import method_config

    ours, paper = method_config({"name": "unimatch"}), method_config({"name": "unimatch_paper"})
    assert (ours.top_q, ours.teacher, ours.burnin, ours.align) == (0.5, "ema", 0.2, True)
    assert (paper.top_q, paper.teacher, paper.burnin, paper.threshold, paper.align) == (0.0, "self", 0.0, 0.95, False)
    # a UniMatch run saved before its defaults changed (session 46) names every setting: it reads back as it ran
    saved = method_config({"name": "unimatch", "threshold": 0.95, "top_q": 0.0, "teacher": "self", "align": False,
                           "burnin": 0.0}, saved=True)  # fmt: skip
    assert (saved.top_q, saved.teacher, saved.burnin, saved.align) == (0.0, "self", 0.0, False)
    old = make("unimatch_paper", 3)
    make("unimatch", 3, top_q=0.0, teacher="self", align=False, burnin=0.0).load_state_dict(old.state_dict())


def test_pseudo_label_defaults_are_the_recipe_and_pseudo_label_paper_is_the_paper():
    from semiland.methods import method_config

    ours, paper = method_config({"name": "pseudo_label"}), method_config({"name": "pseudo_label_paper"})
    assert (ours.top_q, ours.teacher, ours.burnin, ours.align) == (0.5, "ema", 0.2, True)
    assert (paper.top_q, paper.teacher, paper.burnin, paper.threshold, paper.align) == (0.0, "self", 0.0, 0.9, False)
    # a run saved before the recipe existed trained the paper's setting, and reads back as it
    saved = method_config({"name": "pseudo_label", "threshold": 0.9}, saved=True)
    assert (saved.top_q, saved.teacher, saved.burnin, saved.align) == (0.0, "self", 0.0, False)


def test_a_threshold_beside_top_q_is_refused_not_ignored():
    with pytest.raises(SemilandError, match="method.threshold is not used while method.top_q=0.5") as err:
        make("fixmatch", 3, threshold=0.8)
    assert "\n" not in str(err.value)
    make("fixmatch", 3, threshold=0.8, top_q=0.0)  # τ alone: accepted
    with pytest.raises(SemilandError, match="give method.top_q=0 with method.flex=true"):
        make("fixmatch", 3, flex=True)


def test_a_fixmatch_run_trained_before_the_new_defaults_is_tested_and_resumed_as_it_was(synth_root, tmp_path):
    """End to end: a FixMatch run whose config.yaml and checkpoints predate `teacher`, `align` and `burnin`
    (the keys removed, as a session-29 run wrote them) is tested and resumed with the paper's setting it was
    trained with — not refused for a missing EMA teacher."""
    import torch
    import yaml

    from semiland.cli import main
    from semiland.engine.runner import fit, load_task

    from .conftest import tiny_config

    method = {"name": "fixmatch", "teacher": "self", "align": False, "burnin": 0.0, "top_q": 0.0}  # as then
    cfg = tiny_config(synth_root, method=method, data={"unlabeled": ["region_1"]})
    run = fit(cfg, tmp_path / "run").run_dir
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        for key in ("teacher", "ema_decay", "align", "align_momentum", "burnin"):
            del saved["semiland"]["config"]["method"][key]
        torch.save(saved, ckpt)
    raw = yaml.safe_load((run / "config.yaml").read_text())
    raw["method"] = {k: v for k, v in raw["method"].items() if k not in ("teacher", "align", "burnin")}
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    task, loaded = load_task(run / "checkpoints" / "best.ckpt")
    assert loaded.method.teacher == "self" and task.method.teacher is None
    assert main(["test", "--ckpt", str(run / "checkpoints" / "best.ckpt")]) == 0
    assert main(["fit", "--resume", str(run), "train.steps=6"]) == 0


def test_cps_can_burn_in_and_keep_each_classs_most_confident_targets_only():
    """CPS's switches from the recipe (on by default; off in `cps_paper`): no unlabeled loss during the burn-in;
    with top_q the networks supervise each other on fewer pixels (a smaller loss on the same batch)."""
    labeled, unlabeled = batches(3)
    method = make("cps", 3, burnin=0.5)  # max_steps 10: steps 0–4 are burn-in
    early = method.training_step(labeled, unlabeled, step=4)
    assert early["loss_unsup"] == 0 and torch.equal(early["loss"], early["loss_sup"])
    assert method.training_step(labeled, unlabeled, step=5)["loss_unsup"] > 0
    every, some = make("cps_paper", 3), make("cps_paper", 3, top_q=0.25)
    assert (every.cfg.burnin, every.cfg.top_q) == (0, 0) and (method.cfg.top_q, make("cps", 3).cfg.burnin) == (0.5, 0.2)
    from semiland.methods import method_config

    saved = method_config({"name": "cps", "lambda_u": 1.5}, saved=True)  # a run from before the switches
    assert (saved.burnin, saved.top_q) == (0, 0)
    some.load_state_dict(every.state_dict())
    torch.manual_seed(0)
    a = every.training_step(labeled, unlabeled, step=9)["loss_unsup"]
    torch.manual_seed(0)
    b = some.training_step(labeled, unlabeled, step=9)["loss_unsup"]
    assert 0 < b < a
