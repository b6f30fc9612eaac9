"""Device and numeric-precision choices: CUDA when present, else CPU; bf16 autocast where supported.

And durations on it, one rule for all of them: measured on the monotonic clock (``time.perf_counter``,
which neither a clock change nor a slow machine can make negative), and written with enough digits
that a real duration is never written as 0 (a 128 px image is suppressed in a few milliseconds).

    t0 = time.perf_counter()
    ...
    row["seconds"] = report_seconds(since(t0))     # 0.004213 in a CSV
    print(f"done in {shown_seconds(since(t0))}")   # "4.2 ms" on screen
"""
from __future__ import annotations

import contextlib
import logging
import platform
import time

import torch

from .config import AMP_MODES, check_choice
from .errors import ConfigError, DeviceError

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """"auto": the first CUDA device if there is one, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ConfigError(f"device {name!r}: {e}") from None
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {name!r}: this project runs on cpu or cuda (the devices it is tested on), not {dev.type}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but torch sees no CUDA device")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return dev


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


#: The fastest training / inference configuration per device type, as the benchmark measured it
#: (``python -m dae_lib.studies.bench``; every measurement, with its machine and commit, in
#: results/benchmarks.csv; docs/speed.md summarises them). The one place the rule lives:
#: ``resolve_amp("auto")`` and ``fastest()`` read it, ``--amp`` / ``amp:`` still override it.
#: - cpu: bf16 autocast + channels-last where bf16 is native (x5.7 over a naive loop at 512 px on
#:   2 cores), else float32 (emulated bf16 is slower); inference one image at a time (larger
#:   batches spill the caches).
#: - cuda: float32 + channels-last (bf16, fused Adam and torch.compile within the spread or slower
#:   on an H200); inference in batches of 8.
FASTEST = {
    "cpu": {"amp": "bf16", "channels_last": True, "infer_batch": 1},
    "cuda": {"amp": "off", "channels_last": True, "infer_batch": 8},
}


def fastest(device: torch.device) -> dict:
    """The configuration FASTEST gives ``device``: {"amp": "bf16" | "off", "channels_last": bool,
    "infer_batch": int}; bf16 only where it runs natively."""
    conf = dict(FASTEST.get(device.type, {"amp": "off", "channels_last": True, "infer_batch": 8}))
    if conf["amp"] == "bf16" and not bf16_supported(device):
        conf["amp"] = "off"
    return conf


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` ("auto" | "bf16" | "off"), or None for fp32.

    "auto" takes the device's fastest configuration (``FASTEST``: bf16 on a CPU that runs it
    natively, fp32 on CUDA); "bf16" insists and fails loudly where it is not supported.
    """
    check_choice("amp", amp, AMP_MODES)
    if amp == "auto":
        amp = fastest(device)["amp"]
    if amp == "off":
        return None
    if not bf16_supported(device):
        raise DeviceError(f"bf16 autocast requested but {device} does not support it natively")
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


#: Decimal places of a duration in a report (CSV): microseconds, far below any real step.
REPORT_DIGITS = 6


def since(t0: float) -> float:
    """Seconds on the monotonic clock since ``t0`` (a ``time.perf_counter()`` reading)."""
    return time.perf_counter() - t0


def report_seconds(seconds: float) -> float:
    """A duration as a report stores it: seconds to the microsecond (REPORT_DIGITS)."""
    return round(float(seconds), REPORT_DIGITS)


def shown_seconds(seconds: float) -> str:
    """A duration for a person: "12 s", "1.3 s" or "4.2 ms" (never "0.0 s" for a real one)."""
    if seconds >= 10:
        return f"{seconds:.0f} s"
    if seconds >= 0.1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1000:.2g} ms"
