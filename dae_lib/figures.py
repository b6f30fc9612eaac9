"""Figures. Each function draws one figure, saves it as PNG and returns the path."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .masks import bone_mask, mask_thresholds
from .paths import FIGURES_DIR, resolve
from .phantom import chest_phantom


def _save(fig, path: Path, dpi=100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    tmp.replace(path)
    return path


def phantom_sample_figure(path=None, size: int = 512, seed: int = 0, show: bool = False) -> Path:
    """One phantom case: X, S, B = X - S and the bone mask M (figures/phantom_sample.png)."""
    path = resolve(path) if path else FIGURES_DIR / "phantom_sample.png"
    x, s, b = chest_phantom(size, seed)
    m = bone_mask(x[None, None], s[None, None])[0, 0]
    tau = float(mask_thresholds(x[None, None], s[None, None])[0])
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
    out = _save(fig, path)
    if not show:
        plt.close(fig)
    return out
