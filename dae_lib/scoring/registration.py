"""Registration of a soft-tissue image S to its radiograph X: scale and shift, estimated on edges.

The pairs a site brings (dual-energy subtraction, two exposures) are rarely pixel-aligned: a few
pixels of shift and up to a percent or two of scale between the two images are common. A metric
computed on a misaligned pair measures the misalignment (notebook 03's exercises: 1/32 of the width
takes the identity PSNR from 34 to 19 dB). S's grey levels also differ from X's (another rendering),
so the match is made on edges (gradient magnitude after a Gaussian blur), which both images share
where the anatomy is.

The model of the misalignment: S shows X's anatomy scaled by ``scale`` about the image centre and
moved by ``shift`` (rows, columns, in X's pixels): the anatomy at X's pixel p appears in S at
q = c + scale * (p - c) + shift. Rotation is assumed to be zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..phantom import gaussian_blur

#: Registration works on images at most this many pixels on their long side (edges of a chest
#: radiograph are broad; 512 px keeps a 0.2 % scale error at the border under a pixel).
WORK_SIZE = 512
#: Scales searched (S relative to X): 0.90 .. 1.10 in steps of 0.5 %, refined by a parabola.
SCALES = torch.arange(0.90, 1.1001, 0.005).tolist()


#: Below this phase-correlation peak after registration the two images are not of the same anatomy.
#: Measured on phantom pairs at 256 px: re-rendered, shifted and scaled partners 0.15-0.44; another
#: patient's soft tissue, or this one upside down, 0.03-0.09.
MIN_MATCH = 0.12
#: Scales beyond these are not a pair's misalignment but another image.
SCALE_RANGE = (0.9, 1.1)


@dataclass(frozen=True)
class Registration:
    scale: float  # S's anatomy is this much larger than X's
    shift: tuple[float, float]  # rows, columns in X's pixels (where X's centre appears in S, minus the centre)
    quality: float  # the phase correlation's peak at the solution: ~1 identical edges, near 0 no match

    @property
    def matches(self) -> bool:
        """Whether the two images show the same anatomy (MIN_MATCH, SCALE_RANGE)."""
        return self.quality >= MIN_MATCH and SCALE_RANGE[0] < self.scale < SCALE_RANGE[1]

    def worst_px(self, height: int, width: int) -> float:
        """The largest distance between a pixel of X and where its anatomy lies in S (a corner)."""
        dy = abs(self.scale - 1) * height / 2 + abs(self.shift[0])
        dx = abs(self.scale - 1) * width / 2 + abs(self.shift[1])
        return math.hypot(dy, dx)


def edges(img: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Gradient magnitude of the blurred image, scaled to unit mean (the grey rendering cancels)."""
    b = gaussian_blur(img.double(), sigma)
    gy = torch.zeros_like(b)
    gx = torch.zeros_like(b)
    gy[1:-1] = (b[2:] - b[:-2]) / 2
    gx[:, 1:-1] = (b[:, 2:] - b[:, :-2]) / 2
    g = torch.sqrt(gy**2 + gx**2)
    return g / g.mean().clamp(min=1e-12)


def warp(img: torch.Tensor, scale: float, shift: tuple[float, float], size: tuple[int, int] | None = None) -> torch.Tensor:
    """``img`` sampled at q = c + scale * (p - c) + shift for every pixel p of an output of ``size``
    (default: img's); pixels from outside ``img`` are NaN. Bilinear."""
    h, w = img.shape
    oh, ow = size or (h, w)
    ys = (torch.arange(oh, dtype=torch.float64) - (oh - 1) / 2) * scale + (h - 1) / 2 + shift[0]
    xs = (torch.arange(ow, dtype=torch.float64) - (ow - 1) / 2) * scale + (w - 1) / 2 + shift[1]
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx / (w - 1) * 2 - 1, gy / (h - 1) * 2 - 1], dim=-1)[None]
    out = F.grid_sample(img[None, None].double(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0, 0]
    inside = (gy >= 0) & (gy <= h - 1) & (gx >= 0) & (gx <= w - 1)
    return torch.where(inside, out, torch.full_like(out, float("nan"))).to(img.dtype)


def _hann(h: int, w: int) -> torch.Tensor:
    return torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64), torch.hann_window(w, periodic=False, dtype=torch.float64))


