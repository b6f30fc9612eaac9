"""Figures. Each function draws one figure and returns it (so notebooks show it inline); with
``path`` it is also saved as PNG (written atomically). Every figure carries a provenance line
(``footer``: data, profile, training seeds, commit; pipeline.NotebookSetup.footer): a figure is never
saved without one. Images are shown in clinical polarity on the grey window [0, 1] (the data's
full range) unless a panel states another window or has a colour bar."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from ..atomic import atomic_path
from ..augment import PairedAugment
from ..config import Config
from ..losses import bone_mask, mask_thresholds
from ..phantom import chest_phantom
from ..metrics import dice
from ..msssim import ms_ssim_map
from ..models import build_model
from ..runs import FIGURES_DIR, LOG_FILE, REPO_ROOT, check_publishable, footer_line, resolve
from .anatomy import BANDS, lung_fields
from .evaluate import IDENTITY
from .shifted import shifted_summary
from .table1 import block_seeds, paired_difference, paper_values


#: Saved figures are for screens (the executed notebooks are committed): 100 dpi.
DPI = 100


#: The PNG text field that holds a saved figure's provenance line as text too (``saved_footer``),
#: so that a program can read what the footer under the picture says.
FOOTER_FIELD = "Provenance"


def _save(fig, path: Path, footer: str, dpi=DPI) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={FOOTER_FIELD: footer})
    return path


def saved_footer(png) -> str | None:
    """The provenance line a saved figure carries (its FOOTER_FIELD), None when it has none."""
    with Image.open(png) as im:
        return im.info.get(FOOTER_FIELD)


def _finish(fig, path, footer: str | None):
    """Put the provenance line under the figure and, with ``path``, save it (refused without one)."""
    if footer:
        fig.text(0.5, 0.0, footer, ha="center", va="top", fontsize=7, color="0.3")
    if path:
        if not footer:
            raise ValueError(f"{path}: a saved figure carries its provenance line (footer=: data, profile, seeds, commit)")
        _save(fig, resolve(path), footer)
    return fig


def phantom_sample_figure(path=None, size: int = 512, seed: int = 0, show: bool = False) -> Path:
    """One phantom case: X, S, B = X - S and the bone mask M (figures/phantom_sample.png)."""
    path = resolve(path) if path else FIGURES_DIR / "phantom_sample.png"
    if path.resolve().is_relative_to(FIGURES_DIR.resolve()):
        check_publishable(REPO_ROOT)  # a committed figure: from committed code only
    x, s, b = chest_phantom(size, seed)
    rule = (Config().mask_threshold, Config().mask_min_threshold)  # the default mask rule
    m = bone_mask(x[None, None], s[None, None], *rule)[0, 0]
    tau = float(mask_thresholds(x[None, None], s[None, None], *rule)[0])
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    panels = [
        (x, "X: radiograph (phantom)"),
        (s, "S: soft tissue"),
        (b, "B = X - S: bone"),
        (m, f"M: bone mask (X - S > {tau:.3f}, Otsu)"),
    ]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1 if img is not b else float(b.max()))
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(f"Synthetic chest phantom, seed {seed}, {size} x {size} (clinical polarity)")
    footer = footer_line(f"phantom (seed {seed})", None)
    _finish(fig, None, footer)
    out = _save(fig, path, footer)
    if not show:
        plt.close(fig)
    return out


def _show(ax, img, title, **kw):
    ax.imshow(img, cmap="gray", **({"vmin": 0, "vmax": 1} | kw))
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def data_panels(data, indices=(0, 1, 2), path=None, footer=None):
    """Rows of X, S, X - S and M for a few cases (clinical polarity)."""
    fig, axes = plt.subplots(len(indices), 4, figsize=(12, 3.1 * len(indices)), squeeze=False)
    for row, i in zip(axes, indices):
        b = (data.x[i, 0] - data.s[i, 0]).numpy()
        _show(row[0], data.x[i, 0].numpy(), f"{data.ids[i]}: X")
        _show(row[1], data.s[i, 0].numpy(), "S (soft tissue)")
        _show(row[2], b, f"X - S (bone; window 0 .. {float(b.max()):.3f})", vmin=0, vmax=max(float(b.max()), 1e-6))
        _show(row[3], data.m[i, 0].numpy(), "M (bone mask: white = bone)")
    fig.tight_layout()
    return _finish(fig, path, footer)


def mask_threshold_figure(data, cfg, index=0, fixed=(0.01, 0.02, 0.04), path=None, footer=None):
    """The mask rule's effect: X - S, its histogram with the level ``cfg``'s rule gives, and masks at other levels."""
    x, s = data.x[index : index + 1], data.s[index : index + 1]
    b = (x - s)[0, 0]
    tau = float(mask_thresholds(x, s, cfg.mask_threshold, cfg.mask_min_threshold)[0])
    fig, axes = plt.subplots(1, 3 + len(fixed), figsize=(3.2 * (3 + len(fixed)), 3.4))
    _show(axes[0], b.numpy(), f"X - S (grey window 0 .. {float(b.max()):.3f})", vmin=0, vmax=max(float(b.max()), 1e-6))
    axes[1].hist(b.flatten().numpy(), bins=100, log=True, color="0.4")
    axes[1].axvline(tau, color="r", label=f"Otsu {tau:.3f}")
    axes[1].set_title("histogram of X - S", fontsize=9)
    axes[1].set(xlabel="X - S (intensity, range 0..1)", ylabel="pixels (log scale)")
    axes[1].legend(fontsize=8)
    _show(axes[2], (b > tau).float().numpy(), f"M, Otsu ({tau:.3f})\n{(b > tau).float().mean():.1%} of pixels")
    for ax, t in zip(axes[3:], fixed):
        _show(ax, (b > t).float().numpy(), f"M, fixed {t}\n{(b > t).float().mean():.1%} of pixels")
    fig.tight_layout()
    return _finish(fig, path, footer)


def augmentation_figure(data, cfg, index=0, n=4, seed=0, path=None, footer=None):
    """One training pair under ``n`` random draws of the paired augmentation (X, S, M rows)."""
    aug = PairedAugment.from_config(cfg)
    torch.manual_seed(seed)
    rep = lambda t: t[index : index + 1].repeat(n, 1, 1, 1)  # noqa: E731
    ax_, as_, am = aug(rep(data.x), rep(data.s), rep(data.m))
    fig, axes = plt.subplots(3, n + 1, figsize=(2.6 * (n + 1), 8))
    for r, (orig, new, name) in enumerate(((data.x, ax_, "X"), (data.s, as_, "S"), (data.m, am, "M"))):
        _show(axes[r, 0], orig[index, 0].numpy(), f"{name} original")
        for k in range(n):
            _show(axes[r, k + 1], new[k, 0].numpy(), f"{name} draw {k + 1}")
    fig.tight_layout()
    return _finish(fig, path, footer)


def loss_curves(run_dirs: dict, path=None, footer=None):
    """Training loss and validation PSNR per epoch, one line per run ({label: run_dir})."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for label, run in run_dirs.items():
        log = Path(run) / LOG_FILE
        if not log.exists():
            continue
        df = pd.read_csv(log)
        axes[0].plot(df["epoch"], df["train_loss"], label=label)
        if "val_psnr" in df:
            axes[1].plot(df["epoch"], df["val_psnr"], label=label)
    axes[0].set(xlabel="epoch", ylabel="training loss (eq. 1 terms of the variant)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="validation PSNR (dB)")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path, footer)


def fig2(x, s, preds: dict, ids, path=None, footer=None):
    """Fig. 2: input, each variant's output, ground truth; one row per case."""
    cols = ["Input X", *preds.keys(), "Ground truth S"]
    fig, axes = plt.subplots(len(ids), len(cols), figsize=(2.6 * len(cols), 2.8 * len(ids)), squeeze=False)
    for r, cid in enumerate(ids):
        imgs = [x[r, 0], *[p[r, 0] for p in preds.values()], s[r, 0]]
        for c, (img, name) in enumerate(zip(imgs, cols)):
            _show(axes[r, c], img.numpy(), name if r == 0 else "")
        axes[r, 0].text(-0.05, 0.5, cid, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right", fontsize=8)
    fig.suptitle("Fig. 2: test cases; every panel on the grey window 0 .. 1 (the data's full range), clinical polarity", fontsize=9)
    fig.tight_layout()
    return _finish(fig, path, footer)


def rib_patch(x, s, size: int):
    """Top-left corner of the size x size window where ribs cross the lung fields most: the largest
    sum of bone X - S over pixels darker than the median of S (aerated lung in clinical polarity,
    which leaves out the spine and mediastinum: anatomy.lung_fields), away from the image border."""
    lung = lung_fields(s[None, None])[0, 0].to(x.dtype)
    b = ((x - s).clamp(min=0) * lung)[None, None]
    stride = max(1, size // 4)
    energy = F.avg_pool2d(b, size, stride=stride)[0, 0]
    h, w = energy.shape
    inner = energy.clone()
    inner[: h // 8], inner[-h // 8 :], inner[:, : w // 8], inner[:, -w // 8 :] = 0, 0, 0, 0
    k = int(inner.argmax())
    return (k // w) * stride, (k % w) * stride


def fig3(x, s, preds: dict, ids, patch_frac=0.25, path=None, footer=None):
    """Fig. 3: zoomed patches where ribs cross soft tissue; same columns as Fig. 2.

    Each patch is shown with its own grey window (the patch's 1st-99th percentile of X and S) so
    residual rib edges are visible."""
    size = max(16, int(x.shape[-1] * patch_frac))
    cols = ["Input X", *preds.keys(), "Ground truth S"]
    fig, axes = plt.subplots(len(ids), len(cols), figsize=(2.6 * len(cols), 2.8 * len(ids)), squeeze=False)
    for r, cid in enumerate(ids):
        top, left = rib_patch(x[r, 0], s[r, 0], size)
        crop = lambda t: t[r, 0, top : top + size, left : left + size].numpy()  # noqa: E731

        ref = np.concatenate([crop(x).ravel(), crop(s).ravel()])
        lo, hi = np.percentile(ref, 1), np.percentile(ref, 99)
        imgs = [crop(x), *[crop(p) for p in preds.values()], crop(s)]
        for c, (img, name) in enumerate(zip(imgs, cols)):
            _show(axes[r, c], img, name if r == 0 else "", vmin=lo, vmax=max(hi, lo + 1e-6))
        axes[r, 0].text(-0.05, 0.5, f"{cid}\npatch at row {top}, col {left} px\nwindow {lo:.2f} .. {hi:.2f}",
                        transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right", fontsize=8)  # fmt: skip
    fig.tight_layout()
    return _finish(fig, path, footer)


def gain_chart(per_image, path=None, footer=None):
    """Each variant's gain over doing nothing (PSNR in dB, BSR), with its 95 % interval (over seeds
    when there are several, else over test images), and the paper's values where it has them: its
    BSR, and the PSNR gain its BSR implies, -10 log10(1 - BSR) (table1.implied_identity_psnr)."""
    methods = [m for m in dict.fromkeys(per_image["method"]) if m != IDENTITY]
    table = paper_values()
    paper = table["values"] if table.get("transcribed") else {}
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(methods) + 1.8), squeeze=False)
    for ax, metric, name in ((axes[0, 0], "psnr", "PSNR gain over doing nothing (dB)"), (axes[0, 1], "bsr", "BSR (doing nothing: 0)")):
        rows = [paired_difference(per_image, m, IDENTITY, metric) for m in methods]
        y = list(range(len(methods)))[::-1]
        ax.errorbar([r["mean"] for r in rows], y, xerr=[r["half"] if math.isfinite(r["half"]) else 0 for r in rows], fmt="o", capsize=3, label="ours (95 % interval)")
        pv = [(yy, paper[m]["bsr"]) for yy, m in zip(y, methods) if (paper.get(m) or {}).get("bsr") is not None]
        if pv:
            xs = [-10 * math.log10(1 - b) if metric == "psnr" else b for _, b in pv]
            ax.plot(xs, [yy for yy, _ in pv], "x", color="C3", markersize=9, label="paper")
        ax.axvline(0, color="0.5", lw=1)
        ax.set_yticks(y, methods)
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
        unit = rows[0]["unit"] if rows else "images"
        ax.set_title(f"interval over {unit}", fontsize=9)
    axes[0, 1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _finish(fig, path, footer)


def suppression_panels(res, title: str = "", path=None, footer=None):
    """One suppressed radiograph (suppress.Suppressed): input, soft tissue and removed bone side by
    side, clinical polarity; the bone on its own grey scale (0 to its 99.9th percentile)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    _show(axes[0], res.x, "X: radiograph")
    _show(axes[1], res.s, "S: soft tissue (bones suppressed)")
    top = max(float(np.percentile(res.b, 99.9)), 1e-6)
    _show(axes[2], res.b, f"X - S: removed bone (grey window 0 .. {top:.3f})", vmin=0, vmax=top)
    fig.suptitle(title or f"{res.x.shape[1]} x {res.x.shape[0]} px, stored {res.polarity} ({res.polarity_rule})", fontsize=10)
    fig.tight_layout()
    return _finish(fig, path, footer)


def before_after(x, s, split: float = 0.5, path=None, footer=None):
    """A before/after view: the radiograph left of ``split`` (a fraction of the width), the soft
    tissue right of it, with a line at the boundary."""
    col = int(round(np.clip(split, 0, 1) * x.shape[1]))
    view = np.concatenate([x[:, :col], s[:, col:]], axis=1)
    fig, ax = plt.subplots(figsize=(6.5, 6.5 * x.shape[0] / x.shape[1]))
    _show(ax, view, f"before (left of the line) | after (right), split at {split:.0%}")
    ax.axvline(col - 0.5, color="C1", lw=1.5)
    return _finish(fig, path, footer)


# ------------------------------------------------------------------------------------------------
# What the paper claims, made visible
# ------------------------------------------------------------------------------------------------

#: The layer types Fig. 1 draws, with how each is named there.
_LAYERS = {torch.nn.Conv2d: "conv", torch.nn.ConvTranspose2d: "deconv", torch.nn.MaxPool2d: "max-pool"}


def layer_shapes(cfg) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """The layers of ``cfg.variant``'s network at ``cfg.image_size``, read from the model itself by
    running one zero image through it in training mode (so the segmentation branch runs): for each
    part (encoder, soft-tissue / bone decoder, segmentation branch), its conv, deconv and pooling
    layers in order, each as (description, output shape C x H x W)."""
    model = build_model(cfg).train()
    parts: dict[str, list] = {}
    hooks = []
    for name, module in model.named_modules():
        kind = _LAYERS.get(type(module))
        if kind is None:
            continue
        part = name.split(".")[0]
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        stride = module.stride if isinstance(module.stride, int) else module.stride[0]
        what = f"{kind} {k}x{k}" + (f" /{stride}" if kind == "deconv" and stride > 1 else "")
        hooks.append(module.register_forward_hook(lambda m, i, o, part=part, what=what: parts.setdefault(part, []).append((what, tuple(o.shape[1:])))))
    with torch.no_grad():
        model(torch.zeros(1, 1, cfg.image_size, cfg.image_size))
    for h in hooks:
        h.remove()
    return parts


def architecture(cfg, path=None, footer=None):
    """Fig. 1 as implemented: one row per part of ``cfg.variant``'s network, one box per layer with
    its output shape (channels x height x width) as the model computes it (``layer_shapes``); the
    segmentation branch runs in training only."""
    parts = layer_shapes(cfg)
    width = max(len(layers) for layers in parts.values())
    fig, ax = plt.subplots(figsize=(1.55 * width + 2.2, 1.25 * len(parts) + 0.9))
    for r, (part, layers) in enumerate(parts.items()):
        y = len(parts) - 1 - r
        label = {"encoder": "shared encoder", "soft_tissue": "soft-tissue estimator", "bone_seg": "bone segmentation\n(training only)",
                 "bone_decoder": "bone estimator B_hat\n(S_hat = X - B_hat)"}.get(part, part)  # fmt: skip
        ax.text(-0.2, y, label, ha="right", va="center", fontsize=9)
        for c, (what, shape) in enumerate(layers):
            colour = {"conv": "#cfe2f3", "deconv": "#d9ead3", "max-pool": "#eeeeee"}[what.split()[0]]
            ax.add_patch(plt.Rectangle((c * 1.5, y - 0.38), 1.3, 0.76, facecolor=colour, edgecolor="0.4"))
            ax.text(c * 1.5 + 0.65, y, f"{what}\n{' x '.join(map(str, shape))}", ha="center", va="center", fontsize=7)
            if c:
                ax.annotate("", (c * 1.5, y), (c * 1.5 - 0.2, y), arrowprops=dict(arrowstyle="->", color="0.4"))
    ax.set_xlim(-3.2, width * 1.5)
    ax.set_ylim(-0.7, len(parts) - 0.3)
    ax.axis("off")
    skips = "\nU-Net: each decoder level also reads the encoder level of its size (skip connections not drawn)" if "bone_decoder" in parts else ""
    ax.set_title(f"{cfg.variant} at {cfg.image_size} x {cfg.image_size}: each box a layer and its output (channels x height x width), "
                 f"read from the model{skips}", fontsize=9)  # fmt: skip
    return _finish(fig, path, footer)


def segmentation_panels(x, m, pred_mask, ids, method: str, path=None, footer=None):
    """The disentanglement the paper adds: the segmentation branch's predicted bone mask beside the
    true mask M (X - S thresholded), with the Dice of each case; X for orientation."""
    scores = dice(pred_mask, m)
    fig, axes = plt.subplots(len(ids), 3, figsize=(8.4, 2.9 * len(ids)), squeeze=False)
    for r, cid in enumerate(ids):
        _show(axes[r, 0], x[r, 0].numpy(), f"{cid}: X" if r == 0 else cid)
        _show(axes[r, 1], m[r, 0].numpy(), "M: true bone mask (white = bone)" if r == 0 else "")
        _show(axes[r, 2], pred_mask[r, 0].numpy(), f"{method}: predicted mask, Dice {float(scores[r]):.3f}")
    fig.tight_layout()
    return _finish(fig, path, footer)


def error_maps(s, preds: dict, ids, path=None, footer=None):
    """|S_hat - S| of each method (columns) for a few test cases (rows), on one shared colour scale
    (0 to the 99.5th percentile of all the maps) with its colour bar."""
    errs = {name: (p - s).abs() for name, p in preds.items()}
    top = max(float(torch.quantile(torch.cat([e.flatten() for e in errs.values()])[:10_000_000], 0.995)), 1e-6)
    fig, axes = plt.subplots(len(ids), len(errs), figsize=(2.7 * len(errs) + 0.8, 2.8 * len(ids)), squeeze=False)
    for r, cid in enumerate(ids):
        for c, (name, e) in enumerate(errs.items()):
            im = axes[r, c].imshow(e[r, 0].numpy(), cmap="magma", vmin=0, vmax=top)
            axes[r, c].set_title(f"{name}\nmean {float(e[r, 0].mean()):.4f}" if r == 0 else f"mean {float(e[r, 0].mean()):.4f}", fontsize=8)
            axes[r, c].axis("off")
        axes[r, 0].text(-0.05, 0.5, cid, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="|S_hat - S| (intensity, range 0..1)")
    return _finish(fig, path, footer)


def table_gain_chart(block: pd.DataFrame, title: str, path=None, footer=None):
    """A committed Table 1 block (rows of results/table1.csv for one data set and profile): each
    method's PSNR gain over doing nothing and its BSR, as means over seeds with +- one standard
    deviation over seeds (no interval: the per-image values are not in the table)."""
    ident = block[block["method"] == IDENTITY]
    rows = block[block["method"] != IDENTITY]
    base = float(ident["psnr_mean"].iloc[0]) if len(ident) else float("nan")
    y = list(range(len(rows)))[::-1]
    n_seeds = block_seeds(block)
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 1.9))
    for ax, col, name, shift in ((axes[0], "psnr", "PSNR gain over doing nothing (dB)", base), (axes[1], "bsr", "BSR (doing nothing: 0)", 0.0)):
        ax.errorbar(rows[f"{col}_mean"] - shift, y, xerr=rows[f"{col}_std"].fillna(0) if n_seeds > 1 else None, fmt="o", capsize=3)
        ax.axvline(0, color="0.5", lw=1)
        ax.set_yticks(y, rows["method"])
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{title}: mean over {n_seeds} seed(s)" + (", +- sd over seeds" if n_seeds > 1 else ""), fontsize=9)
    fig.tight_layout()
    return _finish(fig, path, footer)


def msssim_map_figure(x, s, form_note: str = "", path=None, footer=None):
    """Eq. (5) as an image: MS-SSIM(j) of the radiograph X against S at every pixel (the identity's
    map: low where bone differs), beside X and S, with its colour bar (1 = identical structure)."""
    m = ms_ssim_map(x, s)[0, 0]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    _show(axes[0], x[0, 0].numpy(), "X")
    _show(axes[1], s[0, 0].numpy(), "S")
    im = axes[2].imshow(m.numpy(), cmap="viridis", vmin=float(m.min()), vmax=1.0)
    axes[2].set_title(f"MS-SSIM(j) of X against S, mean {float(m.mean()):.4f}{form_note}", fontsize=9)
    axes[2].axis("off")
    fig.colorbar(im, ax=axes[2], shrink=0.85, label="MS-SSIM(j) (1: identical)")
    return _finish(fig, path, footer)


def renderings_figure(x, s, renderings, path=None, footer=None):
    """One pair (X, S: (1, 1, H, W)) under each rendering of ``renderings`` ([(family, name,
    augment.Rendering)], as reporting.shifted.renderings lists them): X on top, X - S (the bone,
    window [0, 0.3]) below, so that what each device does to the radiograph and to its bone shows."""
    fig, axes = plt.subplots(2, len(renderings), figsize=(1.9 * len(renderings), 4.4))
    for k, (family, name, rendering) in enumerate(renderings):
        xr, sr = rendering.apply(x, s, torch.Generator().manual_seed(0))
        _show(axes[0, k], xr[0, 0].numpy(), f"X, {name}")
        _show(axes[1, k], (xr - sr)[0, 0].numpy(), f"X - S (0-0.3), {family}", vmin=0, vmax=0.3)
        for ax in axes[:, k]:
            ax.title.set_fontsize(6)
    fig.tight_layout()
    return _finish(fig, path, footer)


def shifted_gains_figure(rows: pd.DataFrame, models: dict[str, str], path=None, footer=None):
    """PSNR gain over doing nothing per rendering family (reporting.shifted.shifted_rows' rows),
    one bar per model (``models``: {column prefix in rows: label}), and the worst case's gain as a
    dot: below 0, that model made some case worse than doing nothing."""
    fam = shifted_summary(rows, by="family")
    y = np.arange(len(fam))[::-1]
    h = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(fam) + 1.6))
    for k, (prefix, label) in enumerate(models.items()):
        pos = y + 0.4 - h * (k + 0.5)
        bars = ax.barh(pos, fam[f"{prefix}_gain"], height=h, label=f"{label}: mean")
        ax.plot(fam[f"{prefix}_worst_gain"], pos, "o", color=bars.patches[0].get_facecolor(), mec="k", ms=4)
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(y, [f"{f} ({c} cases)" for f, c in zip(fam["family"], fam["cases"])])
    ax.set_xlabel("PSNR gain over doing nothing (dB); dot: the worst case")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return _finish(fig, path, footer)


def error_budget_figure(shares: pd.DataFrame, regions, path=None, footer=None):
    """Where the remaining error lies (anatomy.error_budget's shares, one row per case): the mean
    share by region and by spatial frequency band, each as one bar of stacked parts."""
    means = shares.mean()
    groups = {"by region": list(regions), "by spatial frequency": list(BANDS)}
    fig, ax = plt.subplots(figsize=(8, 2.2))
    for y, (name, keys) in enumerate(groups.items()):
        left = 0.0
        for k in keys:
            ax.barh(y, means[k], left=left, color=plt.cm.tab10(list(means.index).index(k)))
            ax.text(left + means[k] / 2, y, f"{k}\n{means[k]:.0%}", ha="center", va="center", fontsize=7)
            left += means[k]
    ax.set_yticks(range(len(groups)), list(groups))
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of |S_hat - S|^2, mean over {len(shares)} cases")
    fig.tight_layout()
    return _finish(fig, path, footer)
