"""v2 of the released model: trained for radiographs as other devices render them (issue 23).

    python -m dae_lib.studies.v2 baseline --data DIR   # v1 on the validation and shifted validation cases, its error budget
    python -m dae_lib.studies.v2 train --data DIR [--candidates NAME ...] [--device cuda] [--jobs 4] [--minutes 10] [--stages 1 2 3]
    python -m dae_lib.studies.v2 select --data DIR     # each trained candidate against v1 on both validations
    python -m dae_lib.studies.v2 release --data DIR [--candidate NAME]   # dae_lib/released/<v1's name>-v2/
    python -m dae_lib.studies.v2 averages --data DIR   # test-time averages (flip, seeds, v1 & v2) against their members

v1 (the released R-AE + MS-SSIM) removes 77 % of the bone energy of BSE-JSRT's validation cases but
much less once they are rendered as other devices render radiographs: heavy edge enhancement
leaves BSR 0.33, strong noise 0.38, a compressed grey window 0.37 with two cases worse than doing
nothing (``baseline``; results/v2/baseline_*.csv). ``CANDIDATES`` are v1's recipe (architecture,
loss, learning rates) with rendering augmentation (augment.RenderAugment) and the controls that
tell its effect apart: the same longer schedule without it, a wider network, a lower rate; then
(round 2) the weight lm of the MSE term and a second seed; then (round 3, on 2 CPU cores) v2
continued with a wider pixel-aspect range, toward the mean of itself and a second seed's stage-2
model (distillation), and alone.

Each candidate trains in stages like v1 (``STAGES``: 256 px from scratch, then 512 px from stage
1's best weights, then 512 px at a lower rate) or continues another's finished stage for one
(``CONTINUES``, ``FINE_TUNE``), each an ordinary resumable run under runs/v2/<candidate>-<tag>/, each
stopped by its epochs or by its share of ``--minutes`` (a time budget, recorded in the run's
provenance as the epochs done), whichever comes first. On a GPU the candidates train side by side
(``--jobs``). ``select`` scores every finished candidate and v1 on the validation cases as stored
and on the shifted validation set (reporting/shifted.py), writes results/v2/candidates.csv and
.md, and chooses among the candidates that are never worse than doing nothing on any shifted case
and gain more than v1 there on average the one with the best mean shifted gain (the model v2 was
released from stays unless beaten by more than ``MARGIN_DB``); it replaces v1 as
the default only if it wins on both validations (every shifted family and the cases as stored).
No test case is read here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import torch

from ..atomic import atomic_path, write_json_atomic
from ..config import load_config
from ..data import load_data
from ..device import describe, fastest, pick_device
from ..errors import InputError, run_guarded
from ..inference import Averaged, predict, suppress_full
from ..phantom import chest_phantom
from ..reporting.anatomy import BANDS, REGIONS, error_budget
from ..reporting.evaluate import run_part
from ..reporting.shifted import ORIGINAL, beats_on_every_family, shifted_rows, shifted_summary
from ..runs import (
    DEFAULT_RELEASE, PROVENANCE_FILE, REPO_ROOT, RESULTS_DIR, BEST_WEIGHTS, config_from_run, git_commit, load_model, load_released, load_trained, machine, footer_line, record, data_tag, dirty_files,
    normalise_data_dir, portable, released_folder,
)
from ..train import fit
from .release import write_release

#: What each candidate changes in v1's recipe (the paper profile's R-AE + MS-SSIM, as release.py trains it).
CANDIDATES = {
    "render": dict(render_p=0.7),  # rendering augmentation on 70 % of the training images
    "render-wide": dict(render_p=0.7, unet_width=24),  # and 1.5x the channels (2.25x the weights)
    "render-third": dict(render_p=0.35),  # a third of the images re-rendered
    "longer": dict(render_p=0.0),  # v1's recipe on the same schedule: what the schedule alone gives
    # Round 2: the MSE term's weight lm, raised from the R family's 100 (a PSNR of 44.6 dB is an MSE
    # of 3.5e-5, so lm * L_MSE is about 0.0035 beside 1 - MS-SSIM of about 0.005), since BSR and PSNR
    # are energy measures and v1's error budget puts 62 % of the remaining energy on the bone mask.
    # A second seed of "render" on the same schedule tells a change apart from the noise of one run.
    "render-seed1": dict(render_p=0.7, seed=1),
    # lm = 100 is the R family's own weight (models.RECIPES), so this entry changes nothing: it is
    # "render" again on round 2's schedule (seed 0), a replicate beside render-seed1. Kept under the
    # name its runs were trained under.
    "render-lm100": dict(render_p=0.7, lm=100.0),
    "render-lm1000": dict(render_p=0.7, lm=1000.0),
    "render-lm1000-seed1": dict(render_p=0.7, lm=1000.0, seed=1),
    "render-lm10000": dict(render_p=0.7, lm=10000.0),
    # v2 loses the pixel-aspect family to v1 (+6.67 against +6.81 dB); its training drew aspect on
    # 30 % of renderings from U(0.9, 1.1), the shifted set uses 0.88 and 1.12. From scratch (GPU):
    "render-aspect": dict(render_p=0.7, render_ranges="wide-aspect"),
    # Round 3 on 2 CPU cores (CONTINUES): v2 continued for FINE_TUNE's stage with the wider aspect
    # range, and the same stage without it (the control: what more epochs, annealed, give alone).
    "v2-aspect": dict(render_p=0.7, render_ranges="wide-aspect"),
    "v2-anneal": dict(render_p=0.7),
    # The mean of two seeds of v2's first two stages (render & render-seed1) gains +0.19 dB as stored
    # and +0.21 dB shifted over its better member, at two passes (results/v2/averages.md): v2
    # continued toward the mean of itself and render-seed1 (losses.distilled_target, half S, half the
    # mean; teachers named as finished_candidates names them).
    "v2-distill": dict(render_p=0.7, teachers=("render/512-low-lr", "render-seed1"), distill=0.5),
}
#: The stages: as v1 (256 px from scratch, then 512 px from stage 1's best), then a third at a lower
#: learning rate from stage 2's best; each with its epoch cap and its share of the time budget
#: (normalised over the stages a call runs). v1's own stages were 60 and 30 epochs on 2 CPU cores.
STAGES = (
    dict(tag="256", image_size=256, epochs=300, batch_size=4, share=0.24),
    dict(tag="512", image_size=512, epochs=200, batch_size=4, lr=5e-4, share=0.36),
    dict(tag="512-low-lr", image_size=512, epochs=200, batch_size=4, lr=1e-4, share=0.40),
)
#: Candidates that continue another's finished stage (named as ``finished_candidates`` names it)
#: for FINE_TUNE's one stage rather than train STAGES from scratch: short enough for 2 CPU cores
#: (40-50 s an epoch at 512 px; about 90 s with two teachers), its rate following the whole cosine
#: schedule (train.learning_rate: warm-up, then down to 1e-3 of it) within the stage. v2's own third
#: stage was stopped by its time budget at epoch 140 of 200, before its rate had decayed.
CONTINUES = {"v2-aspect": "render/512-low-lr", "v2-anneal": "render/512-low-lr", "v2-distill": "render/512-low-lr"}
FINE_TUNE = (dict(tag="ft", image_size=512, epochs=24, batch_size=4, lr=5e-5, share=1.0),)
VARIANT = DEFAULT_RELEASE.split("-")[0]
OUT = RESULTS_DIR / "v2"
#: Epochs per ``fit`` call between two looks at the clock.
CHUNK = 5


def stages_of(name: str) -> tuple[dict, ...]:
    """The stages candidate ``name`` trains: FINE_TUNE when it continues another (CONTINUES), else STAGES."""
    return FINE_TUNE if name in CONTINUES else STAGES


def stage_dirs(name: str, runs_root: Path, stages=None) -> list[Path]:
    return [runs_root / f"{name}-{st['tag']}" for st in (stages or stages_of(name))]


def _models(name: str, runs_root: Path) -> dict[str, Path]:
    """Candidate ``name``'s models (its stages from 512 px on) by the names the study gives them, with
    their run folders: "<candidate>" for the first of them (STAGES' second; FINE_TUNE's one),
    "<candidate>/<tag>" for a later one."""
    stages = [(st, d) for st, d in zip(stages_of(name), stage_dirs(name, runs_root)) if st["image_size"] >= 512]
    return {(name if i == 0 else f"{name}/{st['tag']}"): d for i, (st, d) in enumerate(stages)}


def model_folder(model: str, runs_root: Path) -> Path:
    """The run folder of a model named as ``_models`` names it ("render", "render/512-low-lr")."""
    name = model.split("/")[0]
    if name not in CANDIDATES:
        raise InputError(f"{model!r}: no such candidate (there are: {', '.join(CANDIDATES)})")
    models = _models(name, runs_root)
    if model not in models:
        raise InputError(f"{model!r}: no such model of {name} (its models: {', '.join(models)})")
    return models[model]


def _prerequisites(name: str) -> list[str]:
    """The models candidate ``name`` needs trained first: the one it continues, and its teachers."""
    return [m for m in [CONTINUES.get(name), *CANDIDATES[name].get("teachers", ())] if m]


def stage_config(name: str, k: int, data_dir, device: str, runs_root: Path, stages=None, **extra):
    stages = stages or stages_of(name)
    st = {key: v for key, v in stages[k].items() if key not in ("share", "tag")}
    if k > 0:
        init = {"init_from": str(stage_dirs(name, runs_root, stages)[k - 1])}
    else:
        init = {"init_from": str(model_folder(CONTINUES[name], runs_root))} if name in CONTINUES else {}
    changes = dict(CANDIDATES[name])
    if "teachers" in changes:
        changes["teachers"] = tuple(str(model_folder(t, runs_root)) for t in changes["teachers"])
    return load_config("paper", variant=VARIANT, data_dir=data_dir, device=device, **{**changes, **st, **init, **extra})


def train_candidate(name: str, data_dir, device: str = "auto", runs_root: Path | None = None, seconds: float = 600.0,
                    run: tuple[int, ...] | None = None, chunk: int = CHUNK, **extra) -> dict:  # fmt: skip
    """The stages ``run`` (indices into STAGES; default all) of one candidate, each until its epochs
    are done or its share of ``seconds`` is spent (checked every ``chunk`` epochs; a later call
    resumes). A candidate that continues another (CONTINUES) runs its one stage whatever ``run``
    says, and needs the other's folder. Returns {stage folder: epochs done}."""
    runs_root = Path(runs_root or REPO_ROOT / "runs" / "v2")
    stages = stages_of(name)
    for needed in _prerequisites(name):
        if not (base := model_folder(needed, runs_root)).joinpath(BEST_WEIGHTS).exists():
            raise InputError(f"{name} continues or learns from {needed}, which has no weights at {portable(base)}: train it first")
    run = tuple(range(len(stages))) if run is None or name in CONTINUES else tuple(run)
    total_share = sum(stages[k]["share"] for k in run)
    done = {}
    for k in run:
        out_dir = stage_dirs(name, runs_root, stages)[k]
        cfg = stage_config(name, k, data_dir, device, runs_root, stages, **extra)
        data = load_data(cfg)
        t_end = time.perf_counter() + seconds * stages[k]["share"] / total_share
        while True:
            result = fit(cfg, out_dir, data=data, progress=False, profile=f"v2-{name}", max_epochs=chunk)
            if len(result.history) >= cfg.epochs or time.perf_counter() >= t_end:
                break
        done[str(out_dir)] = len(result.history)
        print(f"{name}: stage {stages[k]['tag']}, {len(result.history)} epochs (best {result.best_epoch}) -> {portable(out_dir)}", flush=True)
    return done


