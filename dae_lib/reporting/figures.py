"""Figures. Each function draws one figure and returns it; in a notebook it is shown once, as the
PNG that ``layout`` measures (its text size and overlaps go into the output's metadata), and with
``path`` it is also saved as PNG (written atomically, the same report in a text field). Every
figure carries a provenance line (``footer``: data, profile, training seeds, commit;
pipeline.NotebookSetup.footer): a figure is never saved without one. Images are shown in clinical
polarity on the grey window [0, 1] (the data's full range) unless a panel states another window or
has a colour bar. Figures are at most ``WIDTH_IN`` inches wide (a wider one would be scaled down on
screen, its text with it); rows of many panels wrap (``_grid``)."""
from __future__ import annotations

import math
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import matplotlib.transforms as mtransforms
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
from . import layout
from .anatomy import lung_fields
from .evaluate import IDENTITY
from .shifted import shifted_summary
from .table1 import block_seeds, paired_difference, paper_values


DPI = layout.DPI
#: The widest a figure is drawn (inches): SCREEN_WIDTH px at DPI, so that it is shown unscaled.
WIDTH_IN = layout.SCREEN_WIDTH / DPI
#: The provenance footer's size (points): 10.4 px at DPI, readable (layout.MIN_TEXT_PX) even in a
#: figure a little wider than the screen.
FOOTER_PT = 7.5
#: Space between the figure and its provenance line, in points.
FOOTER_GAP_PT = 6
#: The smallest text the figures use otherwise (points).
SMALL_PT = 7.5


#: The PNG text field that holds a saved figure's provenance line as text too (``saved_footer``),
#: so that a program can read what the footer under the picture says.
FOOTER_FIELD = "Provenance"


def _save(fig, path: Path, footer: str, dpi=DPI) -> Path:
    layout.save_png(fig, path, {FOOTER_FIELD: footer}, dpi)
    return path


def saved_footer(png) -> str | None:
    """The provenance line a saved figure carries (its FOOTER_FIELD), None when it has none."""
    with Image.open(png) as im:
        return im.info.get(FOOTER_FIELD)


def _finish(fig, path, footer: str | None, show: bool = True):
    """Put the provenance line under the figure, with ``path`` save it (refused without a footer),
    and in a notebook show it once with its layout report (``layout.show``; then it is closed)."""
    if footer:
        below = mtransforms.offset_copy(fig.transFigure, fig=fig, y=-FOOTER_GAP_PT, units="points")  # clear of a legend at the bottom
        fig.text(0.5, 0.0, footer, ha="center", va="top", fontsize=FOOTER_PT, color="0.3", transform=below)
    if path:
        if not footer:
            raise ValueError(f"{path}: a saved figure carries its provenance line (footer=: data, profile, seeds, commit)")
        _save(fig, resolve(path), footer)
    if show:
        layout.show(fig, DPI, {FOOTER_FIELD: footer} if footer else None)
    return fig


