"""Inference: trained models out of run folders, and soft-tissue estimates for radiographs.

The one path for everything that uses a trained model: evaluation and Table 1, the figures, the
benchmark and the command for users' own radiographs. It does not import the training code.

    model = load_model(run_dir)            # the run's architecture and weights, eval mode
    s_hat = predict(model, x)              # x: (N, 1, H, W) in clinical polarity, [0, 1]

A run folder holds what inference needs, in files code reads:

- ``config.json``: the run's ``Config`` (variant, so family and architecture, image size, ...);
- ``data.json``: the data the run learnt from, as inference must prepare new images: the image
  size and how the training files were stored (polarity, and whether that was detected or set);
- ``best.safetensors`` / ``last.safetensors``: float32 weights (no pickle, so no code in them).
"""
from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from pathlib import Path

import torch

from .config import FINGERPRINT_ADDED_LATER, Config, config_from_file, fingerprint, read_record
from .device import autocast, fastest, resolve_amp
from .errors import RunDirError, WeightsError
from .models import build_model

RUN_DATA_FILE = "data.json"
#: Released models live inside the package (so they install with it), one folder each, laid out as
#: a run folder plus model_card.md / model_card.json (see release.py).
RELEASED_DIR = Path(__file__).parent / "released"
#: The release the suppression command and ``load_released()`` use by default: the improved
#: variant with the best validation PSNR at the quick profile on BSE-JSRT (R-AE + MS-SSIM 43.75 dB,
#: R-DAE + MS-SSIM 43.70, R-DAE 43.42, R-AE 43.31; identity 37.95), trained at 512 px by release.py.
DEFAULT_RELEASE = "r_ae_msssim-bse-jsrt-512"


def config_from_run(run_dir: str | Path) -> Config:
    """The configuration a run was trained with (its config.json); a RunDirError naming the file
    when it is damaged (not JSON, another shape, unknown keys, values the Config refuses)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunDirError(f"{run_dir}: not a run folder (no config.json)")
    return config_from_file(path)


def run_data_record(data) -> dict:
    """What ``data.json`` holds for the training data ``data`` (a ``PairedImages``)."""
    pol = data.polarity
    return {
        "image_size": int(data.size),
        "stored_polarity": pol.stored if pol else "clinical",
        "polarity": dataclasses.asdict(pol) if pol else None,
        "source": data.source,
        "n_cases": len(data),
    }


def run_data(run_dir: str | Path) -> dict:
    """A run's ``data.json``: image_size, stored_polarity ("clinical" | "inverted"), polarity (how it
    was decided), source, n_cases."""
    path = Path(run_dir) / RUN_DATA_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: no {RUN_DATA_FILE} (a run from before it was recorded: see its provenance.json)")
    return read_record(path)


def load_weights(model: torch.nn.Module, path: str | Path, what: str = "") -> torch.nn.Module:
    """Load safetensors weights into ``model``; a WeightsError, not a traceback, when the file is
    missing or damaged or holds weights of another architecture."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: cannot read weights ({e})") from None
    return load_state(model, state, path, what)


def load_state(model: torch.nn.Module, state: dict, source, what: str = "") -> torch.nn.Module:
    """Load a state dict read from ``source`` into ``model``; a WeightsError naming the keys when it
    holds weights of another architecture."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    resized = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or resized:
        detail = "; ".join(
            f"{name} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes", resized))
            if keys
        )
        raise WeightsError(f"{source}: these weights do not fit {what or type(model).__name__} ({detail}); trained for another architecture or variant?")
    model.load_state_dict(state)
    return model


METADATA_KEY = "dae_lib.fingerprint"


def weights_metadata(cfg: Config) -> dict[str, str]:
    """What a weights file records about itself (safetensors metadata): config.fingerprint."""
    return {METADATA_KEY: json.dumps(fingerprint(cfg), sort_keys=True)}


def check_fingerprint(path: str | Path, cfg: Config) -> None:
    """A WeightsError when the weights at ``path`` record another architecture, loss or image size than ``cfg``
    (for example config.json edited from ae to ae_msssim). Files without the record (made before
    it, or elsewhere) are not checked, nor records on the fields added to the fingerprint after
    them (config.FINGERPRINT_ADDED_LATER) when they lack those."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        recorded = (f.metadata() or {}).get(METADATA_KEY)
    if recorded is None:
        return
    try:
        was = json.loads(recorded)
    except ValueError:
        was = None
    if not isinstance(was, dict):
        raise WeightsError(f"{path}: its recorded settings ({METADATA_KEY}) are damaged")
    now = fingerprint(cfg)
    checked = [k for k in now if k in was or k not in FINGERPRINT_ADDED_LATER]
    diff = [f"{k} {was.get(k)!r} (config.json: {now[k]!r})" for k in checked if json.dumps(was.get(k)) != json.dumps(now[k])]
    if diff:
        raise WeightsError(f"{path}: these weights were trained with other settings than {Path(path).parent / 'config.json'} says: {'; '.join(diff)}")


