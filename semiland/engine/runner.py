"""Fit, test and load: the glue between a config, the data layer, a Method and Lightning.

Run folder layout:
    config.yaml        resolved config (band statistics filled in)      split.json   the split used
    checkpoints/       best.ckpt (val mIoU), last.ckpt                  logs/        metrics.csv
    test/              metrics.json, confusion_matrix.png               report.html + figures/
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from semiland import console
from semiland.config import Config, merge, parse_overrides
from semiland.data.classes import ClassTable
from semiland.data.datamodule import SegDataModule
from semiland.data.preflight import preflight, summary
from semiland.data.prepare import PreparedData, prepare_data
from semiland.data.sources import DatasetSpec
from semiland.data.splits import SETS, Split
from semiland.engine.checkpoint import AtomicCheckpointIO, read_checkpoint
from semiland.engine.precision import resolve_precision
from semiland.engine.pretrain import check_pretrainable, pretrain_encoder
from semiland.engine.progress import StepProgress
from semiland.engine.run_config import config_from_dict
from semiland.engine.run_folder import RunFolder
from semiland.engine.task import SegTask
from semiland.errors import Interrupted, SemilandError
from semiland.io import atomic_write_json, atomic_write_text, remove_stale_temporaries
from semiland.methods import build_method
from semiland.methods.base import MethodContext
from semiland.models import MODELS, build_model, check_model_keys
from semiland.models.factory import SMP_ARCHS

LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")


def quiet_lightning() -> None:
    """Keep the terminal for our progress bar and tables (Lightning's tips stay in the logs), unless -v."""
    if console.verbosity() >= console.VERBOSE:
        return
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in (
        ".*does not have many workers.*",
        ".*LeafSpec.*",
        ".*sampler.*",
        ".*smaller than the logging interval.*",
        ".*no `val_dataloader`.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def is_rank_zero() -> bool:
    return rank_zero_only.rank == 0


def build_task(cfg: Config, classes: ClassTable, mean: list[float], std: list[float]) -> SegTask:
    def new_model(in_channels: int = len(mean), num_classes: int = classes.num_classes) -> nn.Module:
        return build_model(cfg.model, in_channels, num_classes)

    model = new_model()
    channels = list(cfg.data.channels or [len(mean)])
    ctx = MethodContext(
        classes.num_classes, len(mean), classes.ignore_index, cfg.train.steps, new_model, channels, list(classes.names)
    )
    method = build_method(cfg.method, model, ctx)
    return SegTask(method, cfg, classes, mean, std, MODELS[cfg.model.arch].min_size)


class AppendingCSVLogger(L.pytorch.loggers.CSVLogger):
    """Lightning's CSV logger deletes an existing metrics.csv when it starts; a resumed run must keep the
    rows of the steps before the interruption, so this one appends under the existing header."""

    @property
    def experiment(self):  # noqa: D102 - same contract as CSVLogger.experiment
        if self._experiment is None:
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class _AppendingWriter(L.pytorch.loggers.csv_logs.ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))


def _loggers(cfg: Config, run_dir: Path) -> list[Any]:
    out = []
    for name in cfg.train.loggers:
        if name == "csv":
            out.append(AppendingCSVLogger(run_dir, name="", version="logs"))
        elif name in LOGGERS:
            cls = {"tensorboard": "TensorBoardLogger", "mlflow": "MLFlowLogger", "wandb": "WandbLogger"}[name]
            try:
                out.append(getattr(L.pytorch.loggers, cls)(save_dir=str(run_dir)))
            except (ImportError, ModuleNotFoundError) as err:
                raise SemilandError(f"logger '{name}' needs a package that is not installed ({err})") from None
        else:
            raise SemilandError(f"unknown logger '{name}' in train.loggers; use {', '.join(LOGGERS)}")
    return out


class RunCheckpoint(ModelCheckpoint):
    """Lightning's checkpoint callback, whose saved state names absolute paths: a run folder that was moved (or
    swapped in by --overwrite) resumes with its best score kept, its paths rebased onto where the run is now
    (Lightning would drop the score and let the next validation replace best.ckpt whatever its value)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        was = state_dict.get("dirpath")
        if was and self.dirpath and was != self.dirpath:

            def moved(p: Any) -> Any:
                return os.path.join(self.dirpath, os.path.basename(p)) if isinstance(p, str) and p else p

            keys = ("best_model_path", "kth_best_model_path", "last_model_path")
            state_dict = {**state_dict, "dirpath": self.dirpath, **{k: moved(state_dict.get(k)) for k in keys}}
            state_dict["best_k_models"] = {moved(k): v for k, v in (state_dict.get("best_k_models") or {}).items()}
        super().load_state_dict(state_dict)


CLUSTER_ENV = ("MASTER_ADDR", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID", "LSB_JOBID", "OMPI_COMM_WORLD_SIZE")


def make_trainer(
    cfg: Config, run_dir: Path | None, n_optimizers: int = 1, for_eval: bool = False, stage: str = "training"
) -> L.Trainer:
    """Lightning's trainer for `cfg.train` (checkpoints and loggers into `run_dir` when given); `stage` labels the
    progress bar."""
    t = cfg.train
    if t.num_nodes > 1 and not for_eval and not any(k in os.environ for k in CLUSTER_ENV):
        # otherwise this node would wait (30 min) for others that nobody started
        raise SemilandError(
            f"train.num_nodes={t.num_nodes} but no cluster launcher was found (torchrun, SLURM, LSF, MPI or "
            "MASTER_ADDR): start the command on every node with one of them, or set train.num_nodes=1"
        )
    if t.deterministic not in (True, False, "warn"):
        raise SemilandError(f"train.deterministic must be true, false or warn, got {t.deterministic!r}")
    strategy = t.strategy
    if strategy == "auto" and (t.devices not in (1, "1", [0]) or t.num_nodes > 1) and t.devices != "auto":
        strategy = "ddp"  # several devices: one process per device (DDP), as Lightning recommends
    callbacks: list[Any] = []
    if t.progress and not for_eval:
        callbacks.append(StepProgress(t.steps, refresh=max(1, t.log_every // 2), stage=stage))
    if not for_eval and run_dir is not None:
        # Two callbacks: Lightning's save_last only refreshes last.ckpt when best.ckpt improves, and resuming
        # from there would redo (and a finished run would end on) a stale state. last.ckpt: every validation.
        ckpt_dir = RunFolder(run_dir).checkpoints
        common = {
            "dirpath": ckpt_dir,
            "save_top_k": 1,
            "auto_insert_metric_name": False,
            "enable_version_counter": False,
        }
        callbacks.append(RunCheckpoint(filename="best", monitor="val/mIoU", mode="max", **common))
        callbacks.append(RunCheckpoint(filename="last", monitor=None, **common))
    try:
        return L.Trainer(
            accelerator=t.accelerator,
            devices=t.devices if not for_eval else 1,
            num_nodes=t.num_nodes if not for_eval else 1,
            strategy=strategy if not for_eval else "auto",
            precision=resolve_precision(t.precision, t.accelerator),
            max_steps=t.steps * n_optimizers,
            max_epochs=-1,
            check_val_every_n_epoch=1,
            num_sanity_val_steps=0,
            logger=_loggers(cfg, run_dir) if (run_dir is not None and not for_eval) else False,
            log_every_n_steps=t.log_every,
            callbacks=callbacks,
            enable_progress_bar=False,  # StepProgress: steps of the run, not Lightning's epochs
            enable_checkpointing=not for_eval and run_dir is not None,
            enable_model_summary=False,
            use_distributed_sampler=False,
            plugins=[AtomicCheckpointIO()],
            deterministic=t.deterministic,  # always given: a process's earlier run may have switched it on
            default_root_dir=run_dir,
        )
    except (ValueError, RuntimeError, TypeError, MisconfigurationException) as err:  # accelerator / devices / precision
        raise SemilandError(f"cannot set up training: {str(err).splitlines()[0]}") from None


@dataclass
class FitResult:
    run_dir: Path
    best_ckpt: Path
    last_ckpt: Path
    data: PreparedData
    task: SegTask


@dataclass
class FitPlan:
    """A run checked before anything is written: its config (resolved), data, split and network, and the folder
    it will be found in (`run_fit` may write it elsewhere first: --overwrite's staging folder)."""

    cfg: Config
    data: PreparedData
    task: SegTask
    resume: bool
    run_dir: Path


def absolute_paths(cfg: Config) -> None:
    """The config's file and folder paths made absolute (relative ones are relative to where the run started);
    empty ones stay empty (a preset's default location)."""
    d = cfg.data
    for obj, key in ((d, "root"), (d, "split_file"), (d, "pseudo_labels"), (cfg.model, "weights_path")):
        if getattr(obj, key):
            setattr(obj, key, str(Path(getattr(obj, key)).absolute()))
    d.unlabeled_dirs = [str(Path(p).absolute()) for p in d.unlabeled_dirs]


def plan_fit(cfg: Config, run_dir: Path, resume: bool = False) -> FitPlan:
    """Every check a run can fail before training (config, data, masks, split, the method's needs, the network a
    resumed checkpoint holds), writing nothing: a refused run leaves no trace. `run_dir` is the run's final
    folder (its split.json is what a resumed run reads back)."""
    quiet_lightning()
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    absolute_paths(cfg)  # the run's config.yaml then works from any folder (`test`, `predict`, a resume)
    cfg.train.val_every = max(1, min(cfg.train.val_every, cfg.train.steps))
    # the run's config.yaml records what ran (auto resolved): a resume elsewhere keeps the same numerics
    cfg.train.precision = resolve_precision(cfg.train.precision, cfg.train.accelerator)
    data = prepare_data(cfg)
    cfg.data.mean, cfg.data.std, cfg.data.channels = data.mean, data.std, data.channels
    if cfg.data.split_mode != "file":  # a resumed run reads the same split back
        cfg.data.split_mode, cfg.data.split_file = "file", str(RunFolder(run_dir).split)
    last = RunFolder(run_dir).last
    if resume and not last.is_file():  # stopped before its first checkpoint: nothing was lost but time
        print(f"no checkpoint in {last.parent} yet: training this run from step 0", file=sys.stderr)
        resume = False
    check_model_keys(cfg.model)  # a run's key that its architecture never reads is refused, not ignored
    task = build_task(cfg, data.spec.classes, data.mean, data.std)
    if task.method.uses_unlabeled and not data.split.unlabeled:
        raise SemilandError(
            f"method {task.method.name} learns from unlabeled images but the split has none; set data.unlabeled "
            "(or use method.name=supervised)"
        )
    if task.method.unlabeled_masks and not cfg.data.pseudo_labels:
        raise SemilandError(
            f"method {task.method.name} learns from saved pseudo-labels: run `semiland self-train --config FILE` "
            "(or set data.pseudo_labels to a folder of them)"
        )
    _check_devices_have_images(cfg, data)
    _check_batch_of_one(cfg, task)
    check_pretrainable(cfg, task.method.model)
    if resume:  # before the run folder is touched: a refused resume leaves the run as it was
        check_resumable(task, read_checkpoint(last), last)
    check = preflight(data, cfg.data.bands, progress=cfg.train.progress and is_rank_zero())
    if is_rank_zero():
        m = cfg.model
        console.info("\n".join([
            *summary(data, check),
            f"run: method {task.method.name}, model {m.arch}"
            + (f"/{m.encoder}" if m.arch in SMP_ARCHS else "")
            + f", {cfg.train.steps} steps, crops {cfg.data.crop_size}, batch {cfg.data.batch_size}"
            + (f" + {cfg.data.unlabeled_batch_size} unlabeled" if task.method.uses_unlabeled else "")
            + f", precision {cfg.train.precision}, {cfg.train.accelerator}",
        ]))  # fmt: skip
    return FitPlan(cfg, data, task, resume, run_dir)


def _check_devices_have_images(cfg: Config, data: PreparedData) -> None:
    """DDP validates each process on its share of the validation images: every process needs one."""
    devices = cfg.train.devices
    n = len(devices) if isinstance(devices, list) else devices if isinstance(devices, int) else 1
    n *= max(1, cfg.train.num_nodes)
    if n > 1 and len(data.split.val) < n:
        raise SemilandError(
            f"train.devices={devices} starts {n} processes but the split has {len(data.split.val)} validation "
            f"image(s): each process validates on its own share; use at most {max(1, len(data.split.val))} "
            "devices or more validation images (data.val)"
        )


def _check_batch_of_one(cfg: Config, task: SegTask) -> None:
    """A batch of one crop gives batch norm after a global pooling (DeepLabV3+'s image pooling, PSPNet's
    pyramid) one value per channel, which training cannot normalise: one forward pass of a copy finds out."""
    sizes = [cfg.data.batch_size, *([cfg.data.unlabeled_batch_size] if task.method.uses_unlabeled else [])]
    model = task.method.model
    if min(sizes) > 1 or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    side = max(cfg.data.crop_size, task.min_size)
    try:
        with torch.no_grad():
            copy.deepcopy(model).train()(torch.zeros(1, len(task.mean), side, side))
    except ValueError as err:
        if "Expected more than 1 value per channel" not in str(err):
            raise
        which = "data.batch_size" if cfg.data.batch_size == 1 else "data.unlabeled_batch_size"
        raise SemilandError(
            f"{which}=1: model.arch={cfg.model.arch} has batch norm after a global pooling, which cannot train "
            f"on one crop at a time; set {which}=2 or more"
        ) from None


def run_fit(plan: FitPlan, run_dir: Path) -> FitResult:
    """Train a checked plan into `run_dir` (or continue it from checkpoints/last.ckpt when it resumes)."""
    cfg, data, task = plan.cfg, plan.data, plan.task
    run = RunFolder(run_dir)
    last = run.last
    if is_rank_zero() and run.checkpoints.is_dir():  # the run's own folder: only this process writes it
        for stale in run.checkpoints.glob(".*.tmp"):  # a checkpoint write cut off by a kill
            stale.unlink(missing_ok=True)
        remove_stale_temporaries(run_dir, recursive=True)  # config, logs, figures of a killed process
    if plan.resume:
        # expected on a resume: the checkpoint folder holds the run's checkpoints, and the first save after the
        # restored step comes before any validation (best.ckpt keeps its restored score)
        for pattern in (".*exists and is not empty.*", ".*could not find the monitored key.*"):
            warnings.filterwarnings("ignore", message=pattern)
    if cfg.train.pretrain_steps and not plan.resume:  # a resumed run's checkpoint holds the pretrained weights
        task = _pretrained(plan, run)
    if is_rank_zero():
        data.split.save(run.split)
        atomic_write_text(run.config, cfg.to_yaml())
    datamodule = SegDataModule(cfg, data, task.method.uses_unlabeled)
    trainer = make_trainer(cfg, run_dir, task.n_optimizers)
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=str(last) if plan.resume else None, weights_only=True)
    except SystemExit:  # Lightning turns Ctrl-C / SIGTERM into exit(1) after its clean-up: say where things are
        if not trainer.interrupted:
            raise
        raise RunInterrupted(_where_to_resume(run_dir, last)) from None
    return FitResult(run_dir, run.best if run.best.is_file() else last, last, data, task)


def _pretrained(plan: FitPlan, run: RunFolder) -> SegTask:
    """Self-supervised pretraining of the encoder (engine/pretrain.py) into `run`, then the run's task built anew
    with every network starting from it; `model.weights_path` names the file where the run will lie (its
    config.yaml, written after this: a run stopped while pretraining leaves no config naming a missing file).
    A run whose config already names its own finished file (stopped before its first checkpoint) reuses it."""
    cfg, data, written = plan.cfg, plan.data, run.pretrained_encoder
    if cfg.model.weights_path and Path(cfg.model.weights_path) == written and written.is_file():
        return plan.task
    steps = cfg.train.pretrain_steps
    trainer = make_trainer(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps)), None,
                           stage="pretraining")  # fmt: skip
    try:
        pretrain_encoder(cfg, data, written, trainer)
    except SystemExit:  # Ctrl-C / SIGTERM (Lightning's exit after its clean-up)
        if not trainer.interrupted:
            raise
        raise RunInterrupted(
            "stopped while pretraining the encoder (train.pretrain_steps): nothing to resume"
        ) from None
    cfg.model.weights_path = str(written)
    task = build_task(cfg, data.spec.classes, data.mean, data.std)
    cfg.model.weights_path = str(RunFolder(plan.run_dir).pretrained_encoder)
    return task