def _legend_beside(ax) -> None:
    """The axes' legend to its right, never over what it labels (an axes legend is laid out with its
    axes; a figure legend "outside" was drawn over the provenance line in the saved PNG)."""
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, at most ``max_cols`` a row (a long row wraps)."""
    rows = max(1, math.ceil(n / max_cols))
    return rows, math.ceil(n / rows)


def show_png(png) -> None:
    """Show a saved PNG in a notebook (a score montage, a committed figure) with its layout report."""
    layout.show_png(png)


def phantom_sample_figure(path=None, size: int = 512, seed: int = 0, show: bool = False) -> Path:
    """One phantom case: X, S, B = X - S and the bone mask M (figures/phantom_sample.png)."""
    path = resolve(path) if path else FIGURES_DIR / "phantom_sample.png"
    if path.resolve().is_relative_to(FIGURES_DIR.resolve()):
        check_publishable(REPO_ROOT)  # a committed figure: from committed code only
    x, s, b = chest_phantom(size, seed)
    rule = (Config().mask_threshold, Config().mask_min_threshold)  # the default mask rule
    m = bone_mask(x[None, None], s[None, None], *rule)[0, 0]
    tau = float(mask_thresholds(x[None, None], s[None, None], *rule)[0])
    fig, axes = plt.subplots(2, 2, figsize=(8.4, 9), layout="constrained")
    panels = [
        (x, "X: radiograph (phantom)"),
        (s, "S: soft tissue"),
        (b, "B = X - S: bone"),
        (m, f"M: bone mask (X - S > {tau:.3f}, Otsu)"),
    ]
    for ax, (img, title) in zip(axes.flat, panels):
        ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1 if img is not b else float(b.max()))
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle(f"Synthetic chest phantom, seed {seed}, {size} x {size} (clinical polarity)")
    footer = footer_line(f"phantom (seed {seed})", None)
    _finish(fig, None, footer, show=False)
    out = _save(fig, path, footer)
    if show:
        layout.show(fig, DPI, {FOOTER_FIELD: footer})
    plt.close(fig)
    return out


def _show(ax, img, title, fontsize=9, **kw):
    ax.imshow(img, cmap="gray", **({"vmin": 0, "vmax": 1} | kw))
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")


def data_panels(data, indices=(0, 1, 2), path=None, footer=None):
    """Rows of X, S, X - S and M for a few cases (clinical polarity)."""
    fig, axes = plt.subplots(len(indices), 4, figsize=(WIDTH_IN, 2.75 * len(indices)), squeeze=False, layout="constrained")
    for row, i in zip(axes, indices):
        b = (data.x[i, 0] - data.s[i, 0]).numpy()
        _show(row[0], data.x[i, 0].numpy(), f"{data.ids[i]}: X")
        _show(row[1], data.s[i, 0].numpy(), "S (soft tissue)")
        _show(row[2], b, f"X - S (bone)\nwindow 0 .. {float(b.max()):.3f}", vmin=0, vmax=max(float(b.max()), 1e-6))
        _show(row[3], data.m[i, 0].numpy(), "M (bone mask)\nwhite = bone")
    return _finish(fig, path, footer)


def mask_threshold_figure(data, cfg, index=0, fixed=(0.01, 0.02, 0.04), path=None, footer=None):
    """The mask rule's effect: X - S, its histogram with the level ``cfg``'s rule gives, and masks at other levels."""
    x, s = data.x[index : index + 1], data.s[index : index + 1]
    b = (x - s)[0, 0]
    tau = float(mask_thresholds(x, s, cfg.mask_threshold, cfg.mask_min_threshold)[0])
    rows, cols = _grid(3 + len(fixed), 3)
    fig, grid = plt.subplots(rows, cols, figsize=(WIDTH_IN, 3.3 * rows), squeeze=False, layout="constrained")
    axes = grid.flat
    for ax in axes[3 + len(fixed):]:
        ax.axis("off")
    _show(axes[0], b.numpy(), f"X - S\ngrey window 0 .. {float(b.max()):.3f}", vmin=0, vmax=max(float(b.max()), 1e-6))
    axes[1].hist(b.flatten().numpy(), bins=100, log=True, color="0.4")
    axes[1].axvline(tau, color="r", label=f"Otsu {tau:.3f}")
    axes[1].set_title("histogram of X - S", fontsize=9)
    axes[1].set(xlabel="X - S (intensity, 0..1)", ylabel="pixels (log scale)")
    axes[1].legend(fontsize=8)
    _show(axes[2], (b > tau).float().numpy(), f"M, Otsu ({tau:.3f})\n{(b > tau).float().mean():.1%} of pixels")
    for ax, t in zip(axes[3:], fixed):
        _show(ax, (b > t).float().numpy(), f"M, fixed {t}\n{(b > t).float().mean():.1%} of pixels")
    return _finish(fig, path, footer)


def augmentation_figure(data, cfg, index=0, n=4, seed=0, path=None, footer=None):
    """One training pair under ``n`` random draws of the paired augmentation (X, S, M rows)."""
    aug = PairedAugment.from_config(cfg)
    torch.manual_seed(seed)
    rep = lambda t: t[index : index + 1].repeat(n, 1, 1, 1)  # noqa: E731
    ax_, as_, am = aug(rep(data.x), rep(data.s), rep(data.m))
    fig, axes = plt.subplots(3, n + 1, figsize=(min(WIDTH_IN, 2.2 * (n + 1)), 6.9), layout="constrained")
    for r, (orig, new, name) in enumerate(((data.x, ax_, "X"), (data.s, as_, "S"), (data.m, am, "M"))):
        _show(axes[r, 0], orig[index, 0].numpy(), f"{name} original")
        for k in range(n):
            _show(axes[r, k + 1], new[k, 0].numpy(), f"{name} draw {k + 1}")
    return _finish(fig, path, footer)


def loss_curves(run_dirs: dict, path=None, footer=None):
    """Per epoch, one line per run ({label: run_dir}): the validation PSNR (dB), comparable across
    variants, and the training loss relative to its first epoch (each variant's loss has its own
    terms and weights, lm = 1 or 100, so only its own course is comparable); the legend beside them."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.9), layout="constrained")
    for label, run in run_dirs.items():
        log = Path(run) / LOG_FILE
        if not log.exists():
            continue
        df = pd.read_csv(log)
        if "val_psnr" in df:
            axes[0].plot(df["epoch"], df["val_psnr"], marker=".", label=label)
        axes[1].plot(df["epoch"], df["train_loss"] / float(df["train_loss"].iloc[0]), marker=".", label=label)
    axes[0].set(xlabel="epoch", ylabel="validation PSNR (dB)", title="validation PSNR (higher is better)")
    axes[1].set(xlabel="epoch", ylabel="training loss / loss of epoch 1", yscale="log",
                title="training loss, relative to epoch 1\n(each variant's own loss terms: compare courses, not levels)")
    for ax in axes:
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    if axes[1].get_legend_handles_labels()[0]:
        _legend_beside(axes[1])
    return _finish(fig, path, footer)