def load_model(run_dir: str | Path, which: str = "best", device="cpu") -> torch.nn.Module:
    """The trained model of a run folder, in eval mode on ``device`` (``which``: best or last)."""
    run_dir = Path(run_dir)
    cfg = config_from_run(run_dir)
    model = build_model(cfg)
    load_weights(model, run_dir / f"{which}.safetensors", what=f"variant {cfg.variant}")
    check_fingerprint(run_dir / f"{which}.safetensors", cfg)
    return model.to(device).eval()


def load_released(name: str = DEFAULT_RELEASE, device="cpu") -> torch.nn.Module:
    """A released model (``dae_lib/released/<name>/``, its model card beside the weights), eval mode."""
    folder = RELEASED_DIR / name
    if not folder.is_dir():
        have = sorted(p.name for p in RELEASED_DIR.iterdir() if p.is_dir()) if RELEASED_DIR.is_dir() else []
        raise WeightsError(f"no released model {name!r} in {RELEASED_DIR} (released: {have or 'none'})")
    return load_model(folder, "best", device)


@contextmanager
def _eval_mode(model: torch.nn.Module):
    """Eval mode for the block; the model's own mode afterwards (training code may be calling)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.inference_mode()
def predict_masks(model: torch.nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor | None:
    """The segmentation head's binary bone masks (logit > 0) for ``x``, float32 on the CPU, in eval
    mode and float32; None for a model without a head. Only for scoring the head: the suppression
    itself (``predict``) never runs it."""
    if getattr(model, "bone_seg", None) is None or not hasattr(model, "mask_logits"):
        return None
    device = next(model.parameters()).device
    batch_size = batch_size or fastest(device)["infer_batch"]
    with _eval_mode(model):
        out = [(model.mask_logits(x[i : i + batch_size].to(device)) > 0).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else None


@torch.inference_mode()
def predict(
    model: torch.nn.Module, x: torch.Tensor, amp: str = "off", batch_size: int | None = None, channels_last: bool = True,
    on_device: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Soft-tissue estimates for radiographs ``x`` (N, 1, H, W) in clinical polarity, [0, 1].

    Runs the model in eval mode (so no segmentation branch) on its own device, ``batch_size``
    images at a time (None: the device's fastest, device.FASTEST), with channels-last inputs and, for ``amp`` "auto" or "bf16", bf16 autocast
    where the device supports it natively ("off": float32, what evaluation uses). Returns float32
    on the CPU (``on_device``: on the model's device, for work that goes on there, such as the
    validation of each epoch), clamped to [0, 1]. The model's mode is restored and its memory
    format left as it is.
    """
    device = next(model.parameters()).device
    amp_dtype = resolve_amp(amp, device)
    batch_size = batch_size or fastest(device)["infer_batch"]
    # One host tensor, each batch's result copied straight into it: no per-batch host copies to
    # concatenate (on the H200 the extra host copy and allocation cost more than the model itself).
    out = torch.empty(x.shape, dtype=torch.float32, device=device if on_device else "cpu")
    with _eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, non_blocking=True)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp_dtype):
                s_hat = model(xb)[0]
            out[i : i + batch_size].copy_(s_hat.float().clamp(0, 1))
    return out


def suppress_full(model: torch.nn.Module, x: torch.Tensor, image_size: int, amp: str = "off") -> tuple[torch.Tensor, torch.Tensor]:
    """Soft tissue and bone of radiographs ``x`` (N, 1, H, W) in clinical polarity, [0, 1], at their
    own resolution (float32, CPU).

    The model sees ``x`` at its training size (``image_size``; area averaging down, bilinear up).
    Its bone estimate there, B_hat = X_small - S_hat_small, is resized back to H x W and removed
    from the full-resolution radiograph: S = clamp(X - B_hat_up, 0, 1), B = X - S. So detail finer
    than the model's grid (texture, noise, edges of soft tissue) passes through untouched; only the
    bone, a smooth component, is estimated at the coarser scale. At ``image_size`` itself this is
    exactly ``predict``.
    """
    from .data import resize_to

    x = x.float().cpu()
    small = resize_to(x, (image_size, image_size)).clamp(0, 1)
    bone_small = small - predict(model, small, amp)
    s = resize_to(bone_small, tuple(x.shape[-2:]))  # B_hat at full size (a new tensor, or bone_small itself: ours either way) ...
    s.neg_().add_(x).clamp_(0, 1)  # ... turned into S = clamp(X - B_hat_up, 0, 1) in place: one full-size copy less
    return s, x - s