class RunInterrupted(Interrupted):
    """Training stopped by Ctrl-C or SIGTERM; the message says where the last checkpoint is."""


def _where_to_resume(run_dir: Path, last: Path) -> str:
    if not last.is_file():
        return f"no checkpoint was written yet (the first comes after train.val_every steps) in {run_dir}"
    step = read_checkpoint(last).get("global_step", "?")
    return f"the last checkpoint is {last} (step {step}); resume with: semiland fit --resume {run_dir}"


def fit(cfg: Config, run_dir: Path, resume: bool = False) -> FitResult:
    """Check and train `cfg` into `run_dir` (or continue it from checkpoints/last.ckpt when `resume`)."""
    return run_fit(plan_fit(cfg, run_dir, resume), run_dir)


def check_resumable(task: SegTask, ckpt: dict[str, Any], path: Path) -> None:
    """Refuse, in one line, to continue a checkpoint with a network it does not fit (another method, model,
    band count or class table given as overrides to `fit --resume`)."""
    meta = ckpt["semiland"]
    was = {"method": meta["method"], "bands": meta["in_channels"], "classes": meta["classes"]["names"]}
    now = {"method": task.method.name, "bands": len(task.mean), "classes": list(task.classes.names)}
    for key in ("bands", "sar_bands", "modality"):  # band selection: the saved statistics would not fit
        was[f"data.{key}"], now[f"data.{key}"] = meta["config"]["data"].get(key), getattr(task.cfg.data, key)
    changed = [f"{k} {was[k]} → {now[k]}" for k in was if was[k] != now[k]]
    try:
        task.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        changed = changed or [str(err).splitlines()[1].strip()[:160]]  # e.g. a model width: the first mismatch
    if changed:
        raise SemilandError(
            f"cannot resume from {path}: it was trained with another network ({'; '.join(changed)}); resume "
            "without overriding the method, model, bands or classes, or start a new run with fit --config"
        )


