"""Training: one plain loop that fits any variant of any model family from a ``Config``.

    fit(cfg, out_dir) ->
        check the folder: a fresh run, or one to resume with the same settings (else nothing is touched)
        load the data (folder or phantom), split by case ID; write config.json, split.csv, data.json
        build the model (models.build_model), Adam or AdamW (the family's optimizer); restore the checkpoint when resuming
        for each epoch:
            train_epoch: shuffle the training cases (seeded by seed and epoch), augment each batch on
                         tensors, forward under bf16 autocast where supported, loss eq. (1), optimizer step
                         (with cfg.teachers: against losses.distilled_target instead of S; beyond the paper)
            validate:    the validation cases, no augmentation
            save_epoch:  log.csv, last.safetensors, best.safetensors when the validation loss improves,
                         checkpoint.pt (the resume point)
        write provenance.json; return the model with the best epoch's weights

Every epoch's randomness (order and augmentation) is drawn from ``seed`` and the epoch number, so
a run that is stopped and resumed from its checkpoint gives the same weights as an uninterrupted
one (exactly, on the CPU). The test cases are never touched here.

Run directory contents: config.json, split.csv, data.json, log.csv, checkpoint.pt,
last.safetensors, best.safetensors, provenance.json (runs.py names them and reads them back).
"""
from __future__ import annotations

import csv
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from IPython import get_ipython
from IPython.display import display
from tqdm import tqdm

from . import metrics
from .atomic import atomic_path, write_json_atomic
from .augment import PairedAugment
from .config import Config, read_record, resume_conflicts
from .data import PairedImages, case_ids, file_hashes, hashes_by_case, load_data
from .device import autocast, describe, pick_device, resolve_amp
from .errors import RunDirError, TrainingInterrupted, WeightsError
from .models import build_model
from .inference import predict
from .losses import distilled_target, total_loss
from .runs import (
    BEST_WEIGHTS, CHECKPOINT, CONFIG_FILE, LAST_WEIGHTS, LOCK_FILE, LOG_FILE, PROVENANCE_FILE, SPLIT_FILE, is_run_folder,
    load_model, load_weights, portable, record, released_folder, resolve, run_lock, sha256_file, start_run_folder, weights_file, weights_metadata,
)
from .split import check_split, checked_split, read_split_csv, split_indices

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    model: torch.nn.Module
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


def make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """Adam (the paper's) or AdamW (decoupled weight decay), at ``cfg.lr``."""
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.optimizer]
    return cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


#: The "cosine" schedule: a linear warm-up over this share of all steps from START * lr to lr,
#: then half a cosine down to END * lr (the shape of torch's OneCycleLR with cosine annealing).
WARMUP_SHARE, START, END = 0.05, 0.04, 1e-3


def learning_rate(cfg: Config, step: int, total_steps: int) -> float:
    """The learning rate of optimisation step ``step`` (0-based) of ``total_steps``. A pure function
    of the step, so a resumed run follows the same schedule without saving a scheduler."""
    if cfg.schedule == "constant":
        return cfg.lr
    warm = max(1, round(WARMUP_SHARE * total_steps))
    if step < warm:
        return cfg.lr * (START + (1 - START) * step / warm)
    t = min(1.0, (step - warm) / max(1, total_steps - warm))
    return cfg.lr * (END + (1 - END) * 0.5 * (1 + math.cos(math.pi * t)))


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


#: ``init_from`` value naming the released model (fine-tuning it on a site's own pairs).
RELEASED = "released"


def initial_weights_file(cfg: Config) -> Path | None:
    """The weights ``cfg.init_from`` names: a .safetensors file, a run folder's best.safetensors, or
    "released": the released model's (runs.released_folder)."""
    if not cfg.init_from:
        return None
    p = released_folder() if cfg.init_from == RELEASED else resolve(cfg.init_from)
    return weights_file(p, "best") if p.is_dir() else p


def save_weights(model: torch.nn.Module, path: Path, cfg: Config | None = None) -> None:
    """Model weights as safetensors (float32, contiguous), written atomically; with ``cfg``, its
    variant and fingerprint (config.fingerprint) in the file's metadata, checked when loading."""
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=weights_metadata(cfg) if cfg is not None else None)


