"""Adapting the released model to a site's own pairs, the whole loop: score, fine-tune, score again.

A site with pairs (radiograph X, its dual-energy or BSE soft tissue S) keeps some of them out of
everything (*held-out*), fine-tunes the released model on the others (*tune*) and asks whether the
result beats doing nothing and the released model on the held-out pairs. The learning rate is a
choice: ``adapt`` fine-tunes once per candidate (``AdaptSettings.lrs``) and chooses by the mean
monotone-fitted PSNR on a third set of pairs (*validation*), never on the held-out ones, which are
scored once, by the chosen model only. The monotone-fitted score (score.pair_metrics: each
candidate's grey levels mapped to S's by a monotone function first), not the training loss: a
site's S renders grey levels unlike BSE-JSRT, and the raw loss rewards learning that rendering
rather than removing bone (a trial on other phantom site pairs: raw validation scores favoured a
model whose held-out fitted PSNR was 28.2 dB, below doing nothing, against 30.6 dB for another).
The affine fit alone is not enough for this: a gamma-rendered S leaves a perfect model's
affine-fitted BSR near 0 (tests/test_score.py). The quick profile's numbers: notebook 05's
executed copy and docs/scoring.md.

Each fine-tuning is an ordinary run (``train.fit``: split, validation, resume, provenance) from the
released weights (``init_from = "released"``), its network the released one (config.json of
``runs.released_folder``); each S registered to its X first (``register_pairs``). The command line
does the same in steps (docs/scoring.md); the profiles' ``adapt`` sections size
the demonstration on phantom site pairs (notebook 05, section 5.5).
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import Config, profile_section
from ..atomic import atomic_path
from ..errors import ConfigError, InputError, RunDirError
from ..suppress import check_out_folder
from ..runs import config_from_run, released_folder
from ..train import RELEASED, fit
from .score import ScoreSettings, score_folder
from .site_phantom import write_site_pairs

#: The three parts of a site's pairs, as folders (each X/ + S/ or a BSE-JSRT layout): fine-tuned on,
#: choosing the learning rate on, and scored once at the end.
TUNE, VALIDATION, HELD_OUT = "tune", "validation", "held-out"


@dataclass(frozen=True)
class AdaptSettings:
    """The loop's choices (a profile's ``adapt`` section sets them; ``for_profile``)."""
    epochs: int = 20  # fine-tuning epochs per candidate
    lrs: tuple[float, ...] = (1e-3, 1e-4)  # candidate learning rates, chosen on validation pairs
    batch_size: int = 4
    n_tune: int = 12  # phantom site pairs of each part (site_phantom.write_site_pairs), for the demonstration
    n_val: int = 4
    n_held: int = 4
    size: int = 512  # their size in px (the loader brings them to the released model's 512 for fine-tuning)

    @classmethod
    def for_profile(cls, profile: str) -> "AdaptSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        section = profile_section(profile, "adapt")
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"profile {profile}: unknown keys in its adapt section: {unknown} (known: {sorted(known)})")
        if "lrs" in section:
            section = {**section, "lrs": tuple(float(v) for v in section["lrs"])}
        return cls(**section)


def write_phantom_parts(folder: Path, settings: AdaptSettings) -> Path:
    """Phantom site pairs (site_phantom.write_site_pairs: another grey curve, edge enhancement, up to
    1 % and 3 px off; clinical polarity) in ``folder``/tune, /validation and /held-out, each part
    from its own seed (no phantom in two parts). Returns ``folder``."""
    for seed, (part, n) in enumerate(((HELD_OUT, settings.n_held), (TUNE, settings.n_tune), (VALIDATION, settings.n_val))):
        write_site_pairs(Path(folder) / part, n=n, size=settings.size, seed=seed)
    return Path(folder)


def finetune_config(data_dir: str | Path, lr: float, settings: AdaptSettings, polarity: str = "auto", device: str = "auto", seed: int = 0) -> Config:
    """The released model's own configuration (its network, image size and loss), fine-tuned: from
    its weights, on ``data_dir`` with each S registered to its X, for ``settings.epochs`` epochs at
    a constant ``lr``; the data not cached in .cache/ (a site's pairs stay where the site keeps them)."""
    released = config_from_run(released_folder())
    return dataclasses.replace(
        released, data_dir=str(data_dir), init_from=RELEASED, register_pairs=True, polarity=polarity, epochs=settings.epochs,
        lr=lr, schedule="constant", batch_size=settings.batch_size, seed=seed, device=device, cache_data=False,
    )  # fmt: skip


def _mean_scores(df: pd.DataFrame) -> dict:
    """Means over a scoring's pairs: the monotone-fitted scores (the choice's criterion), the affine-fitted and raw PSNR."""
    return {
        "pairs": len(df), "mono_psnr_identity": df["psnr_mono_identity"].mean(), "mono_psnr": df["psnr_mono_model"].mean(),
        "mono_bsr": df["bsr_mono_model"].mean(), "fitted_psnr_identity": df["psnr_fit_identity"].mean(), "fitted_psnr": df["psnr_fit_model"].mean(),
        "raw_psnr": df["psnr_model"].mean(), "worse_than_doing_nothing": int((df["psnr_mono_model"] < df["psnr_mono_identity"]).sum()),
    }  # fmt: skip


@dataclass
class AdaptResult:
    table: pd.DataFrame  # one row per model and part scored (see ``adapt``)
    chosen_lr: float
    run: Path  # the chosen fine-tuned run
    scores: dict[str, Path]  # each scoring's --out folder, by its name
    polarity: str = ""  # how the loader read tune/'s pairs, with its evidence


def adapt(tune: Path, val: Path, held: Path, work: Path, settings: AdaptSettings, polarity: str = "auto", device: str = "auto", log=print) -> AdaptResult:
    """Score the released model on ``held``, fine-tune it on ``tune`` once per candidate lr (runs in
    ``work``/runs/lr<lr>), score each on ``val``, choose the lr with the best mean monotone-fitted PSNR there,
    and score the chosen model on ``held``. Every scoring (``score.score_folder``, registration on)
    writes its folder in ``work``/scores/. Returns the table: model, part, lr and the means of the
    monotone-fitted, affine-fitted and raw scores."""
    work = Path(work)
    quiet = lambda *a: None  # noqa: E731
    reg = ScoreSettings(register=True, polarity=polarity)
    rows, outs = [], {}

    def scored(label: str, part: str, folder: Path, weights, lr=None) -> dict:
        name = f"{'released' if lr is None else f'lr{lr:g}'}-{part}"  # a folder name without spaces
        outs[name] = work / "scores" / name
        df, failed = score_folder(folder, None, outs[name], weights=weights, device=device, settings=reg, log=quiet)
        if failed:
            log(f"{label} on {part}: {len(failed)} pair(s) not scored: {failed[0]}")
        if not len(df):
            raise InputError(f"{folder}: no pair could be scored ({failed[0] if failed else 'none found'})")
        row = {"model": label, "part": part, "lr": lr, **_mean_scores(df)}
        rows.append(row)
        return row

    scored("released", "held-out", held, None)
    runs, polarity_of = {}, {}
    for lr in settings.lrs:
        run = work / "runs" / f"lr{lr:g}"
        result = fit(finetune_config(tune, lr, settings, polarity, device), run, progress=False)
        runs[lr] = run
        polarity_of[lr] = str(result.data.polarity)
        row = scored(f"fine-tuned lr {lr:g}", "validation", val, str(run), lr)
        log(f"fine-tuned at lr {lr:g}: best epoch {result.best_epoch} of {len(result.history)}; validation monotone-fitted PSNR {row['mono_psnr']:.2f} dB")
    val_rows = [r for r in rows if r["part"] == "validation"]
    chosen = max(val_rows, key=lambda r: r["mono_psnr"])["lr"]
    log(f"chosen on validation: lr {chosen:g}")
    scored(f"fine-tuned lr {chosen:g}", "held-out", held, str(runs[chosen]), chosen)
    return AdaptResult(pd.DataFrame(rows), chosen, runs[chosen], outs, polarity_of[chosen])


def table_markdown(table: pd.DataFrame) -> str:
    """The loop's table: doing nothing and each model, on the part it was scored on (means over its pairs)."""
    lines = ["| model | scored on | pairs | monotone-fitted PSNR (dB), doing nothing | monotone-fitted PSNR (dB), model | monotone-fitted BSR "
             "| affine-fitted PSNR (dB), doing nothing | affine-fitted PSNR (dB), model | raw PSNR (dB), model | pairs worse than doing nothing (monotone-fitted) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in table.itertuples():
        lines.append(f"| {r.model} | {r.part} | {r.pairs} | {r.mono_psnr_identity:.2f} | {r.mono_psnr:.2f} | {r.mono_bsr:.3f} | {r.fitted_psnr_identity:.2f} | {r.fitted_psnr:.2f} | {r.raw_psnr:.2f} | {r.worse_than_doing_nothing} of {r.pairs} |")
    return "\n".join(lines) + "\n"


ADAPT_CSV, ADAPT_MD = "adapt.csv", "adapt.md"


def cmd(args) -> int:
    """``python -m dae_lib adapt TUNE VALIDATION HELD_OUT --out DIR`` (its arguments: cli.py): the
    loop into DIR (runs/, scores/, adapt.csv, adapt.md); a second run into the same DIR is refused."""
    out = Path(args.out)
    check_out_folder([Path(args.tune), Path(args.validation), Path(args.held_out)], out, allow_inside=False, escape=None)
    for f in (ADAPT_CSV, ADAPT_MD):
        if (out / f).exists():
            raise RunDirError(f"{out / f}: exists already; choose another --out (nothing is replaced)")
    settings = AdaptSettings.for_profile(args.profile)
    if args.epochs is not None or args.lrs:
        settings = dataclasses.replace(settings, epochs=args.epochs or settings.epochs, lrs=tuple(args.lrs) if args.lrs else settings.lrs)
    result = adapt(Path(args.tune), Path(args.validation), Path(args.held_out), out, settings, args.polarity, args.device)
    with atomic_path(out / ADAPT_CSV, replace=False) as tmp:
        result.table.to_csv(tmp, index=False)
    with atomic_path(out / ADAPT_MD, replace=False) as tmp:
        tmp.write_text(f"# The released model adapted: {settings.epochs} epoch{'s' if settings.epochs != 1 else ''} per learning rate, chosen on validation: {result.chosen_lr:g}\n\n"
                       + table_markdown(result.table)
                       + f"\nThe chosen run: `{result.run}`; score or use it with `--weights {result.run}`. Each run keeps a validation and a"
                       " test case of tune/ out of its training, as every run does (its split.csv).\n"
                       f"\nPolarity of tune/'s pairs: {result.polarity}.\n")
    print(f"chosen lr {result.chosen_lr:g}: --weights {result.run} -> {out / ADAPT_MD}", file=sys.stdout)
    return 0
