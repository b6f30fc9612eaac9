"""Speed benchmark: training images/s and inference ms/image, optimised path versus naive.

    python -m dae_lib.studies.bench [--sizes 256 512] [--variant dae_msssim] [--kinds train infer suppress] [--steps 5] [--out results/benchmarks.csv]

Training configurations, each the same model, loss and batch on synthetic inputs:

- ``naive``: fp32, NCHW tensors, eager, MS-SSIM from torchmetrics (its 2-D 11x11 window), the
  loss read back to the host every step: what a straightforward loop does;
- ``+separable``: the same with this project's separable MS-SSIM (same values);
- ``+channels_last``: and channels-last memory format;
- ``+bf16``: channels-last and bf16 autocast (where the device runs it natively);
- ``optimized``: what ``fit`` does on this device (device.FASTEST: bf16 + channels-last on a CPU
  with native bf16, fp32 + channels-last on CUDA);
- ``+fused_adam``, ``+compile``, ``+compile_step`` (CUDA only): ``optimized`` with Adam's fused
  kernel, with the model under torch.compile, or with model and loss compiled as one function
  (the training loop is launch-bound on a GPU: 256 px runs at the img/s of 512 px). A CUDA-only
  configuration that fails is reported and skipped.

Inference configurations, batch 1 and batch 8, each taking inputs from the host and returning
float32 results there (what ``inference.predict`` promises): ``naive`` (fp32, NCHW,
``torch.no_grad``), ``+channels_last`` and ``+bf16`` (``inference.predict``: eval mode without the
segmentation branch, ``torch.inference_mode``, channels-last weights and inputs, fp32 or bf16
autocast) and ``optimized`` (``inference.predict`` as device.FASTEST sets it for this device).

Suppression (``--kinds suppress``): the released model through the command's whole path for one
file (suppress.suppress_one: read a PNG of ``size`` px, polarity, model at 512 px, bone applied at
full size, PNG written atomically), config ``file``, batch 1.

On a CPU each configuration runs in its own subprocess, so the peak resident memory it reports is
its own; on CUDA all run in one process (peak allocated memory reset per configuration), each for
at least MIN_SECONDS_CUDA. Ratios are relative to ``naive`` at the same
size. Results are appended to results/benchmarks.csv with the machine, torch version and commit.
Benchmarks measure speed; no test asserts a time.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure as tm_ms_ssim,
)

from .. import losses
from ..atomic import append_csv
from ..config import load_config
from ..device import autocast, bf16_supported, describe, fastest, pick_device, resolve_amp
from ..inference import predict
from ..models import build_model
from ..msssim import BETAS
from ..phantom import chest_phantom
from ..radiograph import write_png
from ..runs import RESULTS_DIR, record, resolve
from ..suppress import Destination, Job, Settings, load_suppression_model, suppress_one

TRAIN_CONFIGS = ("naive", "+separable", "+channels_last", "+bf16", "optimized")
#: Measured on CUDA only: Adam's fused kernel, torch.compile of the optimised step (compilation
#: takes minutes on a CPU).
CUDA_ONLY = ("+fused_adam", "+compile", "+compile_step")
#: On CUDA a step takes milliseconds: each configuration runs for at least this long (and at
#: least ``steps`` steps), so that one slow step or clock change does not decide a row.
MIN_SECONDS_CUDA = 1.0
INFER_CONFIGS = ("naive", "+channels_last", "+bf16", "optimized")


def _train_step_fn(variant: str, size: int, batch: int, config: str, device: torch.device):
    cfg = load_config("paper", variant=variant, image_size=size)
    best = fastest(device)  # "optimized" is what fit does on this device (device.FASTEST)
    on_top = config in ("optimized", *CUDA_ONLY)  # the CUDA-only ones build on optimized
    cl = config in ("+channels_last", "+bf16") or (on_top and best["channels_last"])
    amp = resolve_amp("bf16", device) if config == "+bf16" else resolve_amp("auto", device) if on_top else None
    model = build_model(cfg).to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if config == "+compile" else model
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, **({"fused": True} if config == "+fused_adam" else {}))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, size, size, generator=g).to(device)
    s = (0.9 * x).contiguous()
    m = (x > 0.5).float()
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)

    def ms_ssim_naive(p, t):
        return tm_ms_ssim(p.float(), t.float(), data_range=1.0, betas=BETAS, normalize="relu", reduction="none")

    def loss_of(x, s, m):
        with autocast(device, amp):
            s_hat, logits = forward(x)
        if config != "naive":
            return losses.total_loss(s_hat, s, cfg, logits, m)[0]  # eq. (1), as fit trains it
        # naive: eq. (1) with torchmetrics' MS-SSIM (its 2-D window, Wang's per-image form)
        loss = cfg.lm * losses.mse_loss(s_hat, s)
        if cfg.use_msssim:
            loss = loss + 1.0 - ms_ssim_naive(s_hat, s).mean()
        if cfg.use_seg:
            loss = loss + cfg.ls * losses.seg_loss(logits, m)
        return loss

    if config == "+compile_step":  # model and loss as one graph: the loss's many small kernels fused
        loss_of = torch.compile(loss_of)

    def step():
        loss = loss_of(x, s, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if config == "naive":
            loss.item()  # a host read every step
        return loss

    return step, amp


def _infer_fn(variant: str, size: int, batch: int, config: str, device: torch.device):
    model = build_model(load_config("paper", variant=variant, image_size=size)).to(device).eval()
    x = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0))  # on the host, as predict's callers hold it
    if config == "naive":
        def run():  # the same contract as predict: inputs from the host, float32 results back on the host
            with torch.no_grad():
                return model(x.to(device))[0].float().clamp(0, 1).cpu()
        return run, None
    cl = config in ("+channels_last", "+bf16") or fastest(device)["channels_last"]
    amp = {"+channels_last": "off", "+bf16": "bf16", "optimized": "auto"}[config]
    if cl:
        model = model.to(memory_format=torch.channels_last)

    def run():  # the library's inference path (inference.predict)
        return predict(model, x, amp=amp, batch_size=batch, channels_last=cl)

    return run, resolve_amp(amp, device)


def _suppress_fn(size: int, device: torch.device):
    """One radiograph file through the suppression command's path, with the released model."""
    tmp = Path(tempfile.mkdtemp(prefix="dae-bench-"))
    write_png(tmp / "in" / "x.png", chest_phantom(size, seed=0)[0].numpy().astype(np.float64), 8)
    trained = load_suppression_model(None, device)
    job = Job(tmp / "in" / "x.png", Path("x.png"), name="x")
    where, settings = Destination(tmp / "out"), Settings(overwrite=True)

    def run():
        return suppress_one(trained, job, where, settings)

    return run, "auto"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(kind: str, config: str, size: int, batch: int, steps: int, variant: str, device_name: str) -> dict:
    """One configuration, in this process: warm-up, then timed steps."""
    device = pick_device(device_name)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if kind == "train":
        fn, amp = _train_step_fn(variant, size, batch, config, device)
    elif kind == "suppress":
        fn, amp = _suppress_fn(size, device)
    else:
        fn, amp = _infer_fn(variant, size, batch, config, device)
    for _ in range(3):
        fn()
    _sync(device)
    min_seconds = MIN_SECONDS_CUDA if device.type == "cuda" else 0.0
    t0, done = time.perf_counter(), 0
    while done < steps or time.perf_counter() - t0 < min_seconds:
        fn()
        done += 1
    _sync(device)  # the queued steps have all run: the time is theirs
    dt = (time.perf_counter() - t0) / done
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {
        "kind": kind, "config": config, "size": size, "batch": batch, "variant": variant,
        "device": str(device), "device_name": describe(device), "cuda": torch.version.cuda or "", "autocast": str(amp), "threads": torch.get_num_threads(), "seconds_per_step": dt, "steps": done,
        "images_per_s": batch / dt, "ms_per_image": 1000 * dt / batch,
        "peak_mem_mib": round(peak, 1), "peak_mem_kind": "cuda max allocated" if device.type == "cuda" else "process max RSS",
    }  # fmt: skip
    return row


