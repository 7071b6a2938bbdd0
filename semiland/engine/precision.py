"""`train.precision`: `auto` picks bf16 autocast only where the hardware runs it natively.

bf16 autocast pays on GPUs with bf16 (Ampere and later) and on CPUs with bf16 instructions (AVX512-BF16,
AMX): 1.6–1.75× the float32 step on such a CPU (docs/benchmarks.md). On a CPU without them PyTorch falls
back to reference kernels: the sweep's training step took 6.7 s in bf16 against 0.72 s in float32 on an
AVX2-only CPU — nine times slower. So `auto` resolves to `bf16-mixed` or `32-true` and says which and why,
and an explicit `bf16-mixed` on such a CPU trains as asked, with a warning.
"""

from __future__ import annotations

import functools
import platform
import re
import sys
from pathlib import Path

import torch

from semiland.version import __version__

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


@functools.cache
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has native bf16 instructions (Linux reports them in /proc/cpuinfo; elsewhere: no)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    return any(re.search(rf"\b{flag}\b", text) for flag in CPU_BF16_FLAGS)


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name and whether it runs bf16 natively (benchmarks name the machine they ran on)."""
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path(cpuinfo).read_text(), re.MULTILINE)
    except OSError:
        found = None
    return f"{found.group(1).strip() if found else 'CPU'} ({'' if cpu_has_bf16(cpuinfo) else 'no '}native bf16)"


def on_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def device_name(accelerator: str) -> str:
    """Where a run trains, as a benchmark row names it: `cuda: <GPU>` or `cpu: <CPU> (… native bf16)`."""
    return f"cuda: {torch.cuda.get_device_name(0)}" if on_gpu(accelerator) else f"cpu: {cpu_name()}"


def strict_float32() -> None:
    """float32 that is float32 on a GPU too: PyTorch runs float32 convolutions in TF32 (10-bit mantissa) by
    default on Ampere and later. Benchmarks whose cells may run on a CPU or a GPU call this, so that
    `32-true` means the same arithmetic on both."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def native_bf16(gpu: bool) -> bool:
    return torch.cuda.is_bf16_supported() if gpu else cpu_has_bf16()


def warn_if_emulated(setting: str, gpu: bool) -> None:
    """Warn once that `setting` (bf16 asked for explicitly) will run emulated, hence slowly, here."""
    if not native_bf16(gpu):
        where = "GPU without bf16 support" if gpu else f"CPU without bf16 instructions ({' / '.join(CPU_BF16_FLAGS)})"
        _say(f"warning: {setting} on a {where}: bf16 is emulated, up to ~9× slower than float32")


def resolve_precision(precision: str, accelerator: str) -> str:
    """The precision Lightning gets for `train.precision` on this machine (`auto` resolved; a slow explicit
    bf16 warned about once)."""
    gpu = on_gpu(accelerator)
    if precision == "auto":
        chosen = "bf16-mixed" if native_bf16(gpu) else "32-true"
        where = "this GPU" if gpu else "this CPU"
        _say(f"train.precision=auto: {chosen} ({where} {'has' if chosen == 'bf16-mixed' else 'has no'} native bf16)")
        return chosen
    if precision in ("16-mixed", "16") and not gpu:
        # float16 autocast does not run on CPUs: Lightning would train bf16 and the run would record "16-mixed"
        _say(f"train.precision={precision}: float16 autocast does not run on a CPU; training in bf16-mixed instead "
             "(recorded in the run's config.yaml)")  # fmt: skip
        precision = "bf16-mixed"
    if precision == "bf16-mixed":
        warn_if_emulated("train.precision=bf16-mixed (use auto or 32-true)", gpu)
    return precision


@functools.cache
def _say(line: str) -> None:  # once per process: every trainer of a sweep or a demo resolves the same way
    print(line, file=sys.stderr, flush=True)


def machine() -> str:
    """This machine in one line (architecture, OS, GPU or CPU and threads, torch and semiland versions), as
    benchmark and run reports record where their figures were measured."""
    threads = torch.get_num_threads()
    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"{cpu_name()}, {threads} thread{'s' if threads != 1 else ''}"
    )
    return f"{platform.machine()} {platform.system()}, {device}, torch {torch.__version__}, semiland {__version__}"
