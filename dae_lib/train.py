"""Training: one plain loop that fits any of the four variants from a ``Config``.

    fit(cfg, out_dir) ->
        load data (folder or phantom), split by case ID, write split.csv
        for each epoch:
            shuffle the training cases (seeded by seed and epoch), augment each batch on tensors
            forward under bf16 autocast where supported, loss eq. (7), Adam step
            validate on the validation cases (no augmentation), append a row to log.csv
            save checkpoint.pt (resume point), last.safetensors, and best.safetensors when the
            validation loss improves

Every epoch's randomness (order and augmentation) is drawn from ``seed`` and the epoch number, so
a run that is stopped and resumed from its checkpoint gives the same weights as an uninterrupted
one (exactly, on the CPU). The test cases are never touched here.

Run directory contents: config.json, split.csv, log.csv, checkpoint.pt, last.safetensors,
best.safetensors, provenance.json.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import metrics
from .atomic import atomic_path
from .augment import PairedAugment
from .config import Config
from .data import PairedImages, file_hashes, load_data
from .device import autocast, describe, pick_device, resolve_amp
from .losses import total_loss
from .model import DAE
from .provenance import record, write_json_atomic
from .split import make_split, split_indices, write_split_csv

log = logging.getLogger(__name__)

#: Configuration fields that must match for a run directory to be resumed.
_RESUME_KEYS = (
    "data_dir", "image_size", "polarity", "n_phantom", "phantom_seed", "mask_threshold", "mask_min_threshold",
    "test_fraction", "val_fraction", "split_seed", "augment", "rotation_deg", "shift", "shear_deg", "zoom",
    "hflip_p", "variant", "channels", "kernel_size", "lm", "ls", "batch_size", "lr", "weight_decay", "seed",
)  # fmt: skip


class RunDirError(RuntimeError):
    """The output folder holds a different run: it is left as it is."""


@dataclass
class FitResult:
    model: DAE
    history: list[dict]
    out_dir: Path
    split: dict[str, str]
    data: PairedImages
    device: torch.device
    best_epoch: int


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def save_weights(model: DAE, path: Path) -> None:
    """Model weights as safetensors (float32, contiguous), written atomically."""
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def load_model(run_dir: str | Path, which: str = "best", device="cpu") -> DAE:
    """Rebuild a trained model from a run directory (its config.json and weights)."""
    run_dir = Path(run_dir)
    model = DAE.from_config(config_from_run(run_dir))
    state = load_file(str(run_dir / f"{which}.safetensors"))
    model.load_state_dict(state)
    return model.to(device).eval()


def _write_log(path: Path, history: list[dict]) -> None:
    fields = list(history[0].keys()) if history else []
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(history)


def _check_resumable(out_dir: Path, cfg: Config) -> dict | None:
    """The checkpoint to resume from, None for a fresh run, or RunDirError for a foreign folder."""
    ckpt_path = out_dir / "checkpoint.pt"
    cfg_path = out_dir / "config.json"
    if not ckpt_path.exists():
        if out_dir.exists() and any(out_dir.iterdir()) and not cfg_path.exists():
            raise RunDirError(f"{out_dir}: folder is not empty and holds no run of ours; choose another output folder")
        return None
    old = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    new = cfg.to_dict()
    diff = [k for k in _RESUME_KEYS if json.dumps(old.get(k)) != json.dumps(new.get(k))]
    if diff:
        raise RunDirError(
            f"{out_dir}: holds a run with a different configuration ({', '.join(diff)}); "
            "choose another output folder or remove this one"
        )
    return torch.load(ckpt_path, map_location="cpu", weights_only=True)


@torch.inference_mode()
def predict(model: DAE, x: torch.Tensor, device, amp_dtype=None, batch_size: int = 8, channels_last=True) -> torch.Tensor:
    """Soft-tissue estimates for radiographs x (N,1,H,W) in batches, on the CPU as float32."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            out.append(model(xb)[0].float().clamp(0, 1).cpu())
    return torch.cat(out) if out else torch.empty_like(x)


def _validate(model, cfg, val: PairedImages, device, amp_dtype) -> dict:
    if len(val) == 0:
        return {}
    pred = predict(model, val.x, device, amp_dtype, cfg.eval_batch_size, cfg.channels_last)
    loss, _ = total_loss(pred, val.s, use_msssim=cfg.use_msssim, use_seg=False, lm=cfg.lm)
    m = metrics.all_metrics(pred, val.s, val.x)
    return {"val_loss": float(loss), **{f"val_{k}": float(v.mean()) for k, v in m.items()}}


