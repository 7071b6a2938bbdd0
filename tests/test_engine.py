import json
import math

import pytest
import torch

from semiland.engine.checkpoint import read_checkpoint, slim_checkpoint
from semiland.engine.run_config import load_config
from semiland.engine.runner import fit, load_task
from semiland.engine.sliding import at_scale, sliding_window_logits
from semiland.engine.task import lr_schedule
from semiland.errors import SemilandError
from semiland.methods import METHODS

from .conftest import tiny_config


@pytest.mark.parametrize("shape", [(70, 50), (130, 200), (64, 64)])
def test_sliding_window_equals_direct_prediction_for_pointwise_model(shape):
    conv = torch.nn.Conv2d(3, 4, 1)  # pointwise: any tiling must give exactly the direct result
    image = torch.randn(1, 3, *shape)
    out = sliding_window_logits(conv, image, tile=64, overlap=0.25)
    assert out.shape == (1, 4, *shape)
    assert torch.allclose(out, conv(image).detach(), atol=1e-5)


def test_several_predictions_of_one_pass_are_resampled_as_each_alone():
    # a method and its heads (DLLR's fused map and branches) share one pass; stacked, they must come back as
    # each would alone: resampling 18 channels at once rounds some pixels differently in the last bit
    heads = [torch.nn.Conv2d(4, 6, 3, padding=1) for _ in range(3)]
    x = torch.randn(2, 4, 96, 96).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        together = at_scale(lambda t: tuple(h(t) for h in heads), 0.5)(x)  # (2, 18, 96, 96)
        alone = [at_scale(h, 0.5)(x) for h in heads]
    assert all(torch.equal(a, t) for a, t in zip(alone, together.chunk(3, 1), strict=True))


def test_lr_schedule_shapes():
    cos = lr_schedule("cosine", steps=100, warmup=10, power=0.9)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(10) == pytest.approx(1.0) and cos(55) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0, abs=1e-9)
    poly = lr_schedule("poly", steps=10, warmup=0, power=1.0)
    assert poly(5) == pytest.approx(0.5)
    assert lr_schedule("constant", 10, 0, 0.9)(7) == 1.0
    with pytest.raises(SemilandError, match="unknown optim.schedule"):
        lr_schedule("step", 10, 0, 0.9)


