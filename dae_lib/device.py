"""Device and numeric-precision choices: CUDA when present, else CPU; bf16 autocast where supported."""
from __future__ import annotations

import contextlib
import logging
import platform

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
#: (``python -m dae_lib.studies.bench``; rows in results/benchmarks.csv). The one place the rule lives:
#: ``resolve_amp("auto")`` and ``fastest()`` read it, ``--amp`` / ``amp:`` still override it.
#:
#: - cpu with native bf16 (AMX / AVX512-BF16): bf16 autocast + channels-last. 2 cores, DAE + MS-SSIM,
#:   512 px: 5.30 img/s against 3.07 fp32 channels-last and 0.92 naive (x5.7; commit e3fc3c0).
#: - cpu without native bf16: float32 (emulated bf16 is slower than fp32), channels-last.
#: - cuda: float32 + channels-last. One H200, torch 2.11 + cu130, DAE + MS-SSIM at 512 px, batch 8
#:   (the paper profile's), each configuration >= 1 s (commit b6f76cb): naive 229 img/s,
#:   + separable MS-SSIM 280, + channels-last 543 (fp32), + bf16 510, "optimized" (this rule, the
#:   same fp32 channels-last step measured again) 501, + fused Adam 520, + torch.compile of the
#:   model 457. fp32 channels-last, bf16 and fused Adam are within the run-to-run spread (the two
#:   measurements of the same fp32 step differ by 8 %); bf16 never wins, compile of the model
#:   loses, so the simplest of the fastest stays. The step is launch-bound there (at batch 4, 256 px
#:   ran at the img/s of 512 px, commit 9bce33d): x2.2-2.4 over naive, not x3.
#: - inference batch: on a CPU one image at a time is fastest per image (released model at 512 px:
#:   93 ms at batch 1 against 139 ms at batch 8; the paper's DAE 30.6 against 43.3 ms: larger
#:   batches spill the caches). On the H200 batches of 8 (0.51 ms/image naive against 1.61 at
#:   batch 1); channels-last and bf16 change inference there by less than the spread (commit b6f76cb).
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
