"""Score bone suppression on your own pairs: ``python -m dae_lib score X_DIR S_DIR --out DIR``.

A site that wants to know whether bone suppression works on its radiographs has pairs: a radiograph
X and a soft-tissue image S of the same patient, from dual-energy subtraction (DES) or a BSE
program. This command runs the model (the released one unless ``--weights``) on each X and scores
its soft tissue S_hat against S, beside doing nothing (S_hat = X), pair by pair:

1. Pairs are matched by file stem (``X_DIR/case7.png`` with ``S_DIR/case7.jpg``), or read from one
   folder in a layout the loader knows (``--pairs``); any format, size, bit depth and polarity that
   ``suppress`` reads; S is brought to X's size, each image's polarity decided as ``suppress`` does.
2. S is registered to X (``registration.register``: scale and shift on edges). A pair off by more
   than ``--tolerance`` pixels is reported; with ``--register`` S is resampled onto X first.
3. Scores on the overlap of the two, minus a border (``BORDER``): PSNR, SSIM and BSR as Table 1
   computes them ("raw"), and "fitted": each candidate (S_hat, and X for doing nothing) mapped to S's
   grey levels by its own least-squares affine fit a * image + b before PSNR and BSR, since a DES
   image renders grey levels differently from the radiograph (raw PSNR then measures the rendering);
   "monotone-fitted": the same with a monotone map (``monotone_fit``), which a gamma cannot fool.
4. Written to ``--out`` only (never beside the inputs; nothing replaced): ``scores.csv`` (one row per
   pair: files, polarity decided, registration, raw and fitted metrics of both), ``scores.md`` (means,
   the paired difference model - identity with its 95 % interval, the cases worse than doing
   nothing) and a montage PNG per pair.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .. import metrics
from ..atomic import atomic_path
from ..config import POLARITIES, check_choice
from ..data import find_pairs
from ..device import pick_device
from ..errors import InputError, RunDirError
from ..phantom import gaussian_blur
from ..radiograph import clinical_pixels, is_candidate, read_radiograph
from ..reporting import layout
from ..reporting.stats import mean_interval
from ..runs import TrainedModel, git_commit
from ..suppress import check_out_folder, load_suppression_model, suppress_radiograph
from ..device import report_seconds, since
from .registration import Registration, align, register_pair

#: Pixels left out at every edge of the overlap (interpolation and the model's own border).
BORDER = 16
#: A pair whose anatomy is displaced by more than this many pixels somewhere (registration.worst_px)
#: is reported as misaligned; with --register, S is resampled onto X first.
TOLERANCE_PX = 1.0
SCORES_CSV, SCORES_MD, MONTAGE_DIR = "scores.csv", "scores.md", "montage"


@dataclass(frozen=True)
class PairFiles:
    case: str
    x: Path
    s: Path
    lungs: Path | None = None  # its lung-field mask, when scored inside one


def _candidates(folder: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith(".") and is_candidate(f):
            out.setdefault(f.stem.casefold(), []).append(f)
    return out


def match_pairs(x_dir: Path, s_dir: Path | None = None) -> tuple[list[PairFiles], list[str]]:
    """The pairs to score and one line for each file left without one. With ``s_dir``: files of the
    two folders matched by stem (case-insensitive); without: ``x_dir`` holds a data folder in a
    layout the loader knows (JSRT/ + BSE_JSRT/, the Kaggle one)."""
    if s_dir is None:
        return [PairFiles(p.x_path.stem, p.x_path, p.s_path) for p in find_pairs(x_dir)], []  # the file's own name, as with two folders
    for d in (x_dir, s_dir):
        if not Path(d).is_dir():
            raise InputError(f"{d}: no such folder")
    xs, ss = _candidates(Path(x_dir)), _candidates(Path(s_dir))
    pairs, problems = [], []
    for stem in sorted(set(xs) | set(ss)):
        if len(xs.get(stem, [])) > 1 or len(ss.get(stem, [])) > 1:
            problems.append(f"{', '.join(map(str, xs.get(stem, []) + ss.get(stem, [])))}: more than one file named {stem!r} in a folder; skipped")
        elif stem not in ss:
            problems.append(f"{xs[stem][0]}: no soft-tissue image of that name in {s_dir}; skipped")
        elif stem not in xs:
            problems.append(f"{ss[stem][0]}: no radiograph of that name in {x_dir}; skipped")
        else:
            pairs.append(PairFiles(xs[stem][0].stem, xs[stem][0], ss[stem][0]))
    if not pairs:
        raise InputError(f"{x_dir}, {s_dir}: no pair of files with the same name" + (f" ({problems[0]})" if problems else ""))
    return pairs, problems


def attach_lungs(pairs: list[PairFiles], lungs: Path) -> tuple[list[PairFiles], list[str]]:
    """Each pair with its lung-field mask from ``lungs`` (matched by X's file stem, case-insensitive),
    and one line for each pair left without one (skipped: scores inside and outside the lungs do not mix)."""
    if not Path(lungs).is_dir():
        what = "a file, not a folder of masks" if Path(lungs).exists() else "no such folder"
        raise InputError(f"{lungs}: {what} (--lungs takes a folder of lung masks named as the radiographs)")
    masks = _candidates(Path(lungs))
    kept, problems = [], []
    for p in pairs:
        found = masks.get(p.x.stem.casefold(), [])
        if len(found) == 1:
            kept.append(dataclasses.replace(p, lungs=found[0]))
        else:
            problems.append(f"{p.x}: {'no lung mask of that name' if not found else 'more than one lung mask of that name'} in {lungs}; skipped")
    return kept, problems


def affine_fit(c: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``c`` mapped to ``target``'s grey levels by the least-squares a * c + b (per image)."""
    c, t = c.double(), target.double()
    cm, tm = c.mean(), t.mean()
    var = ((c - cm) ** 2).mean()
    a = ((c - cm) * (t - tm)).mean() / var if var > 0 else torch.zeros(())
    return a * (c - cm) + tm


#: Quantile bins of the candidate's grey levels for the monotone fit (each holds thousands of pixels
#: at radiograph sizes, so the fit cannot follow anatomy, only the grey curve).
MONOTONE_BINS = 256


def monotone_fit(c: torch.Tensor, target: torch.Tensor, bins: int = MONOTONE_BINS) -> torch.Tensor:
    """``c`` mapped to ``target``'s grey levels by the least-squares monotone function of c
    (non-decreasing, or non-increasing when c and target are negatively correlated): the mean of
    the target in each of ``bins`` quantile bins of c, made monotone by pooling adjacent violators
    (isotonic regression, weighted by the bins' pixel counts), interpolated between bin centres.
    Cancels any monotone difference of grey curves (a gamma, a contrast curve), which the affine
    fit leaves in both errors."""
    c, t = c.double().flatten(), target.double().flatten()
    order = torch.argsort(c)
    cs, ts = c[order], t[order]
    sign = 1.0 if float(((c - c.mean()) * (t - t.mean())).sum()) >= 0 else -1.0
    edges = torch.linspace(0, len(cs), min(bins, len(cs)) + 1).round().long().tolist()
    centres, blocks = [], []  # blocks: [mean of sign * target, pixels, bins pooled]
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            centres.append(float(cs[a:b].mean()))
            blocks.append([sign * float(ts[a:b].mean()), b - a, 1])
            while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
                y2, w2, n2 = blocks.pop()
                y1, w1, n1 = blocks.pop()
                blocks.append([(y1 * w1 + y2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    levels = [sign * y for y, _, n in blocks for _ in range(n)]
    return torch.from_numpy(np.interp(c.numpy(), centres, levels)).reshape(target.shape)


#: The blurs tried for the sharpness-matched baseline, Gaussian sigma in px of the pair's own
#: resolution: 0 (doing nothing) to 8 px, finer where small blurs differ most.
BLUR_SIGMAS_PX = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)


def sharpness_matched_identity(x: torch.Tensor, s: torch.Tensor, sigmas=BLUR_SIGMAS_PX, fit=None) -> tuple[float, torch.Tensor]:
    """Doing nothing, low-passed as much as S is: X blurred by the Gaussian of ``sigmas`` (px)
    whose fitted version (``fit``: ``monotone_fit`` unless given) lies closest to S in mean squared
    error; returns that sigma and the blurred X (H, W, before the fit).

    A site whose soft-tissue images are smoother and less noisy than its radiographs rewards any
    smoothing: a blur of X alone then "gains" over doing nothing without removing bone. Scored
    against this baseline instead, a gain is what the model adds beyond the best blur.
    """
    fit = monotone_fit if fit is None else fit
    best = None
    for sigma in sigmas:
        blurred = gaussian_blur(x.double(), float(sigma)) if sigma > 0 else x.double()
        err = float(((fit(blurred, s.double()) - s.double()) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, float(sigma), blurred)
    return best[1], best[2].to(x.dtype)


def pair_metrics(x: torch.Tensor, s: torch.Tensor, s_hat: torch.Tensor, region: torch.Tensor | None = None) -> dict[str, float]:
    """Raw and fitted scores of doing nothing (X) and of S_hat against S, on images (H, W) in [0, 1]:
    raw PSNR, SSIM, BSR as Table 1 computes them (data range 1); fitted: each candidate mapped to S's
    grey levels by its own affine fit first, PSNR on S's own range (max - min) and the BSR of the
    fitted S_hat against the fitted identity, so that an affine change of S's grey levels changes
    neither; "mono": the same with a monotone fit (``monotone_fit``), so that a non-linear grey curve
    of S (a gamma) changes them little either. With ``region`` (H, W, 0/1: the lung fields), every score, fit and range over its
    pixels only (SSIM: its map averaged there)."""
    x4, s4, h4 = (t.double()[None, None] for t in (x, s, s_hat))
    r4 = torch.ones_like(x4) if region is None else region.double()[None, None]
    inside = r4 > 0
    fx, fh = affine_fit(x4[inside], s4[inside]), affine_fit(h4[inside], s4[inside])
    mx, mh = monotone_fit(x4[inside], s4[inside]), monotone_fit(h4[inside], s4[inside])
    mse = lambda a: float(((a - s4[inside]) ** 2).mean())  # noqa: E731
    peak = float(s4[inside].max() - s4[inside].min()) ** 2  # fitted PSNR on S's own range: unchanged by an affine change of S
    db = lambda a: 10 * math.log10(peak / mse(a)) if mse(a) > 0 else math.inf  # noqa: E731
    if region is None:  # Table 1's functions, as they are
        raw = {"psnr": metrics.psnr, "ssim": metrics.ssim, "bsr": metrics.bsr}
    else:
        raw = {"psnr": lambda a, b: metrics.region_psnr(a, b, r4), "ssim": lambda a, b: metrics.region_ssim(a, b, r4),
               "bsr": lambda a, b, c: metrics.region_bsr(a, b, c, r4)}  # fmt: skip
    return {
        "psnr_identity": float(raw["psnr"](x4, s4)), "psnr_model": float(raw["psnr"](h4, s4)),
        "ssim_identity": float(raw["ssim"](x4, s4)), "ssim_model": float(raw["ssim"](h4, s4)),
        "bsr_model": float(raw["bsr"](h4, s4, x4)),
        "psnr_fit_identity": db(fx), "psnr_fit_model": db(fh),
        "bsr_fit_model": 1 - mse(fh) / mse(fx),
        "psnr_mono_identity": db(mx), "psnr_mono_model": db(mh),
        "bsr_mono_model": 1 - mse(mh) / mse(mx),
    }  # fmt: skip


def read_lung_mask(path: Path, hw: tuple[int, int]) -> torch.Tensor:
    """A lung-field mask file (any format ``suppress`` reads; lungs bright, the rest dark, e.g. 0 / 255)
    as a 0/1 tensor on X's grid (resized to X's size; it must be drawn on X, not on S): pixels above
    half the file's range. An InputError naming the file when it is constant or its shape differs
    from X's by more than 1 %."""
    a = read_radiograph(path).pixels.astype(np.float32)
    if a.max() <= a.min():
        raise InputError(f"{path}: a constant mask (no lung field drawn); skipped")
    if abs(a.shape[0] / a.shape[1] - hw[0] / hw[1]) > 0.01 * hw[0] / hw[1]:
        raise InputError(f"{path}: mask of {a.shape[1]}x{a.shape[0]} px, its radiograph {hw[1]}x{hw[0]}: another shape; skipped")
    m = torch.from_numpy(a > (a.min() + a.max()) / 2).float()[None, None]
    return (torch.nn.functional.interpolate(m, size=hw, mode="nearest")[0, 0] > 0.5).float()


def overlap(reg: Registration | None, h: int, w: int, border: int = BORDER) -> tuple[slice, slice]:
    """Rows and columns of X where S (resampled by ``reg``) covers it, minus ``border``."""
    if reg is None:
        return slice(border, h - border), slice(border, w - border)
    bounds = []
    for n, d in ((h, reg.shift[0]), (w, reg.shift[1])):
        c = (n - 1) / 2  # q = c + scale (p - c) + d must lie in [0, n - 1]
        lo, hi = sorted(((0 - c - d) / reg.scale + c, (n - 1 - c - d) / reg.scale + c))
        bounds.append(slice(max(0, math.ceil(lo)) + border, min(n, math.floor(hi) + 1) - border))
    return bounds[0], bounds[1]


@dataclass
class ScoreSettings:
    polarity: str = "auto"
    register: bool = False
    tolerance: float = TOLERANCE_PX
    amp: str = "auto"
    lungs: Path | None = None  # a folder of lung-field masks (by X's file name): score inside them only


#: Fewest pixels a lung mask must leave inside the scored overlap (a fraction of it).
MIN_LUNG_FRACTION = 0.01


def score_pair(trained: TrainedModel, pair: PairFiles, settings: ScoreSettings) -> tuple[dict, dict]:
    """One pair's row of scores.csv and the images of its montage."""
    t0 = time.perf_counter()
    result = suppress_radiograph(trained, read_radiograph(pair.x), settings.polarity, settings.amp)
    s, s_stored, s_how = clinical_pixels(read_radiograph(pair.s), settings.polarity)
    xt, s_hat = torch.from_numpy(result.x), torch.from_numpy(result.s)
    st, reg = register_pair(xt, torch.from_numpy(s))
    if not reg.matches:
        raise InputError(f"{pair.x} / {pair.s}: the two images do not match (edge correlation {reg.quality:.3f}, scale {reg.scale:.3f}): not the same radiograph; skipped")
    worst = reg.worst_px(*xt.shape)
    aligned = settings.register and worst > settings.tolerance
    if aligned:
        st = align(st, reg)
    rows, cols = overlap(reg if aligned else None, *xt.shape)
    x_stored, x_how = result.polarity, result.polarity_rule
    crop = lambda t: t[rows, cols]  # noqa: E731
    if crop(xt).numel() == 0 or torch.isnan(crop(st)).any():
        raise InputError(f"{pair.x} / {pair.s}: S does not cover X after registration; skipped")
    region = None
    if pair.lungs is not None:
        region = crop(read_lung_mask(pair.lungs, tuple(xt.shape)))
        if region.mean() < MIN_LUNG_FRACTION:
            raise InputError(f"{pair.lungs}: the mask leaves {int(region.sum())} px of the scored overlap ({float(region.mean()):.1%}); skipped")
    scores = pair_metrics(crop(xt), crop(st), crop(s_hat), region)
    row = {
        "case": pair.case, "x_file": str(pair.x), "s_file": str(pair.s), "height": xt.shape[0], "width": xt.shape[1],
        "x_polarity": x_stored, "s_polarity": s_stored, "polarity_evidence": f"X: {x_how}; S: {s_how}",
        "scale": round(reg.scale, 5), "shift_rows": round(reg.shift[0], 2), "shift_cols": round(reg.shift[1], 2),
        "worst_px": round(worst, 2), "match": round(reg.quality, 3), "misaligned": worst > settings.tolerance, "registered": aligned,
        "lung_file": str(pair.lungs) if pair.lungs else "", "lung_fraction": round(float(region.mean()), 4) if region is not None else 1.0,
        **scores, "seconds": report_seconds(since(t0)),
    }  # fmt: skip
    images = {"x": crop(xt), "s_hat": crop(s_hat), "s": crop(st), "region": region}
    return row, images


def montage(row: dict, images: dict, path: Path, model: str) -> Path:
    """X, S_hat, the removed bone X - S_hat, S, and S's bone X - fit(S) (S mapped to X's grey
    levels), each on the grey window its title states; the files, the model and the commit below."""
    x, s_hat, s = (images[k].double() for k in ("x", "s_hat", "s"))
    fs = affine_fit(s[None, None], x[None, None])[0, 0]  # S on X's grey levels
    panels = [("X", x), ("S_hat (model)", s_hat), ("removed bone X - S_hat", x - s_hat), ("S (yours)", s), ("S's bone X - fit(S)", x - fs)]
    fig, axes = plt.subplots(1, len(panels), figsize=(layout.SCREEN_WIDTH / layout.DPI, 3.4), layout="constrained")
    for ax, (title, img) in zip(axes, panels):
        a = img.numpy()
        lo, hi = (np.percentile(a, 1), np.percentile(a, 99)) if "bone" in title else (0.0, 1.0)
        ax.imshow(a, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
        if images["region"] is not None and title == "X":
            ax.contour(images["region"].numpy(), levels=[0.5], colors="tab:orange", linewidths=0.8)
        ax.set_title(f"{title}\nwindow {lo:.3f} .. {hi:.3f}", fontsize=8)
        ax.axis("off")
    fig.suptitle(
        f"{row['case']}: monotone-fitted PSNR {row['psnr_mono_model']:.2f} dB (doing nothing {row['psnr_mono_identity']:.2f}), BSR {row['bsr_mono_model']:.3f};\n"
        f"affine-fitted {row['psnr_fit_model']:.2f} dB ({row['psnr_fit_identity']:.2f}), BSR {row['bsr_fit_model']:.3f}\nS against X: scale {row['scale']:.4f}, shift {row['shift_rows'] + 0.0:+.1f}, {row['shift_cols'] + 0.0:+.1f} px"
        + (" (misaligned: registered)" if row["registered"] else " (misaligned: scored as given)" if row["misaligned"] else ""),
        fontsize=9,
    )  # fmt: skip
    where = f"; scored inside {Path(row['lung_file']).name} (orange on X)" if row["lung_file"] else ""
    fig.text(0.5, 0.0, f"X {Path(row['x_file']).name}, S {Path(row['s_file']).name}{where}; model {model}; dae_lib {git_commit()[:12]}",
             ha="center", va="top", fontsize=7.5, color="0.35", wrap=True)  # fmt: skip
    data, _ = layout.render(fig)  # the PNG carries its layout report (layout.show_png shows it with it)
    plt.close(fig)
    with atomic_path(path, replace=False) as tmp:
        Path(tmp).write_bytes(data)
    return path


def _interval(half: float, n: int) -> str:
    """A 95 % half-width as the summary shows it: none from one pair, and a warning below 3."""
    if n < 2 or not math.isfinite(half):
        return "no interval from 1 pair"
    return f"+- {half:.3f}" + (" from 2 pairs: wide" if n == 2 else "")


def summary_markdown(df: pd.DataFrame, failed: list[str], model: str, lungs: Path | None = None) -> str:
    """Means over the pairs, the paired difference model - identity with its 95 % interval, the
    pairs worse than doing nothing, and the pairs not scored."""
    where = f", inside the lung-field masks of {Path(lungs).name}/ (lung_fraction in scores.csv: the share of the overlap they cover)." if lungs else "."
    lines = [f"# Bone suppression scored on {len(df)} pair(s)", "", f"Model: {model}. Scores on the overlap of X and S minus {BORDER} px{where}"
             " Raw: PSNR on the range 1, SSIM, BSR (Table 1's definitions). Fitted: each candidate mapped to S's grey levels by its own"
             " least-squares a * image + b, PSNR on S's own range (max - min, so it can read lower than raw): this cancels a linear"
             " difference of grey levels only; a non-linear one (a gamma) stays in both the identity's and the model's errors."
             " Monotone-fitted: the same with the least-squares monotone map of each candidate's grey levels (isotonic regression"
             f" over {MONOTONE_BINS} quantile bins), which cancels a gamma or contrast curve too; read it when S's rendering is not linear.", "",
             "scores.csv: scale and shift of S against X (X's pixel p appears in S at c + scale (p - c) + shift; rows, columns),"
             " worst_px the largest displacement, match the edge correlation after registration (partners above 0.12),"
             " seconds per pair (the first includes loading the model).", ""]
    if len(df):
        mean, half, n = mean_interval(df["psnr_mono_model"] - df["psnr_mono_identity"])
        lines[1:1] = ["", f"**In short** (monotone-fitted PSNR, which a dual-energy grey curve cannot fool): model - doing nothing {mean:+.2f} dB"
                      f" ({_interval(half, n)}), {int((df['psnr_mono_model'] < df['psnr_mono_identity']).sum())} of {n} pair(s) worse than doing nothing."
                      " A gamma-rendered S (0.15 + 0.7 S^0.7) leaves even a model that returns S exactly at affine-fitted BSR 0.00, monotone-fitted 1.00."]
        lines += ["| score | doing nothing | model | model - doing nothing (95 % interval) | pairs worse than doing nothing |", "| --- | --- | --- | --- | --- |"]
        for name, ident, model_col in (("PSNR (dB)", "psnr_identity", "psnr_model"), ("SSIM", "ssim_identity", "ssim_model"),
                                       ("fitted PSNR (dB)", "psnr_fit_identity", "psnr_fit_model"),
                                       ("monotone-fitted PSNR (dB)", "psnr_mono_identity", "psnr_mono_model")):  # fmt: skip
            mean, half, n = mean_interval(df[model_col] - df[ident])
            worse = int((df[model_col] < df[ident]).sum())
            lines.append(f"| {name} | {df[ident].mean():.3f} | {df[model_col].mean():.3f} | {mean:+.3f} ({_interval(half, n)}) | {worse} of {n} |")
        for name, col in (("BSR", "bsr_model"), ("fitted BSR", "bsr_fit_model"), ("monotone-fitted BSR", "bsr_mono_model")):
            mean, half, n = mean_interval(df[col])
            lines.append(f"| {name} | 0 | {mean:.3f} | {mean:+.3f} ({_interval(half, n)}) | {int((df[col] < 0).sum())} of {n} |")
        off = df[df["misaligned"]]
        lines += ["", f"Misaligned by more than the tolerance: {len(off)} pair(s)" + (": " + ", ".join(f"{r.case} ({r.worst_px:.1f} px, {'registered' if r.registered else 'scored as given'})" for r in off.itertuples()) if len(off) else ".")]
        lines += ["", "Polarity decided: " + "; ".join(f"{r.case}: X {r.x_polarity}, S {r.s_polarity}" for r in df.itertuples())]
    if failed:
        lines += ["", f"Not scored ({len(failed)}):", *[f"- {f}" for f in failed]]
    return "\n".join(lines) + "\n"


def _check_outputs_free(out: Path, cases: list[str]) -> None:
    taken = [p for p in (out / SCORES_CSV, out / SCORES_MD, *(out / MONTAGE_DIR / f"{c}.png" for c in cases)) if p.exists()]
    if taken:
        raise RunDirError(f"{taken[0]}: exists already ({len(taken)} output file(s) in {out}); choose another --out (nothing is replaced)")


def score_folder(x_dir, s_dir, out, weights=None, device="auto", settings: ScoreSettings = ScoreSettings(), log=print) -> tuple[pd.DataFrame, list[str]]:
    """Score every pair (``match_pairs``) and write scores.csv, scores.md and the montages to ``out``.
    Returns the table and one line per pair or file not scored."""
    check_choice("polarity", settings.polarity, POLARITIES)
    out = Path(out)
    inputs = [Path(x_dir)] + ([Path(s_dir)] if s_dir else []) + ([Path(settings.lungs)] if settings.lungs else [])
    check_out_folder(inputs, out, allow_inside=False, escape=None)
    if settings.tolerance < 0:
        raise InputError(f"--tolerance must be 0 or more pixels, not {settings.tolerance}")
    pairs, failed = match_pairs(Path(x_dir), Path(s_dir) if s_dir else None)
    if settings.lungs:
        pairs, missing = attach_lungs(pairs, Path(settings.lungs))
        failed += missing
    _check_outputs_free(out, [p.case for p in pairs])
    trained = load_suppression_model(weights, pick_device(device))
    rows, shown = [], {}
    for pair in pairs:
        try:
            row, images = score_pair(trained, pair, settings)
        except InputError as e:
            failed.append(str(e))
            log(f"{pair.case}: {e}")
            continue
        rows.append(row)
        shown[pair.case] = (row, images)
        log(f"{pair.case}: X {row['x_polarity']}, S {row['s_polarity']}; {row['worst_px']:.1f} px off{' (registered)' if row['registered'] else ''}; "
            f"fitted PSNR {row['psnr_fit_identity']:.2f} -> {row['psnr_fit_model']:.2f} dB (monotone {row['psnr_mono_identity']:.2f} -> {row['psnr_mono_model']:.2f}), "
            f"BSR {row['bsr_fit_model']:.3f} (monotone {row['bsr_mono_model']:.3f})")  # fmt: skip
    df = pd.DataFrame(rows)
    (out / MONTAGE_DIR).mkdir(parents=True, exist_ok=True)
    for case, (row, images) in shown.items():
        montage(row, images, out / MONTAGE_DIR / f"{case}.png", trained.description)
    with atomic_path(out / SCORES_CSV, replace=False) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(out / SCORES_MD, replace=False) as tmp:
        tmp.write_text(summary_markdown(df, failed, trained.description, settings.lungs))
    return df, failed


def cmd(args) -> int:
    """``python -m dae_lib score`` (its arguments: cli.py): exit status 2 when a pair was not scored."""
    settings = ScoreSettings(args.polarity, args.register, TOLERANCE_PX if args.tolerance is None else args.tolerance, lungs=Path(args.lungs) if args.lungs else None)
    df, failed = score_folder(args.x_dir, args.s_dir, args.out, args.weights, args.device, settings)
    print(f"scored {len(df)} pair(s), {len(failed)} not -> {Path(args.out) / SCORES_MD}")
    if failed:
        print("\n".join(f"error: {f}" for f in failed), file=sys.stderr)
    return 2 if failed or not len(df) else 0