def test_fit_writes_run_and_resume_continues(synth_root, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config(synth_root, train={"steps": 4, "val_every": 2})
    result = fit(cfg, run)
    ckpt = read_checkpoint(result.last_ckpt)
    assert ckpt["global_step"] == 4 and ckpt["semiland"]["train_step"] == 4
    assert (run / "config.yaml").is_file() and (run / "split.json").is_file() and (run / "val_metrics.json").is_file()
    assert not list(run.rglob("*.tmp"))  # atomic writes leave no temporary files
    assert "heads" not in json.loads((run / "val_metrics.json").read_text())  # a method without heads: itself only
    # resume: extend the same run to 8 steps; optimizer state and step counter continue
    cfg2 = tiny_config(synth_root, train={"steps": 8, "val_every": 2})
    cfg2.data.split_mode, cfg2.data.split_file = "file", str(run / "split.json")
    fit(cfg2, run, resume=True)
    resumed = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert resumed["global_step"] == 8
    assert resumed["optimizer_states"][0]["state"]  # momentum buffers were carried over, not reset
    assert resumed["lr_schedulers"][0]["lr_lambdas"] == [None]  # schedule rebuilt from train.steps, not pinned
    task, loaded_cfg = load_task(run / "checkpoints" / "last.ckpt")
    assert loaded_cfg.train.steps == 8 and not task.training
    # slimmed (a sweep keeps its cells' models so): a third of the size here, the same weights and predictions
    full = run / "checkpoints" / "last.ckpt"
    slim = tmp_path / "slim.ckpt"
    slim.write_bytes(full.read_bytes())
    slim_checkpoint(slim)
    assert "optimizer_states" not in read_checkpoint(slim) and slim.stat().st_size < 0.5 * full.stat().st_size
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(load_task(slim)[0].predict_logits(x), task.predict_logits(x))


def test_training_metrics_are_logged_only_on_the_steps_the_loggers_write(synth_root, tmp_path, monkeypatch):
    """`self.log` costs host time every call (a step's 3 % on this CPU, more of a GPU's short steps): the engine
    logs on the logger's steps only, and metrics.csv holds each of those steps' own loss, as when it logged every
    step."""
    from semiland.engine.run_folder import read_log
    from semiland.engine.task import SegTask
    from semiland.methods.supervised import Supervised

    losses, logged = [], []
    step = Supervised.training_step
    monkeypatch.setattr(Supervised, "training_step", lambda self, *a: losses.append(step(self, *a)["loss"]) or {
        "loss": losses[-1]})  # fmt: skip
    log = SegTask.log
    monkeypatch.setattr(SegTask, "log", lambda self, name, *a, **k: logged.append(name) or log(self, name, *a, **k))
    run = tmp_path / "run"
    fit(tiny_config(synth_root, train={"steps": 7, "val_every": 7, "log_every": 3}), run)
    assert len(losses) == 7 and logged.count("train/loss") == 2  # steps 2 and 5 (Lightning: (step + 1) % 3 == 0)
    written = read_log(run / "logs" / "metrics.csv")["train/loss"]
    assert [s for s, _ in written] == [2.0, 5.0]
    assert [v for _, v in written] == pytest.approx([losses[2].item(), losses[5].item()])


def test_last_checkpoint_follows_every_validation_even_without_improvement(synth_root, tmp_path, monkeypatch):
    """last.ckpt is the newest state (Lightning's save_last only refreshed it when best.ckpt improved)."""
    import semiland.engine.task as task_module

    scores = iter([0.9, 0.5, 0.4, 0.3])  # validation only gets worse after the first check
    real = task_module.confusion_metrics

    def worse_each_time(cm, names):
        return {**real(cm, names), "mIoU": next(scores)}

    monkeypatch.setattr(task_module, "confusion_metrics", worse_each_time)
    fit(tiny_config(synth_root, train={"steps": 8, "val_every": 2}), tmp_path / "run")
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt")["global_step"] == 2
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 8


def test_resume_before_the_first_checkpoint_trains_from_the_start(synth_root, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = tiny_config(synth_root, train={"steps": 4, "val_every": 2})
    fit(cfg, run)
    for ckpt in (run / "checkpoints").iterdir():  # as if killed after the config was written
        ckpt.unlink()
    (run / "checkpoints" / ".last.ckpt.abc.tmp").write_bytes(b"cut off")  # a write the kill interrupted
    cfg.data.split_mode, cfg.data.split_file = "file", str(run / "split.json")
    fit(cfg, run, resume=True)
    assert "training this run from step 0" in capsys.readouterr().err
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 4
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_corrupt_and_foreign_checkpoints(tmp_path):
    (tmp_path / "trunc.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SemilandError, match="corrupt or truncated"):
        read_checkpoint(tmp_path / "trunc.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(SemilandError, match="not a semiland checkpoint"):
        read_checkpoint(tmp_path / "foreign.ckpt")
    with pytest.raises(SemilandError, match="not found"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_pickled_code_is_never_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open('" + str(tmp_path / "pwned") + "', 'w').write('x')",))

    torch.save({"semiland": {"format": 1}, "state_dict": {}, "x": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(SemilandError, match="corrupt or truncated"):
        read_checkpoint(tmp_path / "evil.ckpt")
    assert not (tmp_path / "pwned").exists()


def test_non_finite_loss_stops_with_the_step(synth_root, tmp_path, monkeypatch):
    """A NaN loss term stops the run with the term and the step named; the last good checkpoint stays loadable."""
    from semiland.methods.supervised import Supervised

    original = Supervised.training_step

    def nan_at_step_3(self, labeled, unlabeled, step):
        out = original(self, labeled, unlabeled, step)
        return {k: v * math.nan for k, v in out.items()} if step == 3 else out  # a term gone NaN, and the sum

    monkeypatch.setattr(Supervised, "training_step", nan_at_step_3)
    with pytest.raises(SemilandError, match=r"non-finite loss, loss_sup at step 3: .*last good checkpoint is kept"):
        fit(tiny_config(synth_root, train={"steps": 4, "val_every": 2}), tmp_path / "run")
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 2
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_infinite_or_nan_settings_are_refused_before_training(synth_root, tmp_path):
    for override in ({"lr": math.inf}, {"lr": math.nan}, {"weight_decay": -1.0}):
        with pytest.raises(SemilandError, match="config key 'optim.*' must be in"):
            tiny_config(synth_root, optim=override)
    assert not (tmp_path / "run").exists()


def test_outputs_follow_the_umask(tmp_path):
    import os

    from semiland.io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "x.txt", "hello")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_json_outputs_are_strict_json_with_null_for_non_finite_numbers(tmp_path):
    """JSON has no NaN / Infinity: a summary's undefined mean (one seed's std, supervised's Δ against itself)
    is written as null, so a strict reader (JavaScript, jq) takes every file semiland writes."""
    import json
    import math

    from semiland.io import atomic_write_json

    def strict(token):
        raise ValueError(f"non-JSON token {token}")

    atomic_write_json(tmp_path / "r.json", {"std": math.nan, "rows": [1.5, (math.inf, -math.inf)], "n": 3, "s": "nan"})
    got = json.loads((tmp_path / "r.json").read_text(), parse_constant=strict)
    assert got == {"std": None, "rows": [1.5, [None, None]], "n": 3, "s": "nan"}


def test_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path):
    import errno

    from semiland.io import atomic_path, atomic_write_text

    atomic_write_text(tmp_path / "ckpt", "good")
    with pytest.raises(SemilandError, match="no space left on the device while writing .*ckpt"):
        with atomic_path(tmp_path / "ckpt") as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (tmp_path / "ckpt").read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_bf16_mixed_precision_on_cpu(synth_root, tmp_path):
    result = fit(tiny_config(synth_root, train={"steps": 2, "val_every": 2, "precision": "bf16-mixed"}), tmp_path / "r")
    assert read_checkpoint(result.last_ckpt)["global_step"] == 2


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_takes_bf16_only_where_native(monkeypatch, capsys, tmp_path, native):
    from semiland.engine import precision

    flags = "flags : fpu sse avx2 " + ("avx512f avx512_bf16" if native else "avx512f avx512bw")
    (tmp_path / "cpuinfo").write_text(f"processor : 0\n{flags}\n")
    assert precision.cpu_has_bf16(str(tmp_path / "cpuinfo")) is native
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    precision._say.cache_clear()
    assert precision.resolve_precision("auto", "cpu") == ("bf16-mixed" if native else "32-true")
    assert precision.resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"  # explicit: trained as asked …
    assert precision.resolve_precision("32-true", "cpu") == "32-true"
    err = capsys.readouterr().err
    assert f"train.precision=auto: {'bf16-mixed' if native else '32-true'} (this CPU has" in err
    assert ("9× slower" in err) is not native  # … with a warning where bf16 would be emulated


def test_auto_precision_is_resolved_in_the_run_config(synth_root, tmp_path, monkeypatch):
    from semiland.engine import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    result = fit(tiny_config(synth_root, train={"steps": 2, "val_every": 2, "precision": "auto"}), tmp_path / "r")
    assert load_config(tmp_path / "r" / "config.yaml").train.precision == "32-true"  # what ran, for a resume
    assert read_checkpoint(result.last_ckpt)["global_step"] == 2


def test_unknown_or_missing_logger_is_one_line(synth_root, tmp_path):
    import importlib.util

    from semiland.engine.runner import make_trainer

    with pytest.raises(SemilandError, match="unknown logger 'nope'"):
        make_trainer(tiny_config(synth_root, train={"loggers": ["nope"]}), tmp_path)
    if importlib.util.find_spec("mlflow") is None:  # not a dependency: asking for it must say so
        with pytest.raises(SemilandError, match="logger 'mlflow' needs a package"):
            make_trainer(tiny_config(synth_root, train={"loggers": ["mlflow"]}), tmp_path)


def test_train_deterministic_reaches_torch_and_the_next_run_sets_it_again(synth_root, tmp_path):
    """GPU runs are not reproducible without it (docs/benchmarks.md); torch's switch is process-wide, so every
    trainer sets it, and a run without it after one with it is not deterministic by accident."""
    from semiland.engine.runner import make_trainer

    try:
        make_trainer(tiny_config(synth_root, train={"deterministic": "warn"}), tmp_path)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        make_trainer(tiny_config(synth_root, train={"deterministic": False}), tmp_path)
        assert not torch.are_deterministic_algorithms_enabled()
        with pytest.raises(SemilandError, match="train.deterministic must be true, false or warn, got 'yes'"):
            make_trainer(tiny_config(synth_root, train={"deterministic": "yes"}), tmp_path)
        # strict mode on the CPU: no op of a warping method (grid_sample) refuses to run
        cfg = tiny_config(synth_root, method={"name": "s4net"}, train={"deterministic": True, "steps": 2})
        assert read_checkpoint(fit(cfg, tmp_path / "strict").last_ckpt)["global_step"] == 2
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if not m.unlabeled_masks and n != "dllr"])
def test_every_method_trains_from_fit_and_its_checkpoint_predicts(synth_root, tmp_path, name):
    """The engine side of the Method contract (self_training, which needs saved pseudo-labels, and dllr, which
    needs optical + SAR data, have their own: test_sweep.py, test_optical_sar.py)."""
    cfg = tiny_config(synth_root, method={"name": name}, train={"steps": 2, "val_every": 2})
    result = fit(cfg, tmp_path / "run")
    task, _ = load_task(result.best_ckpt)
    x = torch.randn(1, 3, 64, 64)
    assert task.predict_logits(x).shape == (1, 5, 64, 64)


def test_bench_train_speed_runs_both_loops_in_bf16(tmp_path):
    import json

    from semiland.cli import main

    out = tmp_path / "speed.json"
    args = ["bench", "train-speed", "--arch", "tiny_unet", "--batch", "2", "--size", "32", "--steps", "2"]
    assert main([*args, "--repeats", "1", "--precision", "bf16-mixed", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["plain_samples_per_s"] > 0 and r["engine_samples_per_s"] > 0 and "precision bf16-mixed" in r["setup"]


def test_bench_step_cost_times_every_method_against_supervised(tmp_path):
    """Rows of every sweep set: plain, explicit band groups, and the simulated-SAR test bed's (bands derived)."""
    import json

    from semiland.cli import main
    from semiland.paths import CONFIGS

    out = tmp_path / "cost.json"
    methods = "supervised,fixmatch,dllr=dllr:data.channels=[2,1] method.cps=false"  # a list value inside --methods
    methods += ",sim=dllr:data.simulate_sar=true,sar_only=supervised:data.simulate_sar=true data.modality=sar"
    args = ["bench", "step-cost", "--config", str(CONFIGS / "synthetic" / "demo.yaml"), "--methods", methods]
    assert (
        main([*args, "--steps", "1", "--repeats", "1", "--json", str(out), "model.arch=tiny_unet", "data.crop_size=32"])
        == 0
    )
    r = json.loads(out.read_text())
    assert list(r["seconds_per_step"]) == ["supervised", "fixmatch", "dllr", "sim", "sar_only"]
    assert r["vs_supervised"]["supervised"] == 1
    assert all(s > 0 for s in r["seconds_per_step"].values())


def test_adam_optimizers_use_the_fused_kernel_on_cpu():
    """One pass over the weights per step (a quarter of the Dubai sweep's supervised step on one CPU thread)."""
    import torch

    from semiland.config import OptimConfig
    from semiland.engine.task import make_optimizer
    from semiland.methods.base import ParamGroup

    params = [torch.nn.Parameter(torch.randn(4, 4))]
    for name in ("adam", "adamw"):
        assert make_optimizer(ParamGroup(params), OptimConfig(name=name)).defaults["fused"] is True


def test_progress_counts_training_steps_and_writes_plain_lines_to_a_log(synth_root, tmp_path, capfd):
    """Not a terminal (a log, CI, nohup): a plain line every tenth of the run on stderr, counted in training
    steps, with the loss and the validation mIoU — no bar redraws, no Lightning "Epoch" bars."""
    cfg = tiny_config(synth_root, train={"steps": 20, "val_every": 10, "progress": True})
    fit(cfg, tmp_path / "run")
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("training step ")]
    assert [line.split(" (")[0] for line in lines] == [f"training step {k}/20" for k in range(2, 21, 2)]
    assert "loss " in lines[0] and "val mIoU " in lines[-1] and "steps/s" in lines[0]
    assert "Epoch" not in err and "\r" not in err


def test_progress_bar_on_a_terminal_spans_the_run():
    from semiland.engine.progress import StepProgress

    class Module:
        train_step = 0

    class Trainer:
        callback_metrics = {"train/loss": torch.tensor(0.5)}

    progress, module = StepProgress(40, refresh=5, terminal=True), Module()
    progress.on_train_start(Trainer(), module)
    for step in range(1, 41):
        module.train_step = step
        progress.on_train_batch_end(Trainer(), module, None, None, step)
        assert progress.bar.n == step - step % 5 and progress.bar.total == 40
    progress.on_train_end(Trainer(), module)
    assert progress.bar is None


def test_a_runs_config_holds_absolute_paths(synth_root, tmp_path, monkeypatch):
    """Relative data paths are relative to where the run started: the run's config.yaml makes them absolute,
    so `test` and `predict` work from any folder."""
    import os

    import yaml

    monkeypatch.chdir(synth_root.parent)
    cfg = tiny_config(synth_root, train={"steps": 1, "val_every": 1})
    cfg.data.root = os.path.relpath(synth_root)
    fit(cfg, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["root"] == str(synth_root) and saved["data"]["split_file"] == str(
        tmp_path / "run" / "split.json"
    )
    monkeypatch.chdir(tmp_path)
    task, loaded = load_task(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert loaded.data.root == str(synth_root)