def fit(
    cfg: Config,
    out_dir: str | Path,
    data: PairedImages | None = None,
    resume: bool = True,
    progress: bool = True,
    profile: str | None = None,
    max_epochs: int | None = None,
) -> FitResult:
    """Train ``cfg.variant`` into ``out_dir`` (resuming from its checkpoint when there is one).

    ``max_epochs`` stops after that many epochs *in this call* (the run can be resumed later).
    """
    t_start = time.time()
    out_dir = Path(out_dir)
    ckpt = _check_resumable(out_dir, cfg) if resume else None
    if not resume and (out_dir / "checkpoint.pt").exists():
        raise RunDirError(f"{out_dir}: holds a run already; pass resume=True or choose another folder")
    data = data if data is not None else load_data(cfg)  # bad input fails before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    split = make_split(data.ids, cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
    parts = split_indices(data.ids, split)
    write_split_csv(out_dir / "split.csv", data.ids, split, data.files, file_hashes(data))
    write_json_atomic(out_dir / "config.json", cfg.to_dict())
    train, val = data.subset(parts["train"]), data.subset(parts["val"])

    device = pick_device(cfg.device)
    amp_dtype = resolve_amp(cfg.amp, device)
    log.info("device %s, autocast %s, %d train / %d val cases", describe(device), amp_dtype, len(train), len(val))

    seed_everything(cfg.seed)
    model = DAE.from_config(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict] = []
    best_val, best_epoch, start_epoch = float("inf"), -1, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        history = ckpt["history"]
        best_val, best_epoch, start_epoch = ckpt["best_val"], ckpt["best_epoch"], ckpt["epoch"] + 1
        if start_epoch > cfg.epochs:  # more epochs may be added to a run, never silently dropped
            raise RunDirError(f"{out_dir}: holds a run of {start_epoch} epochs, more than the {cfg.epochs} asked for")
        log.info("resuming %s at epoch %d", out_dir, start_epoch)

    augment = PairedAugment.from_config(cfg).to(device) if cfg.augment else None
    tx, ts, tm = (t.to(device) for t in (train.x, train.s, train.m))
    end_epoch = cfg.epochs if max_epochs is None else min(cfg.epochs, start_epoch + max_epochs)
    bar = tqdm(range(start_epoch, end_epoch), desc=cfg.variant, disable=not progress, initial=start_epoch, total=cfg.epochs)
    for epoch in bar:
        t0 = time.time()
        model.train()
        torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # the epoch's shuffling and augmentation
        order = torch.randperm(len(train)).to(device)
        sums: dict[str, torch.Tensor] = {}  # on the device: no host round trip per step
        n_seen = 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb, sb, mb = tx[idx], ts[idx], tm[idx]
            if augment is not None:
                xb, sb, mb = augment(xb, sb, mb)
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp_dtype):
                s_hat, mask_logits = model(xb)
            loss, terms = total_loss(
                s_hat, sb, mask_logits, mb, use_msssim=cfg.use_msssim, use_seg=cfg.use_seg, lm=cfg.lm, ls=cfg.ls
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n = len(idx)
            n_seen += n
            for k, v in {"loss": loss.detach(), **terms}.items():
                sums[k] = sums.get(k, 0.0) + v * n
        train_s = time.time() - t0
        row = {"epoch": epoch + 1, **{f"train_{k}": float(v) / max(n_seen, 1) for k, v in sums.items()}}
        row.update(_validate(model, cfg, val, device, amp_dtype))
        row["seconds"] = time.time() - t0
        row["train_images_per_s"] = n_seen / max(train_s, 1e-9)
        history.append(row)
        score = row.get("val_loss", row["train_loss"])
        if score < best_val:
            best_val, best_epoch = score, epoch + 1
            save_weights(model, out_dir / "best.safetensors")
        save_weights(model, out_dir / "last.safetensors")
        _write_log(out_dir / "log.csv", history)
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "best_val": best_val,
            "best_epoch": best_epoch,
            "history": history,
        }
        with atomic_path(out_dir / "checkpoint.pt") as tmp:
            torch.save(state, tmp)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_psnr=f"{row.get('val_psnr', float('nan')):.2f}")

    if len(history) > start_epoch or not (out_dir / "provenance.json").exists():  # a no-op resume keeps the record
        write_json_atomic(
            out_dir / "provenance.json",
            record(
                data=data.source,
                n_cases=len(data),
                polarity=str(data.polarity),
                profile=profile,
                variant=cfg.variant,
                device=describe(device),
                autocast=str(amp_dtype),
                seed=cfg.seed,
                epochs_done=len(history),
                resumed_at_epoch=start_epoch,
                best_epoch=best_epoch,
                wall_seconds_this_call=round(time.time() - t_start, 1),
                train_seconds_total=round(sum(r["seconds"] for r in history), 1),
            ),
        )
    best = out_dir / "best.safetensors"
    if best.exists():
        model.load_state_dict(load_file(str(best)))
    model.eval()
    return FitResult(model, history, out_dir, split, data, device, best_epoch)


def config_from_run(run_dir: str | Path) -> Config:
    d = json.loads((Path(run_dir) / "config.json").read_text())
    return Config(**{f.name: d[f.name] for f in dataclasses.fields(Config) if f.name in d})