def fig2(x, s, preds: dict, ids, path=None, footer=None):
    """Fig. 2: input, each variant's output, ground truth; for each case a second row of
    differences from S (X - S under the input: doing nothing's error; S_hat - S under each variant)
    on one symmetric window per case (its colour bar), where the variants' differences show."""
    cols = ["Input X", *preds.keys(), "Ground truth S"]
    fig, axes = plt.subplots(2 * len(ids), len(cols), figsize=(WIDTH_IN, 3.2 * len(ids) * WIDTH_IN / (1.5 * len(cols))),
                             squeeze=False, layout="constrained")  # fmt: skip
    for r, cid in enumerate(ids):
        imgs = [x[r, 0], *[p[r, 0] for p in preds.values()], s[r, 0]]
        top = max(float(torch.quantile((x[r, 0] - s[r, 0]).abs().flatten(), 0.995)), 1e-6)
        for c, (img, name) in enumerate(zip(imgs, cols)):
            _show(axes[2 * r, c], img.numpy(), name if r == 0 else "", fontsize=8)
            diff = axes[2 * r + 1, c]
            if c < len(cols) - 1:
                im = diff.imshow((img - s[r, 0]).numpy(), cmap="RdBu_r", vmin=-top, vmax=top)
                diff.set_title(("X - S" if c == 0 else "S_hat - S") + f"\nRMS {float((img - s[r, 0]).pow(2).mean().sqrt()):.4f}", fontsize=8)
            diff.axis("off")
        fig.colorbar(im, ax=axes[2 * r + 1, -1], fraction=0.9, label=f"difference\n(+-{top:.3f})")
        axes[2 * r, 0].text(-0.05, 0.5, cid, transform=axes[2 * r, 0].transAxes, rotation=90, va="center", ha="right", fontsize=8)
    fig.suptitle("Fig. 2: test cases; images on the grey window 0 .. 1, clinical polarity; below each, its difference from S", fontsize=9)
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
    side = WIDTH_IN / (len(cols) + 0.4)
    fig, axes = plt.subplots(len(ids), len(cols), figsize=(WIDTH_IN, (side + 0.45) * len(ids) + 0.3), squeeze=False, layout="constrained")
    for r, cid in enumerate(ids):
        top, left = rib_patch(x[r, 0], s[r, 0], size)
        crop = lambda t: t[r, 0, top : top + size, left : left + size].numpy()  # noqa: E731

        ref = np.concatenate([crop(x).ravel(), crop(s).ravel()])
        lo, hi = np.percentile(ref, 1), np.percentile(ref, 99)
        imgs = [crop(x), *[crop(p) for p in preds.values()], crop(s)]
        for c, (img, name) in enumerate(zip(imgs, cols)):
            _show(axes[r, c], img, name if r == 0 else "", fontsize=8, vmin=lo, vmax=max(hi, lo + 1e-6))
        axes[r, 0].text(-0.05, 0.5, f"{cid}\nat ({top}, {left}) px\nwindow {lo:.2f}..{hi:.2f}",
                        transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right", fontsize=SMALL_PT)  # fmt: skip
    return _finish(fig, path, footer)


def gain_chart(per_image, path=None, footer=None):
    """Each variant's gain over doing nothing (PSNR in dB, BSR), with its 95 % interval (over seeds
    when there are several, else over test images), and the paper's values where it has them: its
    BSR, and the PSNR gain its BSR implies, -10 log10(1 - BSR) (table1.implied_identity_psnr)."""
    methods = [m for m in dict.fromkeys(per_image["method"]) if m != IDENTITY]
    table = paper_values()
    paper = table["values"] if table.get("transcribed") else {}
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 0.45 * len(methods) + 1.9), squeeze=False, layout="constrained")
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
    return _finish(fig, path, footer)


