"""The shifted validation set: the validation cases as other devices would render them (issue 23).

Radiographs from other hospitals differ from JSRT's mostly in rendering: grey curve, edge
enhancement, noise, softness, JPEG, resolution, pixel aspect (augment.SHIFTED, each family at a few
strengths). Each rendering is applied to X and S alike (augment.Rendering.apply), so the target
is S rendered the same way and the raw scores are fair; doing nothing (S_hat = X rendered) is the
baseline in every row. The validation cases only: settings are chosen here, never on test cases.

``shifted_rows`` scores one model (or the identity) on every rendering of every case;
``shifted_summary`` condenses them per rendering and per family (mean PSNR gain over doing nothing,
the worst case's gain, cases worse than doing nothing).
"""
from __future__ import annotations

import pandas as pd
import torch

from ..augment import SHIFTED, Rendering
from ..inference import predict
from ..metrics import bsr, psnr

#: The row of the unrendered validation cases (the ordinary validation set), kept beside the others.
ORIGINAL = ("none", "as stored", Rendering())


def renderings(shifted: dict | None = None) -> list[tuple[str, str, Rendering]]:
    """(family, name, rendering) of the original cases, then of every shifted rendering."""
    shifted = SHIFTED if shifted is None else shifted
    return [ORIGINAL] + [(fam, name, r) for fam, named in shifted.items() for name, r in named.items()]


def one_per_family(shifted: dict | None = None) -> list[tuple[str, str, Rendering]]:
    """The original and the first (mildest listed) rendering of each family: one look at each."""
    shifted = SHIFTED if shifted is None else shifted
    return [ORIGINAL] + [(fam, *next(iter(named.items()))) for fam, named in shifted.items()]


def shifted_rows(models: dict[str, torch.nn.Module], x: torch.Tensor, s: torch.Tensor, ids, shifted: dict | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (rendering, case): family, rendering, case_id, identity PSNR, and each model's
    PSNR, gain over doing nothing (dB) and BSR. ``x``, ``s`` (N, 1, H, W) clinical polarity [0, 1];
    the noise of each rendering is drawn from ``seed`` (the same for every model)."""
    frames = []
    for family, name, rendering in renderings(shifted):
        xr, sr = rendering.apply(x, s, torch.Generator().manual_seed(seed))
        row = {"family": family, "rendering": name, "case_id": list(ids), "identity_psnr": psnr(xr, sr).numpy()}
        for label, model in models.items():
            s_hat = predict(model, xr, "off")
            row[f"{label}_psnr"] = psnr(s_hat, sr).numpy()
            row[f"{label}_gain"] = row[f"{label}_psnr"] - row["identity_psnr"]
            row[f"{label}_bsr"] = bsr(s_hat, sr, xr).numpy()
        frames.append(pd.DataFrame(row))
    return pd.concat(frames, ignore_index=True)


def shifted_summary(rows: pd.DataFrame, by: str = "rendering") -> pd.DataFrame:
    """Per rendering (``by="rendering"``) or per family (``by="family"``): cases, identity PSNR, and
    for each model its mean PSNR, mean and worst gain over doing nothing, mean BSR and the number of
    cases worse than doing nothing."""
    keys = ["family", "rendering"] if by == "rendering" else ["family"]
    labels = [c[: -len("_gain")] for c in rows.columns if c.endswith("_gain")]
    agg = {"cases": ("case_id", "size"), "identity_psnr": ("identity_psnr", "mean")}
    for m in labels:
        agg |= {f"{m}_psnr": (f"{m}_psnr", "mean"), f"{m}_gain": (f"{m}_gain", "mean"), f"{m}_worst_gain": (f"{m}_gain", "min"),
                f"{m}_bsr": (f"{m}_bsr", "mean"), f"{m}_worse": (f"{m}_gain", lambda g: int((g < 0).sum()))}  # fmt: skip
    return rows.groupby(keys, sort=False).agg(**agg).reset_index()


def beats_on_every_family(rows: pd.DataFrame, new: str, old: str) -> pd.DataFrame:
    """Per shifted family: ``new``'s mean gain minus ``old``'s (dB), and whether ``new`` wins there
    and is never worse than doing nothing on any case (issue 23's criterion for v2 over v1)."""
    fam = shifted_summary(rows[rows["family"] != ORIGINAL[0]], by="family")
    out = fam[["family", "cases"]].copy()
    out["difference_db"] = fam[f"{new}_gain"] - fam[f"{old}_gain"]
    out[f"{new}_worse"] = fam[f"{new}_worse"]
    out["wins"] = (out["difference_db"] > 0) & (out[f"{new}_worse"] == 0)
    return out