def _parabola(m1: float, m0: float, p1: float) -> float:
    """Offset of a parabola's top through (-1, m1), (0, m0), (1, p1), clamped to half a step."""
    d = m1 - 2 * m0 + p1
    return 0.0 if d >= 0 else max(-0.5, min(0.5, 0.5 * (m1 - p1) / d))


def phase_correlation(a: torch.Tensor, b: torch.Tensor) -> tuple[float, tuple[float, float]]:
    """The peak of the phase correlation of two same-size images and the shift t (rows, columns,
    sub-pixel) with a(p) ~ b(p - t)."""
    win = _hann(*a.shape)
    fa, fb = torch.fft.rfft2((a - a.mean()) * win), torch.fft.rfft2((b - b.mean()) * win)
    cross = fa * fb.conj()
    r = torch.fft.irfft2(cross / cross.abs().clamp(min=1e-12), s=a.shape)
    k = int(r.argmax())
    h, w = r.shape
    i, j = k // w, k % w
    dy = _parabola(float(r[(i - 1) % h, j]), float(r[i, j]), float(r[(i + 1) % h, j]))
    dx = _parabola(float(r[i, (j - 1) % w]), float(r[i, j]), float(r[i, (j + 1) % w]))
    ty, tx = i + dy, j + dx
    ty = ty - h if ty > h / 2 else ty
    tx = tx - w if tx > w / 2 else tx
    return float(r[i, j]), (ty, tx)


#: Local shifts are measured in a TILES x TILES grid of windows, each TILE_FRACTION of the image.
TILES, TILE_FRACTION = 3, 0.4
#: Rounds of (measure local shifts, fit scale and shift, resample), from each of STARTS scales with
#: the highest whole-image peaks and from 1 (the peak alone can prefer a wrong scale); the result with
#: the highest peak after alignment wins.
ROUNDS, STARTS = 3, 3
#: A tile whose shift misses the fitted similarity by more than this (work pixels) is an outlier.
OUTLIER_PX = 1.0