def suppression_panels(res, title: str = "", path=None, footer=None):
    """One suppressed radiograph (suppress.Suppressed): input, soft tissue and removed bone side by
    side, clinical polarity; the bone on its own grey scale (0 to its 99.9th percentile)."""
    fig, axes = plt.subplots(1, 3, figsize=(WIDTH_IN, 3.9 * res.x.shape[0] / res.x.shape[1] + 0.9), layout="constrained")
    _show(axes[0], res.x, "X: radiograph")
    _show(axes[1], res.s, "S: soft tissue\n(bones suppressed)")
    top = max(float(np.percentile(res.b, 99.9)), 1e-6)
    _show(axes[2], res.b, f"X - S: removed bone\ngrey window 0 .. {top:.3f}", vmin=0, vmax=top)
    fig.suptitle(title or f"{res.x.shape[1]} x {res.x.shape[0]} px, stored {res.polarity} ({res.polarity_rule})", fontsize=10)
    return _finish(fig, path, footer)


def before_after(x, s, split: float = 0.5, path=None, footer=None):
    """A before/after view: the radiograph left of ``split`` (a fraction of the width), the soft
    tissue right of it, with a line at the boundary."""
    col = int(round(np.clip(split, 0, 1) * x.shape[1]))
    view = np.concatenate([x[:, :col], s[:, col:]], axis=1)
    fig, ax = plt.subplots(figsize=(6.5, 6.5 * x.shape[0] / x.shape[1] + 0.4), layout="constrained")
    _show(ax, view, f"before (left of the line) | after (right), split at {split:.0%}")
    ax.axvline(col - 0.5, color="C1", lw=1.5)
    return _finish(fig, path, footer)


#: What a stored notebook shows in place of the slider (a widget needs a live kernel).
SLIDER_FALLBACK = "Static view above (split at 50 %); in a live kernel with ipywidgets, a slider below moves the split."


def before_after_slider(x, s, footer=None):
    """The before/after view once as a static image (what a stored notebook keeps), then, in a live
    kernel with ipywidgets, a slider that redraws it at another split."""
    before_after(x, s, 0.5, footer=footer)
    print(SLIDER_FALLBACK)
    if not layout.inline():
        return None
    out = widgets.Output()

    def redraw(change):
        with out:
            out.clear_output(wait=True)
            before_after(x, s, change["new"], footer=footer)

    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="split", continuous_update=False)
    slider.observe(redraw, names="value")
    return widgets.VBox([slider, out])


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
        what = f"{kind} {k}x{k}" + (f" up x{stride}" if kind == "deconv" and stride > 1 else "")
        hooks.append(module.register_forward_hook(lambda m, i, o, part=part, what=what: parts.setdefault(part, []).append((what, tuple(o.shape[1:])))))
    with torch.no_grad():
        model(torch.zeros(1, 1, cfg.image_size, cfg.image_size))
    for h in hooks:
        h.remove()
    return parts


#: Fig. 1's boxes a line: a part with more layers continues on the next line.
BOXES_PER_LINE = 6


def merged_layers(layers: list[tuple[str, tuple[int, ...]]]) -> list[tuple[str, tuple[int, ...]]]:
    """``layer_shapes``' layers of one part with runs of the same layer and output shape merged
    into one box ("2 x conv 3x3"), so that Fig. 1 draws blocks, not every convolution."""
    out: list[list] = []
    for what, shape in layers:
        if out and out[-1][1] == what and out[-1][2] == shape:
            out[-1][0] += 1
        else:
            out.append([1, what, shape])
    return [(f"{n} x {what}" if n > 1 else what, shape) for n, what, shape in out]