def _write_log(path: Path, history: list[dict]) -> None:
    fields = list(dict.fromkeys(k for row in history for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(history)


def _check_resumable(out_dir: Path, cfg: Config, resume: bool) -> dict | None:
    """The checkpoint to resume from, or None for a fresh run. A RunDirError, before anything is
    written, for a path that is a file, a folder that is not ours, a run with other settings, or a
    run longer than asked."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"{out_dir}: the output names an existing file, not a folder")
    try:
        empty = not out_dir.exists() or not any(p.name != LOCK_FILE for p in out_dir.iterdir())
    except OSError as e:
        raise RunDirError(f"{out_dir}: cannot read the output folder ({e.strerror or e})") from None
    if empty:
        return None
    if not is_run_folder(out_dir):
        raise RunDirError(f"{out_dir}: folder is not empty and holds no run of ours; nothing was changed: choose another output folder")
    ckpt_path = out_dir / CHECKPOINT
    cfg_path = out_dir / CONFIG_FILE
    recorded = read_record(cfg_path) if cfg_path.exists() else {}  # damaged: a RunDirError naming it
    diff = resume_conflicts(recorded, cfg) if recorded else []
    if diff:
        raise RunDirError(
            f"{out_dir}: holds a run with a different configuration ({', '.join(diff)}); nothing was changed: "
            "choose another output folder or remove this one"
        )
    if not ckpt_path.exists():
        return None  # our run that stopped before its first checkpoint: it starts again
    if not resume:
        raise RunDirError(f"{out_dir}: holds a run already; pass resume=True or choose another folder")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged checkpoint: say so, never a traceback
        raise RunDirError(f"{ckpt_path}: unreadable checkpoint ({type(e).__name__}); remove the run folder to start again") from None
    if ckpt["epoch"] + 1 > cfg.epochs:  # more epochs may be added to a run, never silently dropped
        raise RunDirError(f"{out_dir}: holds a run of {ckpt['epoch'] + 1} epochs, more than the {cfg.epochs} asked for; nothing was changed")
    return ckpt


def _start_run(cfg: Config, out_dir: Path, data: PairedImages, split: dict[str, str]) -> dict[str, str]:
    """Write the records of a run that starts with ``split`` (runs.start_run_folder); the split."""
    start_run_folder(out_dir, cfg, data, split, file_hashes(data))
    return split


def _resume_split(out_dir: Path, data: PairedImages) -> dict[str, str]:
    """The split a run started with (its split.csv), checked against the data now: the cases it
    lists present and unchanged (else a DataError naming them); new cases are left out."""
    new = check_split(out_dir / SPLIT_FILE, data.ids, hashes_by_case(data))
    if new:
        log.info("%d case(s) in the data are not in this run's split and are not used: %s", len(new), ", ".join(new[:5]))
    return read_split_csv(out_dir / SPLIT_FILE)


def train_epoch(model, opt, train: PairedImages, cfg: Config, epoch: int, augment=None, amp_dtype=None, teachers=()) -> dict:
    """One pass over the training cases in a seeded random order; the mean of each loss term.
    ``teachers`` (eval-mode models, cfg.teachers loaded): the target is losses.distilled_target."""
    device = next(model.parameters()).device
    model.train()
    torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # the epoch's shuffling and augmentation
    order = torch.randperm(len(train)).to(device)
    sums: dict[str, torch.Tensor] = {}  # on the device: no host round trip per step
    n_seen = 0
    per_epoch = steps_per_epoch(len(train), cfg.batch_size)
    for k, i in enumerate(range(0, len(order), cfg.batch_size)):
        if cfg.schedule != "constant":
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg, epoch * per_epoch + k, cfg.epochs * per_epoch)
        idx = order[i : i + cfg.batch_size]
        xb, sb, mb = train.x[idx], train.s[idx], train.m[idx]
        if augment is not None:
            xb, sb, mb = augment(xb, sb, mb)
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        if teachers:
            with torch.no_grad(), autocast(device, amp_dtype):
                mean = torch.stack([t(xb)[0].float() for t in teachers]).mean(0)
            sb = distilled_target(sb, mean, cfg.distill)
        with autocast(device, amp_dtype):
            s_hat, mask_logits = model(xb)
        loss, terms = total_loss(s_hat, sb, cfg, mask_logits, mb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n_seen += len(idx)
        for k, v in {"loss": loss.detach(), **terms}.items():
            sums[k] = sums.get(k, 0.0) + v * len(idx)
    return {f"train_{k}": float(v) / max(n_seen, 1) for k, v in sums.items()}


def validate(model, cfg: Config, val: PairedImages) -> dict:
    """Validation loss (eq. (1) without L_seg) and Table 1 metrics, on unaugmented cases.

    Computed where ``val`` lies (``fit`` puts it on the training device): on a GPU, scoring the
    predictions on the CPU took 60-75 % of each epoch of the paper profile (H200, runs' log.csv)."""
    if len(val) == 0:
        return {}
    pred = predict(model, val.x, cfg.amp, cfg.eval_batch_size or None, cfg.channels_last, on_device=val.x.device.type != "cpu")
    loss, _ = total_loss(pred, val.s, cfg, seg=False)
    m = metrics.all_metrics(pred, val.s, val.x)
    return {"val_loss": float(loss), **{f"val_{k}": float(v.mean()) for k, v in m.items()}}


def save_epoch(out_dir: Path, state: _State, improved: bool, cfg: Config) -> None:
    """Everything an epoch leaves behind; the checkpoint last, so it never points past the files."""
    if improved:
        save_weights(state.model, out_dir / BEST_WEIGHTS, cfg)
    save_weights(state.model, out_dir / LAST_WEIGHTS, cfg)
    _write_log(out_dir / LOG_FILE, state.history)
    checkpoint = {
        "model": state.model.state_dict(),
        "optimizer": state.opt.state_dict(),
        "epoch": len(state.history) - 1,
        "best_val": state.best_val,
        "best_epoch": state.best_epoch,
        "history": state.history,
    }
    with atomic_path(out_dir / CHECKPOINT) as tmp:
        torch.save(checkpoint, tmp)


@dataclass
class _Plan:
    """What ``fit`` settles before it takes the run folder's lock: the run, where and on what it
    trains, and where it starts (a fresh split, or a checkpoint to resume)."""

    cfg: Config
    out_dir: Path
    device: torch.device
    amp_dtype: torch.dtype | None
    init: Path | None  # weights to start from (cfg.init_from), fresh runs only
    teachers: list  # cfg.teachers' models, eval mode on the device (distillation; usually none)
    ckpt: dict | None  # the checkpoint to resume from; None: a fresh run
    split: dict[str, str] | None  # a fresh run's split
    profile: str | None
    max_epochs: int | None
    t_start: float


@dataclass
class _State:
    """The model, its optimizer and the epochs done so far (restored from a checkpoint when resuming)."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    history: list[dict]
    best_val: float = float("inf")
    best_epoch: int = -1


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
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    device = pick_device(cfg.device)  # an unusable device or precision fails before anything is touched
    amp_dtype = resolve_amp(cfg.amp, device)
    init = initial_weights_file(cfg)
    if init is not None and not init.is_file():
        raise WeightsError(f"{init}: init_from weights not found")
    teachers = [load_model(resolve(t), device=device) for t in cfg.teachers]  # a WeightsError naming a missing or damaged one, before anything is written
    ckpt = _check_resumable(out_dir, cfg, resume)
    # A fresh run's split, from the case IDs alone: refused (naming the data and the counts) before
    # any image is read when a part would be empty. A resumed run keeps its split.csv.
    split = None
    if ckpt is None:
        ids, where = (data.ids, data.source) if data is not None else case_ids(cfg)
        split = checked_split(ids, cfg.test_fraction, cfg.val_fraction, cfg.split_seed, where)
    data = data if data is not None else load_data(cfg)  # bad input fails before anything is written
    plan = _Plan(cfg, out_dir, device, amp_dtype, init, teachers, ckpt, split, profile, max_epochs, t_start)
    with run_lock(out_dir):
        try:
            return _fit_locked(plan, data, progress)
        except OSError as e:  # a full disk, a folder made read-only under us: one line, the run resumable
            raise RunDirError(f"{out_dir}: cannot write ({e.strerror or e}); the epochs saved so far stay; run the same command again to resume") from None


def _fit_locked(plan: _Plan, data: PairedImages, progress: bool) -> FitResult:
    cfg, out_dir, device = plan.cfg, plan.out_dir, plan.device
    split = _resume_split(out_dir, data) if plan.ckpt is not None else _start_run(cfg, out_dir, data, plan.split)
    parts = split_indices(data.ids, split)
    train, val = data.subset(parts["train"]).to(device), data.subset(parts["val"]).to(device)
    log.info("device %s, autocast %s, %d train / %d val cases", describe(device), plan.amp_dtype, len(train), len(val))
    state = _initial_state(plan)
    start_epoch = len(state.history)
    augment = PairedAugment.from_config(cfg).to(device) if cfg.augment else None
    _train_epochs(plan, state, train, val, augment, progress)
    if len(state.history) > start_epoch or not (out_dir / PROVENANCE_FILE).exists():  # a no-op resume keeps the record
        _write_provenance(plan, data, state, start_epoch)
    if (out_dir / BEST_WEIGHTS).exists():
        load_weights(state.model, out_dir / BEST_WEIGHTS)
    state.model.eval()
    return FitResult(state.model, state.history, out_dir, split, data, device, state.best_epoch)


def _initial_state(plan: _Plan) -> _State:
    """The seeded untrained model and its optimizer; with ``init_from`` weights on a fresh run, or
    the checkpoint's model, optimizer and history when resuming."""
    cfg = plan.cfg
    seed_everything(cfg.seed)
    model = build_model(cfg).to(plan.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    state = _State(model, make_optimizer(model, cfg), [])
    if plan.init is not None and plan.ckpt is None:
        load_weights(model, plan.init, what=f"variant {cfg.variant} (init_from)")
    if plan.ckpt is not None:
        model.load_state_dict(plan.ckpt["model"])
        state.opt.load_state_dict(plan.ckpt["optimizer"])
        state.history, state.best_val, state.best_epoch = plan.ckpt["history"], plan.ckpt["best_val"], plan.ckpt["best_epoch"]
        log.info("resuming %s at epoch %d", plan.out_dir, len(state.history))
    return state


class EpochLine:
    """Training progress as one line: in a notebook, one text output updated in place (what a stored
    notebook keeps is the last state, "30/30 epochs", never a widget or a bar stuck at 0 %); in a
    terminal, a tqdm bar. ``update`` after each epoch; ``close`` at the end."""

    def __init__(self, name: str, done: int, total: int, enabled: bool = True):
        self.name, self.total, self.enabled = name, total, enabled
        kernel = getattr(get_ipython(), "kernel", None)
        self.handle = display(self._plain(done, None), raw=True, display_id=True) if enabled and kernel is not None else None
        self.bar = tqdm(total=total, initial=done, desc=name, disable=not enabled) if self.handle is None else None

    def text(self, done: int, row: dict | None) -> str:
        line = f"{self.name}: {done}/{self.total} epochs"
        if row:
            line += f"; epoch {row['epoch']}: training loss {row['train_loss']:.4g}, validation PSNR {row.get('val_psnr', float('nan')):.2f} dB, {row['seconds']:.1f} s"
        return line

    def _plain(self, done: int, row: dict | None) -> dict:  # the line as plain text (a str displayed as is would show its quotes)
        return {"text/plain": self.text(done, row)}

    def update(self, done: int, row: dict) -> None:
        if self.handle is not None:
            self.handle.update(self._plain(done, row), raw=True)
        elif self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_psnr=f"{row.get('val_psnr', float('nan')):.2f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train_epochs(plan: _Plan, state: _State, train: PairedImages, val: PairedImages, augment, progress: bool) -> None:
    """The epochs of this call (up to ``cfg.epochs``, at most ``max_epochs`` of them), each saved
    as it ends (``save_epoch``); Ctrl-C: a TrainingInterrupted saying how many are saved."""
    cfg, out_dir = plan.cfg, plan.out_dir
    start_epoch = len(state.history)
    end_epoch = cfg.epochs if plan.max_epochs is None else min(cfg.epochs, start_epoch + plan.max_epochs)
    line = EpochLine(cfg.variant, start_epoch, cfg.epochs, progress)
    saved = start_epoch
    try:
        for epoch in range(start_epoch, end_epoch):
            t0 = time.perf_counter()
            row = {"epoch": epoch + 1, **train_epoch(state.model, state.opt, train, cfg, epoch, augment, plan.amp_dtype, plan.teachers)}
            train_s = time.perf_counter() - t0
            row.update(validate(state.model, cfg, val))
            row["seconds"] = time.perf_counter() - t0
            row["train_images_per_s"] = len(train) / max(train_s, 1e-9)
            state.history.append(row)
            score = row.get("val_loss", row["train_loss"])
            improved = score < state.best_val
            if improved:
                state.best_val, state.best_epoch = score, epoch + 1
            save_epoch(out_dir, state, improved, cfg)
            saved = len(state.history)
            line.update(saved, row)
    except KeyboardInterrupt:
        line.close()
        raise TrainingInterrupted(
            f"{out_dir}: stopped; {saved} of {cfg.epochs} epochs are saved ({CHECKPOINT}); run the same command again to resume"
        ) from None
    line.close()


def _write_provenance(plan: _Plan, data: PairedImages, state: _State, start_epoch: int) -> None:
    init = plan.init
    write_json_atomic(
        plan.out_dir / PROVENANCE_FILE,
        record(
            data=data.source,
            n_cases=len(data),
            polarity=str(data.polarity),
            profile=plan.profile,
            variant=plan.cfg.variant,
            device=describe(plan.device),
            autocast=str(plan.amp_dtype),
            seed=plan.cfg.seed,
            epochs_done=len(state.history),
            resumed_at_epoch=start_epoch,
            init_from=None if init is None else {"file": portable(init), "sha256": sha256_file(init)},
            teachers=[{"file": portable(f), "sha256": sha256_file(f)} for f in (weights_file(resolve(t)) for t in plan.cfg.teachers)],
            best_epoch=state.best_epoch,
            wall_seconds_this_call=round(time.perf_counter() - plan.t_start, 1),
            train_seconds_total=round(sum(r["seconds"] for r in state.history), 1),
        ),
    )
