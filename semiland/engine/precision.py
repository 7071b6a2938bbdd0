"""`train.precision`: `auto` picks bf16 autocast only where the hardware runs it natively.

bf16 autocast pays on GPUs with bf16 (Ampere and later) and on CPUs with bf16 instructions (AVX512-BF16,
AMX): 1.6–1.75× the float32 step on such a CPU (docs/benchmarks.md). On a CPU without them PyTorch falls
back to reference kernels: the sweep's training step took 6.7 s in bf16 against 0.72 s in float32 on an
AVX2-only CPU — nine times slower. So `auto` resolves to `bf16-mixed` or `32-true` and says which and why,
and an explicit `bf16-mixed` on such a CPU trains as asked, with a warning.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import torch

PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


@functools.cache
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has native bf16 instructions (Linux reports them in /proc/cpuinfo; elsewhere: no)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    return any(re.search(rf"\b{flag}\b", text) for flag in CPU_BF16_FLAGS)


def on_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(precision: str, accelerator: str) -> str:
    """The precision Lightning gets for `train.precision` on this machine (`auto` resolved; a slow explicit
    bf16 warned about once)."""
    gpu = on_gpu(accelerator)
    fast_bf16 = torch.cuda.is_bf16_supported() if gpu else cpu_has_bf16()
    if precision == "auto":
        chosen = "bf16-mixed" if fast_bf16 else "32-true"
        where = "this GPU" if gpu else "this CPU"
        _say(f"train.precision=auto: {chosen} ({where} {'has' if fast_bf16 else 'has no'} native bf16)")
        return chosen
    if precision == "bf16-mixed" and not fast_bf16:
        _say(
            "warning: train.precision=bf16-mixed on a "
            + ("GPU without bf16 support" if gpu else f"CPU without bf16 instructions ({' / '.join(CPU_BF16_FLAGS)})")
            + ": bf16 is emulated, up to ~9× slower than float32; use train.precision=auto or 32-true"
        )
    return precision


@functools.cache
def _say(line: str) -> None:  # once per process: every trainer of a sweep or a demo resolves the same way
    print(line, file=sys.stderr, flush=True)