def architecture(cfg, path=None, footer=None):
    """Fig. 1 as implemented: one band per part of ``cfg.variant``'s network, one box per layer (runs
    of alike layers merged: ``merged_layers``) with its output shape (channels x height x width) as
    the model computes it (``layer_shapes``), BOXES_PER_LINE boxes a line; the segmentation branch
    runs in training only."""
    parts = {part: merged_layers(layers) for part, layers in layer_shapes(cfg).items()}
    lines = [(part, k, layers[k : k + BOXES_PER_LINE]) for part, layers in parts.items() for k in range(0, len(layers), BOXES_PER_LINE)]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.78 * len(lines) + 1.0), layout="constrained")
    names = {"encoder": "shared encoder", "soft_tissue": "soft-tissue estimator", "bone_seg": "bone segmentation\n(training only)",
             "bone_decoder": "bone estimator B_hat\n(S_hat = X - B_hat)"}  # fmt: skip
    for r, (part, start, layers) in enumerate(lines):
        y = len(lines) - 1 - r
        if start == 0:
            ax.text(-0.25, y, names.get(part, part), ha="right", va="center", fontsize=9)
        for c, (what, shape) in enumerate(layers):
            kind = what.split()[2] if what[0].isdigit() else what.split()[0]  # "2 x conv 3x3" or "conv 3x3"
            colour = {"conv": "#cfe2f3", "deconv": "#d9ead3", "max-pool": "#eeeeee"}[kind]
            ax.add_patch(plt.Rectangle((c * 1.5, y - 0.4), 1.3, 0.8, facecolor=colour, edgecolor="0.4"))
            ax.text(c * 1.5 + 0.65, y, f"{what}\n{' x '.join(map(str, shape))}", ha="center", va="center", fontsize=SMALL_PT)
            if c or start:
                ax.annotate("", (c * 1.5, y), (c * 1.5 - 0.2, y), arrowprops=dict(arrowstyle="->", color="0.4"))
    ax.set_xlim(-3.3, BOXES_PER_LINE * 1.5)
    ax.set_ylim(-0.6, len(lines) - 0.4)
    ax.axis("off")
    skips = "\nU-Net: each decoder level also reads the encoder level of its size (skip connections not drawn)" if "bone_decoder" in parts else ""
    ax.set_title(f"{cfg.variant} at {cfg.image_size} x {cfg.image_size}: each box a layer (alike layers merged) and its output\n"
                 f"(channels x height x width), read from the model{skips}", fontsize=9)  # fmt: skip
    return _finish(fig, path, footer)


def segmentation_panels(x, m, pred_mask, ids, method: str, path=None, footer=None):
    """The disentanglement the paper adds: the segmentation branch's predicted bone mask beside the
    true mask M (X - S thresholded), with the Dice of each case; X for orientation."""
    scores = dice(pred_mask, m)
    fig, axes = plt.subplots(len(ids), 3, figsize=(8.4, 2.9 * len(ids)), squeeze=False, layout="constrained")
    for r, cid in enumerate(ids):
        _show(axes[r, 0], x[r, 0].numpy(), f"{cid}: X" if r == 0 else cid)
        _show(axes[r, 1], m[r, 0].numpy(), "M: true bone mask\n(white = bone)" if r == 0 else "")
        _show(axes[r, 2], pred_mask[r, 0].numpy(), f"{method}: predicted mask\nDice {float(scores[r]):.3f}")
    return _finish(fig, path, footer)


