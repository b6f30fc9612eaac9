"""Device and numeric-precision choices: CUDA when present, else CPU; bf16 autocast where supported."""
from __future__ import annotations

import contextlib
import logging
import platform

import torch

from .errors import ConfigError, DeviceError

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """"auto": the first CUDA device if there is one, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"device {name!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but torch sees no CUDA device")
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


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` ("auto" | "bf16" | "off"), or None for fp32.

    "auto" takes bf16 only where the hardware supports it natively (emulated bf16 on an old CPU is
    slower than fp32); "bf16" insists and fails loudly where it is not supported.
    """
    if amp == "off":
        return None
    ok = bf16_supported(device)
    if amp == "bf16" and not ok:
        raise DeviceError(f"bf16 autocast requested but {device} does not support it natively")
    if amp not in ("auto", "bf16"):
        raise ConfigError(f"amp must be auto, bf16 or off, not {amp!r}")
    return torch.bfloat16 if ok else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