def _local_shifts(ex: torch.Tensor, ew: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tile centres (rows, cols, relative to the image centre), the shift t of each tile with
    ex(p) ~ ew(p - t), and each tile's peak (its weight)."""
    h, w = ex.shape
    th, tw = int(h * TILE_FRACTION), int(w * TILE_FRACTION)
    centres, shifts, peaks = [], [], []
    for r in torch.linspace(th / 2, h - th / 2, TILES).tolist():
        for c in torch.linspace(tw / 2, w - tw / 2, TILES).tolist():
            y0, x0 = int(round(r - th / 2)), int(round(c - tw / 2))
            peak, t = phase_correlation(ex[y0 : y0 + th, x0 : x0 + tw], ew[y0 : y0 + th, x0 : x0 + tw])
            centres.append((y0 + (th - 1) / 2 - (h - 1) / 2, x0 + (tw - 1) / 2 - (w - 1) / 2))
            shifts.append(t)
            peaks.append(peak)
    return torch.tensor(centres, dtype=torch.float64), torch.tensor(shifts, dtype=torch.float64), torch.tensor(peaks, dtype=torch.float64)


def _fit_similarity(centres: torch.Tensor, shifts: torch.Tensor, weights: torch.Tensor) -> tuple[float, tuple[float, float]]:
    """Weighted least squares of t_i = a * p_i + b (isotropic a, b in rows and columns)."""
    n = len(centres)
    rows = torch.zeros(2 * n, 3, dtype=torch.float64)
    rows[0::2, 0], rows[0::2, 1] = centres[:, 0], 1.0
    rows[1::2, 0], rows[1::2, 2] = centres[:, 1], 1.0
    target = shifts.reshape(-1)
    sw = weights.repeat_interleave(2).sqrt()
    sol = torch.linalg.lstsq(rows * sw[:, None], (target * sw)[:, None]).solution[:, 0]
    return float(sol[0]), (float(sol[1]), float(sol[2]))


def _robust_similarity(centres: torch.Tensor, shifts: torch.Tensor, weights: torch.Tensor) -> tuple[float, tuple[float, float]]:
    """``_fit_similarity`` without the tiles that disagree: a tile with few edges (a dark corner)
    can lock onto a false peak tens of pixels away; tiles whose shift is off the fit by more than
    OUTLIER_PX (or 3 x the median misfit) are dropped and the fit repeated, twice at most."""
    keep = torch.ones(len(centres), dtype=torch.bool)
    for _ in range(3):
        a, b = _fit_similarity(centres[keep], shifts[keep], weights[keep])
        misfit = (shifts - (a * centres + torch.tensor(b, dtype=torch.float64))).norm(dim=1)
        limit = max(OUTLIER_PX, 3 * float(misfit[keep].median()))
        new = misfit <= limit
        if int(new.sum()) < 3 or torch.equal(new, keep):
            break
        keep = new
    return a, b


def register(x: torch.Tensor, s: torch.Tensor) -> Registration:
    """The scale and shift of S (already on X's grid, same shape) relative to X, found on edges at
    WORK_SIZE: starting scales from the phase correlation's peak over SCALES, then from each ROUNDS of
    local shifts in a grid of tiles fitted by a similarity (t = a (p - c) + b), each round resampling
    S by the estimate so far."""
    h, w = x.shape
    f = max(1.0, max(h, w) / WORK_SIZE)
    size = (round(h / f), round(w / f))
    small = lambda img: F.interpolate(img[None, None].double(), size=size, mode="area")[0, 0]  # noqa: E731
    ex, es = edges(small(x)), edges(small(s))
    peaks = [phase_correlation(ex, torch.nan_to_num(warp(es, c, (0.0, 0.0)), nan=0.0))[0] for c in SCALES]
    best = sorted(range(len(SCALES)), key=peaks.__getitem__)[-STARTS:]
    candidates = [_refine(ex, es, start) for start in dict.fromkeys([1.0, *(SCALES[k] for k in best)])]
    quality, scale, shift = max(candidates)
    return Registration(scale, (shift[0] * f, shift[1] * f), quality)


def _refine(ex: torch.Tensor, es: torch.Tensor, scale: float) -> tuple[float, float, tuple[float, float]]:
    """ROUNDS of local shifts fitted by a similarity, from ``scale``: (quality, scale, shift)."""
    shift = (0.0, 0.0)
    for _ in range(ROUNDS):
        ew = torch.nan_to_num(warp(es, scale, shift), nan=0.0)
        _, (ty, tx) = phase_correlation(ex, ew)  # the whole image first: large shifts
        shift = (shift[0] - scale * ty, shift[1] - scale * tx)
        ew = torch.nan_to_num(warp(es, scale, shift), nan=0.0)
        centres, shifts, tile_peaks = _local_shifts(ex, ew)
        a, (by, bx) = _robust_similarity(centres, shifts, tile_peaks.clamp(min=1e-6))
        # ex(p) ~ ew(p - t(p)), t(p) = a (p - c) + b, ew(q) = es(c + scale (q - c) + shift):
        # X's pixel p appears in S at c + scale (1 - a) (p - c) - scale b + shift.
        scale, shift = scale * (1 - a), (shift[0] - scale * by, shift[1] - scale * bx)
    quality, _ = phase_correlation(ex, torch.nan_to_num(warp(es, scale, shift), nan=0.0))
    return quality, scale, shift


def register_pair(x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, Registration]:
    """S brought to X's size (the same field of view assumed) and its registration to X: what the
    loader (data.load_folder with register_pairs) and ``score`` both start from."""
    if s.shape != x.shape:
        s = F.interpolate(s[None, None], size=x.shape, mode="bilinear", align_corners=False, antialias=True)[0, 0]
    return s, register(x, s)


def align(s: torch.Tensor, reg: Registration) -> torch.Tensor:
    """S resampled onto X's grid by ``reg`` (NaN where S does not cover X)."""
    return warp(s, reg.scale, reg.shift)