def error_maps(s, preds: dict, ids, path=None, footer=None, max_cols: int = 5):
    """|S_hat - S| of each method for a few test cases, each case's methods in rows of at most
    ``max_cols`` panels, on one shared colour scale (0 to the 99.5th percentile of all the maps)
    with its colour bar."""
    errs = {name: (p - s).abs() for name, p in preds.items()}
    top = max(float(torch.quantile(torch.cat([e.flatten() for e in errs.values()])[:10_000_000], 0.995)), 1e-6)
    rows, cols = _grid(len(errs), max_cols)
    fig, axes = plt.subplots(rows * len(ids), cols, figsize=(WIDTH_IN, (WIDTH_IN / (cols + 0.5) + 0.5) * rows * len(ids)), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for r, cid in enumerate(ids):
        for k, (name, e) in enumerate(errs.items()):
            ax = axes[r * rows + k // cols, k % cols]
            im = ax.imshow(e[r, 0].numpy(), cmap="magma", vmin=0, vmax=top)
            ax.set_title(f"{cid}: {name}\nmean {float(e[r, 0].mean()):.4f}", fontsize=SMALL_PT)
    fig.colorbar(im, ax=axes, shrink=0.8, label="|S_hat - S| (intensity, 0..1)")
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
    fig, axes = plt.subplots(1, 2, figsize=(WIDTH_IN, 0.45 * len(rows) + 2.0), layout="constrained")
    for ax, col, name, shift in ((axes[0], "psnr", "PSNR gain over doing nothing (dB)", base), (axes[1], "bsr", "BSR (doing nothing: 0)", 0.0)):
        ax.errorbar(rows[f"{col}_mean"] - shift, y, xerr=rows[f"{col}_std"].fillna(0) if n_seeds > 1 else None, fmt="o", capsize=3)
        ax.axvline(0, color="0.5", lw=1)
        ax.set_yticks(y, rows["method"])
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: mean over {n_seeds} seed(s)" + (", +- sd over seeds" if n_seeds > 1 else ""), fontsize=9)
    return _finish(fig, path, footer)


def msssim_map_figure(x, s, form_note: str = "", path=None, footer=None):
    """Eq. (5) as an image: MS-SSIM(j) of the radiograph X against S at every pixel (the identity's
    map: low where bone differs), beside X and S, with its colour bar (1 = identical structure)."""
    m = ms_ssim_map(x, s)[0, 0]
    fig, axes = plt.subplots(1, 3, figsize=(WIDTH_IN, 3.9), layout="constrained")
    _show(axes[0], x[0, 0].numpy(), "X")
    _show(axes[1], s[0, 0].numpy(), "S")
    im = axes[2].imshow(m.numpy(), cmap="viridis", vmin=float(m.min()), vmax=1.0)
    axes[2].set_title(f"MS-SSIM(j) of X against S\nmean {float(m.mean()):.4f}{form_note}", fontsize=9)
    axes[2].axis("off")
    fig.colorbar(im, ax=axes[2], shrink=0.85, label="MS-SSIM(j) (1: identical)")
    return _finish(fig, path, footer)


def renderings_figure(x, s, renderings, path=None, footer=None, max_cols: int = 6):
    """One pair (X, S: (1, 1, H, W)) under each rendering of ``renderings`` ([(family, name,
    augment.Rendering)], as reporting.shifted.renderings lists them): X above, X - S (the bone,
    window [0, 0.3]) below, at most ``max_cols`` renderings a row, so that what each device does to
    the radiograph and to its bone shows."""
    bands, cols = _grid(len(renderings), max_cols)
    fig, axes = plt.subplots(2 * bands, cols, figsize=(WIDTH_IN, 2 * bands * (WIDTH_IN / cols + 0.35)), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for k, (family, name, rendering) in enumerate(renderings):
        xr, sr = rendering.apply(x, s, torch.Generator().manual_seed(0))
        row, col = 2 * (k // cols), k % cols
        _show(axes[row, col], xr[0, 0].numpy(), f"X, {name}", fontsize=SMALL_PT)
        _show(axes[row + 1, col], (xr - sr)[0, 0].numpy(), f"X - S (0-0.3)\n{family}", fontsize=SMALL_PT, vmin=0, vmax=0.3)
    return _finish(fig, path, footer)


def shifted_gains_figure(rows: pd.DataFrame, models: dict[str, str], path=None, footer=None):
    """PSNR gain over doing nothing per rendering family (reporting.shifted.shifted_rows' rows),
    one bar per model (``models``: {column prefix in rows: label}), and the worst case's gain as a
    dot: below 0, that model made some case worse than doing nothing."""
    fam = shifted_summary(rows, by="family")
    y = np.arange(len(fam))[::-1]
    h = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(fam) + 1.6), layout="constrained")
    for k, (prefix, label) in enumerate(models.items()):
        pos = y + 0.4 - h * (k + 0.5)
        bars = ax.barh(pos, fam[f"{prefix}_gain"], height=h, label=f"{label}: mean")
        ax.plot(fam[f"{prefix}_worst_gain"], pos, "o", color=bars.patches[0].get_facecolor(), mec="k", ms=4)
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(y, [f"{f} ({c} cases)" for f, c in zip(fam["family"], fam["cases"])])
    ax.set_xlabel("PSNR gain over doing nothing (dB); dot: the worst case")
    _legend_beside(ax)
    ax.grid(alpha=0.3, axis="x")
    return _finish(fig, path, footer)