def load_task(ckpt_path: str | Path, overrides: list[str] | None = None) -> tuple[SegTask, Config]:
    """A trained task from a checkpoint; `overrides` may move the data (data.root=…) or change eval keys."""
    ckpt = read_checkpoint(ckpt_path)
    meta = ckpt["semiland"]
    raw = merge(meta["config"], parse_overrides(overrides or []))
    if isinstance(raw.get("model"), dict):  # (a damaged one is named by config_from_dict)
        raw["model"] = {**raw["model"], "encoder_weights": None, "weights_path": ""}  # weights come from the file
    cfg = config_from_dict(raw, saved=True)
    try:
        classes = ClassTable.from_dict(meta["classes"])
    except (KeyError, TypeError, ValueError) as err:
        raise SemilandError(
            f"checkpoint {ckpt_path} has a damaged class table ({err!r}); use another checkpoint"
        ) from None
    task = build_task(cfg, classes, cfg.data.mean, cfg.data.std)
    state = {k[len("method.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("method.")}
    try:
        task.method.load_state_dict(state)
    except RuntimeError as err:
        first = " ".join(line.strip() for line in str(err).splitlines()[:2])[:240]  # "Error(s) …:" + the first one
        raise SemilandError(f"checkpoint {ckpt_path} does not fit its own config: {first}") from None
    task.eval()
    return task, cfg


# Keys that define which images are labeled / evaluated: a trained run reads its split.json instead, so
# giving them to `test` would be silently ignored; `--on` chooses what to evaluate.
SPLIT_KEYS = ("labeled", "unlabeled", "val", "test", "split_mode", "labeled_count", "split_seed", "oracle",
              "transductive", "unlabeled_share")  # fmt: skip


def evaluation_images(spec: DatasetSpec, split: Split, on: str) -> list[str]:
    """The image ids `on` names: a set of the run's split (test, val, labeled, or unlabeled: those of its
    unlabeled images that have a mask on disk, e.g. to measure how good pseudo-labels can be), or regions
    "R1,R2" of the dataset (every image of theirs with a mask)."""
    refs = spec.by_id()
    if on in SETS:
        ids = [i for i in getattr(split, on) if refs[i].mask is not None]
    else:
        names = [r.strip() for r in on.split(",") if r.strip()]
        unknown = [r for r in names if r not in spec.regions]
        if unknown or not names:
            raise SemilandError(
                f"--on {on!r}: not a split set ({', '.join(SETS)}) nor regions of the dataset "
                f"({', '.join(spec.regions)})"
            )
        ids = [s.id for s in spec.samples if s.region in names and s.mask is not None]
    if not ids:
        raise SemilandError(f"--on {on}: no image with a mask to evaluate there")
    return ids


def evaluate_checkpoint(
    ckpt_path: str | Path, out_dir: Path, overrides: list[str] | None = None, on: str = "test"
) -> tuple[dict[str, Any], SegTask]:
    """Evaluate a checkpoint on its split's test images (or `on`: see `evaluation_images`); writes metrics.json
    (the caller draws: `report.run_report.test_run`) and returns the metrics and the loaded task."""
    quiet_lightning()
    given = parse_overrides(overrides or []).get("data", {})
    if isinstance(given, dict) and (keys := [k for k in SPLIT_KEYS if k in given]):
        raise SemilandError(
            f"data.{keys[0]} cannot change a trained run's split (it is read from its split.json); choose the "
            "images to evaluate with --on test|val|unlabeled|REGION[,REGION…]"
        )
    task, cfg = load_task(ckpt_path, overrides)
    run_split = RunFolder(Path(ckpt_path).resolve().parent.parent).split
    moved = "split_file" not in given and not Path(cfg.data.split_file).is_file()
    if cfg.data.split_mode == "file" and moved and run_split.is_file():
        cfg.data.split_file = str(run_split)  # the run folder was moved: its own split.json, the same file
    data = prepare_data(cfg)
    if data.spec.classes.names != task.classes.names:
        raise SemilandError(
            f"the data's classes {list(data.spec.classes.names)} differ from the checkpoint's {list(task.classes.names)}"
        )
    if on != "test":
        test_ids = evaluation_images(data.spec, data.split, on)
        data = dataclasses.replace(data, split=dataclasses.replace(data.split, test=test_ids))
    trainer = make_trainer(
        dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, progress=False)), None, for_eval=True
    )
    trainer.test(task, datamodule=SegDataModule(cfg, data, False), verbose=False)
    metrics = task.test_metrics
    assert metrics is not None
    metrics["checkpoint"] = str(ckpt_path)
    metrics["test_images"] = data.split.test
    metrics["evaluated_on"] = on
    if is_rank_zero():
        atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics, task


def device_for_inference() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def env_is_child_process() -> bool:
    """True in every process but the first of a DDP run: the workers Lightning's launcher starts (they re-run the
    same command) and the other ranks a cluster launcher (torchrun, SLURM) starts on this node or another."""
    ranks = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")
    return any(os.environ.get(k, "0") != "0" for k in ranks)