def _in_subprocess(**kw) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "dae_lib.studies.bench", "--one", json.dumps(kw)], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise RuntimeError(f"benchmark {kw} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_all(sizes=(256, 512), variant="dae_msssim", steps=5, train_batch=4, device="auto", log=print, kinds=("train", "infer")) -> list[dict]:
    """Every configuration at every size. On a CPU each runs in its own subprocess (so its peak
    RSS is its own); on CUDA all run in this process (peak allocated memory is reset per
    configuration), which keeps a size well under a minute."""
    dev = pick_device(device)
    one = (lambda **kw: measure(**kw)) if dev.type == "cuda" else _in_subprocess
    train_configs = [c for c in TRAIN_CONFIGS if c != "+bf16" or bf16_supported(dev)] + (list(CUDA_ONLY) if dev.type == "cuda" else [])
    rows = []
    for size in sizes:
        for config in train_configs if "train" in kinds else ():
            try:
                row = one(kind="train", config=config, size=size, batch=train_batch, steps=steps, variant=variant, device_name=device)
            except Exception as e:  # noqa: BLE001 - only the optional CUDA-only ones (torch.compile) may fail
                if config not in CUDA_ONLY:
                    raise
                log(f"train  {size:4d} px  {config:15s} failed, skipped: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
                continue
            rows.append(row)
            log(f"train  {size:4d} px  {config:15s} {row['images_per_s']:7.2f} img/s   peak {row['peak_mem_mib']:8.0f} MiB")
        for batch in (1, 8) if "infer" in kinds else ():
            for config in (c for c in INFER_CONFIGS if c != "+bf16" or bf16_supported(dev)):
                row = one(kind="infer", config=config, size=size, batch=batch, steps=max(steps, 5), variant=variant, device_name=device)
                rows.append(row)
                log(f"infer  {size:4d} px  batch {batch}  {config:15s} {row['ms_per_image']:7.2f} ms/image peak {row['peak_mem_mib']:8.0f} MiB")
        if "suppress" in kinds:
            row = one(kind="suppress", config="file", size=size, batch=1, steps=max(steps, 5), variant="released", device_name=device)
            rows.append(row)
            log(f"suppress {size:4d} px file  {row['ms_per_image']:7.1f} ms/image peak {row['peak_mem_mib']:8.0f} MiB")
    # ratios against naive at the same (kind, size, batch)
    base = {(r["kind"], r["size"], r["batch"]): r for r in rows if r["config"] == "naive"}
    for r in rows:
        b = base.get((r["kind"], r["size"], r["batch"]))
        r["speedup_vs_naive"] = r["images_per_s"] / b["images_per_s"] if b else None
    return rows


def write_rows(rows: list[dict], path: Path) -> Path:
    prov = record()
    return append_csv(path, pd.DataFrame([{**r, "commit": prov["commit"], "torch": prov["torch"], "machine": prov["machine"], "utc": prov["utc"]} for r in rows]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dae_lib.studies.bench", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--variant", default="dae_msssim")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=4, help="training batch size")
    p.add_argument("--device", default="auto")
    p.add_argument("--kinds", nargs="+", choices=("train", "infer", "suppress"), default=["train", "infer"])
    p.add_argument("--out", default=str(RESULTS_DIR / "benchmarks.csv"))
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure(**json.loads(args.one))))
        return 0
    rows = run_all(tuple(args.sizes), args.variant, args.steps, args.batch, args.device, kinds=tuple(args.kinds))
    print(f"\n{describe(pick_device(args.device))}, torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}")
    print("speed-up of the optimised path over the naive fp32 eager loop:")
    for r in rows:
        if r["config"] == "optimized":
            what = "train" if r["kind"] == "train" else f"infer b{r['batch']}"
            print(f"  {what:9s} {r['size']:4d} px: x{r['speedup_vs_naive']:.2f}  ({r['images_per_s']:.2f} img/s, {r['ms_per_image']:.1f} ms/image)")
    print("written:", write_rows(rows, resolve(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