def train_all(names, data_dir, device: str, jobs: int, seconds: float, runs_root: Path | None = None, run=None, **extra) -> None:
    """The candidates ``names``, ``jobs`` at a time (each its own process when jobs > 1); those
    that continue another (CONTINUES) in a second wave, after the ones they may continue."""
    waves = [[n for n in names if n not in CONTINUES], [n for n in names if n in CONTINUES]]
    if jobs <= 1:
        for name in waves[0] + waves[1]:
            train_candidate(name, data_dir, device, runs_root, seconds, run=run, **extra)
        return
    threads = max(1, (torch.get_num_threads() or 1) // jobs)
    for wave in filter(None, waves):
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            futures = [pool.submit(train_candidate, n, data_dir, device, runs_root, seconds, run, **extra) for n in wave]
            for f in futures:
                f.result()


def validation_cases(data_dir, run_dir: Path):
    """The validation cases of v1's split (the same for every candidate: same data, same split settings)."""
    cfg = config_from_run(run_dir)
    data = load_data(load_config("paper", variant=cfg.variant, data_dir=data_dir, image_size=cfg.image_size))
    return run_part(data, run_dir, "val")


def baseline(data_dir, out: Path = OUT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """v1 on the validation cases as stored and as other devices render them, and where its error
    lies (anatomy.error_budget): results/v2/baseline_shifted.csv, baseline_error_budget.csv."""
    started = _started()
    val = validation_cases(data_dir, released_folder())
    v1 = load_released()
    rows = shifted_rows({"v1": v1}, val.x, val.s, val.ids)
    budget = error_budget(predict(v1, val.x), val.s, val.m)
    shares = pd.DataFrame({"case_id": val.ids, **{k: v.numpy() for k, v in budget.items()}})
    _write(out / "baseline_shifted.csv", shifted_summary(rows))
    _write(out / "baseline_error_budget.csv", shares)
    write_provenance(out, "baseline", data_dir, started)
    return rows, shares


def finished_candidates(runs_root: Path) -> dict[str, Path]:
    """Every stage from 512 px on that has weights, by "<candidate>" (its stage 2) or
    "<candidate>/<tag>" (a later stage)."""
    return {m: d for n in CANDIDATES for m, d in _models(n, runs_root).items() if d.joinpath(BEST_WEIGHTS).exists()}


def select(data_dir, runs_root: Path | None = None, out: Path = OUT) -> tuple[pd.DataFrame, str | None]:
    """Every finished candidate and v1 on the validation and shifted validation cases; the table
    results/v2/candidates.csv (+ .md) and the chosen candidate (None when none qualifies)."""
    started = _started()  # the code that scores (read now: the tree may change while this runs)
    runs_root = Path(runs_root or REPO_ROOT / "runs" / "v2")
    found = finished_candidates(runs_root)
    if not found:
        raise InputError(f"{runs_root}: no candidate has finished its 512 px stage; run `python -m dae_lib.studies.v2 train` first")
    val = validation_cases(data_dir, released_folder())
    models = {"v1": load_released(), **{n: load_model(d) for n, d in found.items()}}
    rows = shifted_rows(models, val.x, val.s, val.ids)
    table, chosen = candidate_table(rows, found, started["commit"])
    _write(out / "candidates.csv", table)
    _write(out / "shifted_by_rendering.csv", shifted_summary(rows))
    _write(out / "shifted_cases.csv", rows)
    with atomic_path(out / "candidates.md") as tmp:
        tmp.write_text(candidates_markdown(table, chosen, portable(data_dir)))
    write_provenance(out, "select", data_dir, started)
    return table, chosen


def _scores(original: pd.DataFrame, shifted: pd.DataFrame, name: str) -> dict:
    """Model ``name``'s numbers from shifted_rows' rows, split into the cases as stored
    (``original``) and the shifted ones: mean gain as stored; mean gain and BSR shifted, the worst
    shifted case, and the shifted cases worse than doing nothing."""
    gain = shifted[f"{name}_gain"]
    return {"val_gain_db": original[f"{name}_gain"].mean(), "shifted_gain_db": gain.mean(), "shifted_bsr": shifted[f"{name}_bsr"].mean(),
            "worst_shifted_gain_db": gain.min(), "shifted_cases_worse": int((gain < 0).sum())}  # fmt: skip


def candidate_table(rows: pd.DataFrame, found: dict[str, Path], scored_at: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """One row per model scored in ``rows`` (v1 first; ``found``: the candidates' run folders, for
    their provenance): validation PSNR gain as stored, mean shifted gain, worst shifted case,
    shifted cases worse than doing nothing, families won against v1, epochs and provenance."""
    original = rows[rows["family"] == ORIGINAL[0]]
    shifted = rows[rows["family"] != ORIGINAL[0]]
    out = []
    for name in [c[: -len("_gain")] for c in rows.columns if c.endswith("_gain")]:
        wins = beats_on_every_family(rows, name, "v1") if name != "v1" else None
        prov = json.loads((found[name] / PROVENANCE_FILE).read_text()) if name in found else {}
        out.append({
            "model": name, "changes": _changes_text(name),
            "val_psnr": original[f"{name}_psnr"].mean(), **_scores(original, shifted, name),
            "families_won": None if wins is None else int(wins["wins"].sum()), "families": shifted["family"].nunique(),
            "epochs_512": prov.get("epochs_done"), "best_epoch_512": prov.get("best_epoch"), "device": prov.get("device"),
            "train_seconds_512": prov.get("train_seconds_total"), "trained_at": prov.get("commit"),
        })  # fmt: skip
    table = pd.DataFrame(out)
    table["scored_at"] = scored_at or git_commit()
    v1 = table.loc[table["model"] == "v1"].iloc[0]
    table["qualifies"] = (table["model"] != "v1") & (table["shifted_cases_worse"] == 0) & (table["shifted_gain_db"] > v1["shifted_gain_db"])
    table["wins_both"] = table["qualifies"] & (table["families_won"] == table["families"]) & (table["val_gain_db"] > v1["val_gain_db"])
    return table, choose(table)


def _changes_text(model: str) -> str:
    """What a model changes in v1's recipe, as the candidates' table says it."""
    name, _, tag = model.partition("/")
    return (json.dumps(CANDIDATES.get(name, {})) + (f" then stage {tag}" if tag else "")
            + (f" continuing {CONTINUES[name]} ({FINE_TUNE[0]['epochs']} epochs at 512 px, lr {FINE_TUNE[0]['lr']:g})" if name in CONTINUES else ""))  # fmt: skip


#: How much more mean shifted gain (dB) a candidate needs to displace the one v2 was released from:
#: about the spread between two runs of one recipe on one schedule (render-lm100 and render-seed1,
#: seeds 0 and 1: 0.09 dB as stored, 0.08 dB shifted; one pair, so rounded up). A smaller difference
#: is the noise of a single run, and a re-release would change users' weights for it. Added after
#: round 3 was scored, whose best (v2-distill) was 0.004 dB above v2: the rule before it would have
#: replaced v2 for that.
MARGIN_DB = 0.10


def released_choice() -> str | None:
    """The candidate the released v2 was made from (its card's "candidate"); None before v2 exists."""
    card = released_folder().parent / V2_RELEASE / "model_card.json"
    return json.loads(card.read_text()).get("candidate") if card.is_file() else None


def best_qualifying(table: pd.DataFrame) -> str | None:
    """The qualifying candidate with the best mean shifted gain (None when none qualifies)."""
    ok = table[table["qualifies"]]
    return None if ok.empty else str(ok.sort_values("shifted_gain_db", ascending=False)["model"].iloc[0])


def choose(table: pd.DataFrame, incumbent: str | None = "released") -> str | None:
    """The qualifying candidate with the best mean shifted gain, unless the one v2 was released from
    (``incumbent``; "released": read from v2's card) qualifies and that gain beats its own by no more
    than MARGIN_DB: then the incumbent. None when none qualifies."""
    best = best_qualifying(table)
    incumbent = released_choice() if incumbent == "released" else incumbent
    ok = table.set_index("model")
    if best is None or incumbent is None or incumbent not in ok.index or not ok.loc[incumbent, "qualifies"]:
        return best
    return best if ok.loc[best, "shifted_gain_db"] - ok.loc[incumbent, "shifted_gain_db"] > MARGIN_DB else incumbent


def replaces_default(table: pd.DataFrame, chosen: str | None) -> bool:
    """Whether the chosen candidate wins on both validations (every shifted family, and the cases as
    stored): only then does it become the default of `suppress` (issue 23)."""
    return chosen is not None and bool(table.loc[table["model"] == chosen, "wins_both"].iloc[0])


def _epochs(r) -> str:
    return "" if pd.isna(r.epochs_512) else f"{int(r.epochs_512)} ({int(r.best_epoch_512)})"


def candidates_markdown(table: pd.DataFrame, chosen: str | None, data: str) -> str:
    lines = [
        f"# v2 candidates against v1 (validation cases of {data}; no test case read)",
        "",
        "Gains are PSNR over doing nothing (S_hat = X), in dB, mean over cases; shifted: the validation cases",
        "rendered as other devices render them (augment.SHIFTED, X and S alike). A candidate qualifies when it",
        "is never worse than doing nothing on any shifted case and has a higher mean shifted gain than v1; the",
        "qualifying one with the best mean shifted gain is chosen, except that the model v2 was released from stays unless",
        f"another's mean shifted gain beats its own by more than {MARGIN_DB:.2f} dB (MARGIN_DB, added after round 3 was scored; two",
        "replicate runs of one recipe differ by 0.08 dB shifted). The chosen one replaces v1 as the default of `suppress` only",
        "if it also wins on both validations: every shifted family, and the cases as stored. `/512-low-lr`: the",
        "candidate after its third stage (512 px at a lower rate, from its second stage's best weights); the last",
        "column counts that stage's epochs and the one kept (the best validation loss). Round 2 (`render-seed1`,",
        "`render-lm*`) ran stages 1 and 2 only, on a longer GPU budget (the epochs column); `render-lm100` changes",
        "nothing (lm 100 is the R family's own weight): it is `render` again on that budget, a replicate. Round 3",
        f"(`v2-*`) continued v2 (`render/512-low-lr`) for one stage of {FINE_TUNE[0]['epochs']} epochs at 512 px on 2 CPU cores; `v2-aspect`",
        "drew pixel aspect from U(0.8, 1.25), which holds the shifted set's 0.88 and 1.12: that family is not held out for it.",
        "",
        "| model | changes | val PSNR | val gain | shifted gain | shifted BSR | worst shifted case | shifted cases worse | families won | its last stage: epochs (best) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.itertuples():
        won = "" if r.families_won is None or pd.isna(r.families_won) else f"{int(r.families_won)} of {r.families}"
        lines.append(f"| {r.model} | {r.changes} | {r.val_psnr:.2f} | {r.val_gain_db:+.2f} | {r.shifted_gain_db:+.2f} | {r.shifted_bsr:.3f} | "
                     f"{r.worst_shifted_gain_db:+.2f} | {r.shifted_cases_worse} | {won} | {_epochs(r)} |")  # fmt: skip
    verdict = "none qualifies" if chosen is None else f"{chosen}; " + (
        "it wins on both validations and becomes the default" if replaces_default(table, chosen) else "released beside v1, which stays the default (the chosen model does not win on both validations)")
    best = best_qualifying(table)
    if chosen is not None and best != chosen:
        g = table.set_index("model")["shifted_gain_db"]
        verdict += (f". {best}'s mean shifted gain is higher by {g[best] - g[chosen]:.3f} dB, within the {MARGIN_DB:.2f} dB a replacement of the "
                    "released model needs (the spread of two runs of one recipe), so the released model stays")  # fmt: skip
    lines += ["", f"Chosen: {verdict}.", "", f"Scored at {table['scored_at'].iloc[0][:12]}.", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class Committed:
    """What the study found, from its committed tables (results/v2/), for notebook 05."""

    markdown: str  # the candidates against v1, where v1's error lies, and the test-time averages
    rows: pd.DataFrame | None  # shifted_rows of every model (None: the study has not been run here)
    shares: pd.DataFrame | None  # v1's error budget per validation case (anatomy.error_budget)
    models: dict[str, str]  # {column prefix in rows: label} of v1 and the chosen candidate
    footer: str  # the figure's provenance line


def committed_summary(out: Path = OUT) -> Committed:
    """The study's committed tables read back (the BSE-JSRT folder is not on every machine, so a
    notebook shows these rather than recomputing them)."""
    if not (out / "candidates.md").exists():
        return Committed("Not measured here: run `python -m dae_lib.studies.v2 baseline`, `train`, `select` with "
                         "`--data` a BSE-JSRT folder (results/v2/ holds the tables).", None, None, {}, "")  # fmt: skip
    text = (out / "candidates.md").read_text().split("\n", 1)[1]
    budget = out / "baseline_error_budget.csv"
    shares = pd.read_csv(budget).drop(columns="case_id") if budget.exists() else None
    if shares is not None:
        means = shares.mean()
        text += ("\nWhere v1's remaining error |S_hat - S|^2 lies on these cases (anatomy.error_budget; mean share per case):\n\n"
                 + _shares_table("by region", REGIONS, means) + "\n" + _shares_table("by spatial frequency", BANDS, means))
    averaged = out / "averages.md"
    if averaged.exists():
        title, rest = averaged.read_text().split("\n", 1)
        text += f"\n**{title.lstrip('# ')}**\n{rest}"
    table = pd.read_csv(out / "candidates.csv")
    rows = pd.read_csv(out / "shifted_cases.csv")
    chosen = choose(table)
    models = {"v1": "v1"} | ({} if chosen is None else {chosen: f"v2 ({chosen})"})
    cases = int((rows["family"] == ORIGINAL[0]).sum())
    footer = footer_line(f"bse-jsrt-512, {cases} validation cases", "v2 study", 0, commit=str(table["scored_at"].iloc[0]))
    return Committed(text, rows, shares, models, footer)


def _shares_table(title: str, keys, means: pd.Series) -> str:
    return f"| {title} | " + " | ".join(keys) + " |\n|" + " --- |" * (1 + len(keys)) + "\n| share | " + " | ".join(f"{means[k]:.0%}" for k in keys) + " |\n"


#: The name v2 is released under (dae_lib/released/<name>/), beside v1 (runs.DEFAULT_RELEASE).
V2_RELEASE = f"{DEFAULT_RELEASE}-v2"


def release(data_dir, candidate: str | None = None, runs_root: Path | None = None, out: Path = OUT) -> Path:
    """Write dae_lib/released/V2_RELEASE/ from the chosen candidate (``select``'s, or ``candidate``):
    its weights, and a card with the test metrics beside v1's on the same cases, the validation and
    shifted-validation numbers against doing nothing and v1, the recipe, and the CPU inference time."""
    runs_root = Path(runs_root or REPO_ROOT / "runs" / "v2")
    table = pd.read_csv(out / "candidates.csv")
    rows = pd.read_csv(out / "shifted_cases.csv")
    chosen = candidate or choose(table)
    if chosen is None:
        raise InputError(f"{out / 'candidates.csv'}: no candidate qualifies; name one with --candidate to release it anyway")
    found = finished_candidates(runs_root)
    if chosen not in found:
        raise InputError(f"{chosen!r}: no such finished candidate under {runs_root} (there are: {', '.join(found) or 'none'})")
    data = load_data(load_config("paper", variant=VARIANT, data_dir=data_dir))
    notes = {
        "model": "R-AE + MS-SSIM v2", "release": "v2", "candidate": chosen,
        "recipe": recipe_text(chosen, len(table) - 1, int((rows["family"] == ORIGINAL[0]).sum())),
        "regenerate": f"python -m dae_lib.studies.v2 train --data DIR --device cuda --candidates {' '.join(_lineage(chosen))} "
                      f"&& python -m dae_lib.studies.v2 select --data DIR && python -m dae_lib.studies.v2 release --data DIR --candidate {chosen}",
        "validation": validation_section(chosen, rows),
        "shifted_validation": shifted_section(rows, chosen),
        "cpu_inference": cpu_inference_text({"v2": found[chosen], "v1": released_folder()}),
        "default": replaces_default(table, chosen),
    }  # fmt: skip
    return write_release(found[chosen], released_folder().parent / V2_RELEASE, data, notes=notes,
                         compare={f"v1 ({DEFAULT_RELEASE})": released_folder()})  # fmt: skip


#: Test-time averages (inference.Averaged), measured against their members on both validations:
#: mirror-image (horizontal-flip) averaging and an average of a few seeds, the usual cheap gains.
#: {label: (members, flip)}; a member is "v1", "v2" (the released models) or a candidate as
#: ``finished_candidates`` names it. Each costs one pass per member (two with flip) per radiograph.
AVERAGES = {
    "v2+flip": (("v2",), True),
    "render&render-seed1": (("render", "render-seed1"), False),  # two seeds of v2's recipe, both after 512 px at 5e-4
    "v1&v2": (("v1", "v2"), False),
}
#: The inference budget per 512 px radiograph on 2 CPU cores that v2 was set (v1 takes about 100 ms).
INFERENCE_BUDGET_MS = 150


def averages(data_dir, runs_root: Path | None = None, out: Path = OUT, repeats: int = 5) -> pd.DataFrame:
    """Each of AVERAGES and its members on the validation cases as stored and shifted, with its CPU
    time per 512 px radiograph: results/v2/averages.csv, .md and provenance_averages.json."""
    started = _started()
    runs_root = Path(runs_root or REPO_ROOT / "runs" / "v2")
    names = sorted({m for ms, _ in AVERAGES.values() for m in ms} - {"v1", "v2"})
    found = finished_candidates(runs_root)
    if missing := [n for n in names if n not in found]:
        raise InputError(f"{runs_root}: no finished run of {', '.join(missing)}; train it first (python -m dae_lib.studies.v2 train --candidates ...)")
    members = {"v1": load_released(), "v2": load_released(V2_RELEASE), **{n: load_model(found[n]) for n in names}}
    models = {**members, **{label: Averaged([members[m] for m in ms], flip) for label, (ms, flip) in AVERAGES.items()}}
    val = validation_cases(data_dir, released_folder())
    rows = shifted_rows(models, val.x, val.s, val.ids)
    passes = {n: 1 for n in members} | {label: len(ms) * (1 + flip) for label, (ms, flip) in AVERAGES.items()}
    table = average_table(rows, passes, {n: cpu_ms(m, repeats) for n, m in models.items()})
    _write(out / "averages.csv", table)
    with atomic_path(out / "averages.md") as tmp:
        tmp.write_text(averages_markdown(table, portable(data_dir), started["commit"]))
    write_provenance(out, "averages", data_dir, started)
    return table


def average_table(rows: pd.DataFrame, passes: dict[str, int], ms: dict[str, float]) -> pd.DataFrame:
    """One row per model of ``passes`` (each scored in ``rows``): passes per radiograph, CPU ms, validation gain and BSR as
    stored, mean shifted gain and BSR, worst shifted case, shifted cases worse than doing nothing,
    and for an average its gain over its best member (as stored and shifted)."""
    original = rows[rows["family"] == ORIGINAL[0]]
    shifted = rows[rows["family"] != ORIGINAL[0]]
    out = []
    for name in passes:
        scores = _scores(original, shifted, name)
        r = {"model": name, "passes": passes[name], "cpu_ms": round(ms[name], 1), "val_gain_db": scores.pop("val_gain_db"),
             "val_bsr": original[f"{name}_bsr"].mean(), **scores}  # fmt: skip
        if name in AVERAGES:
            members = [_scores(original, shifted, m) for m in AVERAGES[name][0]]
            r["over_best_member_db"] = r["val_gain_db"] - max(m["val_gain_db"] for m in members)
            r["shifted_over_best_member_db"] = r["shifted_gain_db"] - max(m["shifted_gain_db"] for m in members)
        out.append(r)
    return pd.DataFrame(out)


def averages_markdown(table: pd.DataFrame, data: str, commit: str) -> str:
    lines = [
        f"# Test-time averages against their members (validation cases of {data}; no test case read)",
        "",
        "Gains are PSNR over doing nothing, in dB, mean over cases; shifted: the validation cases rendered as other",
        "devices render them (augment.SHIFTED). `+flip`: the mean of the model on the radiograph and on its mirror",
        "image; `a&b`: the mean of two models' estimates (inference.Averaged). Passes: forward passes of a network per",
        "radiograph. v1 and v2 are the released float16 weights (candidates.md scores v2's run in float32: within",
        "0.01 dB). CPU: median time per 512 px radiograph of the suppression command's model path (suppress_full:",
        f"resize, network, bone removal; no file read or written) on this machine, {torch.get_num_threads()} threads; the budget is {INFERENCE_BUDGET_MS} ms.",
        "",
        "| model | passes | CPU ms | val gain | val BSR | shifted gain | shifted BSR | worst shifted case | shifted cases worse | over its best member: as stored / shifted |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.itertuples():
        over = "" if pd.isna(getattr(r, "over_best_member_db", float("nan"))) else f"{r.over_best_member_db:+.2f} / {r.shifted_over_best_member_db:+.2f}"
        lines.append(f"| {r.model} | {r.passes} | {r.cpu_ms:.0f} | {r.val_gain_db:+.2f} | {r.val_bsr:.3f} | {r.shifted_gain_db:+.2f} | "
                     f"{r.shifted_bsr:.3f} | {r.worst_shifted_gain_db:+.2f} | {r.shifted_cases_worse} | {over} |")  # fmt: skip
    fits = table[table["cpu_ms"] <= INFERENCE_BUDGET_MS]["model"].tolist()
    lines += ["", f"Within {INFERENCE_BUDGET_MS} ms here: {', '.join(fits) or 'none'}.", "", f"Scored at {commit[:12]}.", ""]
    return "\n".join(lines)


def cpu_ms(model: torch.nn.Module, repeats: int = 5) -> float:
    """Median milliseconds per 512 px radiograph through the suppression command's model path
    (the weights channels-last where that is this CPU's fastest layout, as load_trained's
    fastest_layout gives them; suppress_full with amp "auto") on this machine's CPU."""
    if fastest(torch.device("cpu"))["channels_last"]:
        model = model.to(memory_format=torch.channels_last)  # in place, as load_trained does it
    x = chest_phantom(512, seed=0)[0][None, None]
    times = []
    for _ in range(repeats + 2):
        t0 = time.perf_counter()
        suppress_full(model, x, 512, "auto")
        times.append(time.perf_counter() - t0)
    return 1000 * sorted(times[2:])[repeats // 2]


def _lineage(model: str) -> list[str]:
    """The candidates to train, in order, to regenerate ``model`` (those it continues first)."""
    name = model.split("/")[0]
    return list(dict.fromkeys(n for m in _prerequisites(name) for n in _lineage(m))) + [name]


def recipe_text(chosen: str, n_candidates: int, n_cases: int) -> str:
    return (
        f"v1's recipe (the paper profile's R-AE + MS-SSIM, its loss weights and learning rates) with {_changes_text(chosen)}: "
        "rendering augmentation (augment.RenderAugment: grey curves, edge enhancement, noise, blur, resolution, pixel aspect, "
        f"X and S alike; no JPEG) on that share of the training images. Each stage stopped by its epochs or its share of a time budget "
        f"(the epochs above). Chosen among "
        f"{n_candidates} candidate models on the {n_cases} validation cases as stored and rendered as other devices render them "
        "(results/v2/candidates.md): never worse than doing nothing on a shifted case, the best mean shifted gain; "
        "no setting chosen on the test cases."
    )


def validation_section(chosen: str, rows: pd.DataFrame) -> dict:
    as_stored = rows[rows["family"] == ORIGINAL[0]]
    lines = ["| model | PSNR (dB) | gain over doing nothing (dB) | BSR |", "| --- | --- | --- | --- |",
             f"| doing nothing (S_hat = X) | {as_stored['identity_psnr'].mean():.2f} | 0 | 0 |"]  # fmt: skip
    for label, name in (("v1", "v1"), ("v2", chosen)):
        lines.append(f"| {label} | {as_stored[f'{name}_psnr'].mean():.2f} | {as_stored[f'{name}_gain'].mean():+.2f} | {as_stored[f'{name}_bsr'].mean():.3f} |")
    return {"what": f"the {len(as_stored)} validation cases as stored, mean over cases", "table": lines}


def shifted_section(rows: pd.DataFrame, chosen: str) -> dict:
    fam = shifted_summary(rows[rows["family"] != ORIGINAL[0]].rename(columns=lambda c: c.replace(chosen, "v2", 1) if c.startswith(chosen + "_") else c), by="family")
    lines = ["| family | cases | doing nothing PSNR | v1 gain | v2 gain | v2 worst case | cases worse than nothing: v1 / v2 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in fam.itertuples():
        lines.append(f"| {r.family} | {r.cases} | {r.identity_psnr:.2f} | {r.v1_gain:+.2f} | {r.v2_gain:+.2f} | {r.v2_worst_gain:+.2f} | {r.v1_worse} / {r.v2_worse} |")
    return {"what": "the validation cases rendered as other devices render them (augment.SHIFTED, X and S alike), PSNR gain over doing nothing in dB, mean over renderings and cases", "table": lines}


def cpu_inference_text(folders: dict[str, Path], repeats: int = 10) -> str:
    """Median wall time of one 512 px radiograph through the suppression command's model path
    (load_trained with the fastest layout, suppress_full with amp "auto") on this machine's CPU."""
    said = [f"{label} {cpu_ms(load_trained(folder, 'cpu', fastest_layout=True).model, repeats):.0f} ms" for label, folder in folders.items()]
    return f"median of {repeats} runs per 512 px radiograph, {torch.get_num_threads()} CPU threads ({machine()}): " + ", ".join(said) + "."


def write_provenance(out: Path, step: str, data_dir, started: dict) -> Path:
    """results/v2/provenance_<step>.json: what made the step's tables (data, the models' seed, the
    command, the commit and uncommitted files as the step started, machine, wall time)."""
    rec = record(step=step, data=data_tag(data_dir), seed=0, device=describe(pick_device("auto")),
                 command=f"python -m dae_lib.studies.v2 {step} --data {portable(data_dir)}",
                 wall_seconds=round(time.perf_counter() - started["t0"], 1))  # fmt: skip
    return write_json_atomic(out / f"provenance_{step}.json", {**rec, "commit": started["commit"], "uncommitted": started["uncommitted"]})


def _started() -> dict:
    return {"t0": time.perf_counter(), "commit": git_commit(), "uncommitted": dirty_files()}


def _write(path: Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dae_lib.studies.v2", description=__doc__.split("\n")[0])
    p.add_argument("step", choices=("baseline", "train", "select", "release", "averages"))
    p.add_argument("--candidate", default=None, help="release: this candidate (default: select's choice)")
    p.add_argument("--data", required=True, help="the BSE-JSRT folder")
    p.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--device", default="auto")
    p.add_argument("--jobs", type=int, default=1, help="candidates trained at once (a GPU holds several)")
    p.add_argument("--minutes", type=float, default=10.0, help="time budget of each candidate's stages (default 10; shared by STAGES' shares)")
    p.add_argument("--stages", type=int, nargs="+", choices=range(1, len(STAGES) + 1), default=None, help="only these of STAGES (1-based; default all; a candidate of CONTINUES runs its one stage)")
    p.add_argument("--runs", default=None, help="runs root (default runs/v2)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    def go():
        data_dir = normalise_data_dir(args.data)
        if args.step == "baseline":
            rows, shares = baseline(data_dir)
            print(shifted_summary(rows, by="family").round(3).to_string(index=False))
            print(shares.drop(columns="case_id").mean().round(3).to_string())
        elif args.step == "train":
            run = None if args.stages is None else tuple(k - 1 for k in sorted(set(args.stages)))
            train_all(args.candidates, data_dir, args.device, args.jobs, args.minutes * 60, args.runs and Path(args.runs), run=run)
        elif args.step == "averages":
            print(averages(data_dir, args.runs and Path(args.runs)).round(3).to_string(index=False))
        elif args.step == "release":
            print(f"released: {portable(release(data_dir, args.candidate, args.runs and Path(args.runs)))}")
        else:
            table, chosen = select(data_dir, args.runs and Path(args.runs))
            print(table.round(3).to_string(index=False))
            print(f"chosen: {chosen}")
        print(f"wall time {time.perf_counter() - t0:.0f} s")
        return 0

    return run_guarded(go)


if __name__ == "__main__":
    sys.exit(main())
