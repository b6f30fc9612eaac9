"""Table 1: the four variants' test metrics beside the identity baseline and the paper's values.

``collect`` gathers the per-image test metrics of the runs that exist, ``summarize`` (from
evaluate.py) turns them into mean +- std, ``write_table1`` stores one block per (data, profile)
in results/table1.csv and results/table1.md (other blocks are kept), and ``claims`` says in words
which of the paper's claims hold on these numbers, from paired per-image differences; on fewer
than stats.MIN_TEST_CASES test cases, or with an interval that is not finite, a claim reads "too few
test cases to judge" (its numbers still shown), never "holds" or "does not hold".
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import yaml

from ..atomic import atomic_path, write_json_atomic
from ..errors import RunDirError
from .evaluate import IDENTITY, evaluate_run
from ..models import FAMILIES, REPRODUCED, get_variant, variants
from ..metrics import HEAD, REGION, TABLE1, Metric, by_name, registered
from ..runs import BEST_WEIGHTS, PROVENANCE_FILE, RESULTS_DIR, TEST_METRICS, finished_runs, find_runs, portable, seed_folders
from .stats import MIN_TEST_CASES, judgeable, mean_interval

PAPER_FILE = Path(__file__).with_name("paper_table1.yaml")
#: What each of the paper's paired claims is judged on, and what ranks the variants ("the best
#: variant", "beats doing nothing"); metric names of metrics.REGISTRY.
CLAIM_METRICS = ("psnr", "ssim")
RANK_METRIC = "psnr"


def paper_values() -> dict:
    """The transcription of the paper's Table 1 (dae_lib/paper_table1.yaml) as stored."""
    return yaml.safe_load(PAPER_FILE.read_text())


def paper_row(method: str) -> dict[str, float | None]:
    """The paper's values for the row ``method`` (our label, e.g. "DAE"), by metric name, for every
    Table 1 metric: the one place the paper's column is read. None where the paper gives no value
    (a row or metric it does not have, or the table not transcribed yet)."""
    table = paper_values()
    row = ((table.get("values") or {}).get(method) or {}) if table.get("transcribed") else {}
    return {m.name: row.get(m.name) for m in registered(TABLE1)}


def _names(*groups: str) -> list[str]:
    """The names of the registered metrics of ``groups``."""
    return [m.name for m in registered(*groups)]


def implied_identity_psnr(psnr: float, bsr: float) -> float:
    """The PSNR of doing nothing (S_hat = X) that a row's PSNR and BSR imply, in dB.

    With BSR = 1 - MSE(S_hat, S) / MSE(X, S) and PSNR = 10 log10(1 / MSE(S_hat, S)) (data range 1):
        PSNR_identity = 10 log10(1 / MSE(X, S)) = PSNR + 10 log10(1 - BSR).
    Exact for one image; for means over images it is the identity PSNR of an "average" image
    (the means of a log and of a ratio do not commute), close when images are alike.
    """
    return psnr + 10 * math.log10(1 - bsr) if bsr < 1 else float("-inf")


def paper_regime(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's Table 1 rows with the identity PSNR each implies, and, when ``table`` (our
    results/table1.csv) is given, our measured identity PSNR of each BSE-JSRT block beside them."""
    rows = []
    for method in paper_values()["values"]:
        v = paper_row(method)
        if v.get("psnr") is None or v.get("bsr") is None:
            continue
        rows.append({"method": method, **v, "implied_identity_psnr": implied_identity_psnr(v["psnr"], v["bsr"])})
    out = pd.DataFrame(rows)
    if table is not None and len(out):
        ident = table[(table["method"] == IDENTITY) & (table["data"] != "phantom")]
        for _, r in ident.iterrows():
            out[f"our identity PSNR ({r['data']}, {r['profile']})"] = r["psnr_mean"]
    return out


def collect(runs_dir: str | Path, data=None) -> tuple[pd.DataFrame, list[str]]:
    """Per-image test metrics of every finished run under ``runs_dir`` and its seed<k>/ folders
    (+ identity), with a ``seed`` column, and the variants missing for seed 0. A run's
    test_metrics.csv is reused when it is newer than its weights."""
    frames, missing = [], []
    for seed, folder in seed_folders(runs_dir).items():
        df, miss = _collect_one_seed(folder, data)
        if seed == 0:
            missing = miss
        if len(df):
            frames.append(df.assign(seed=seed))
    if not frames:
        return pd.DataFrame(columns=["case_id", "method", "seed", *_names(TABLE1)]), missing
    return pd.concat(frames, ignore_index=True), missing


def _collect_one_seed(runs_dir: Path, data) -> tuple[pd.DataFrame, list[str]]:
    """collect's work on one seed's folder: each finished run's cached test metrics, evaluated
    again where the cache lacks a registered metric the run should have."""
    frames = []
    done, missing = finished_runs(runs_dir)
    for variant, run in done.items():
        weights, cached = run / BEST_WEIGHTS, run / TEST_METRICS
        df = pd.read_csv(cached) if cached.exists() and cached.stat().st_mtime >= weights.stat().st_mtime else None
        needed = set(_names(TABLE1, REGION, *([HEAD] if get_variant(variant).seg_head else [])))
        if df is None or not needed <= set(df.columns):  # absent, stale, or from an older evaluation
            df = evaluate_run(run, data)
        frames.append(df if not frames else df[df["method"] != IDENTITY])
    if not frames:
        return pd.DataFrame(columns=["case_id", "method", *_names(TABLE1)]), missing
    return pd.concat(frames, ignore_index=True), missing


def run_provenance(runs_dir: str | Path) -> dict:
    """Provenance of the runs in a table, by variant: from each run's provenance.json."""
    out = {}
    for variant, run in find_runs(runs_dir).items():
        p = run / PROVENANCE_FILE
        if p.exists():
            out[variant] = json.loads(p.read_text())
    return out


def paired_difference(df: pd.DataFrame, a: str, b: str, metric: str) -> dict:
    """Difference a - b, signed so that > 0 means a is better, paired on the same test images (and
    the same seed). With one seed the unit is the image; with several, the seed: each seed's mean
    per-image difference is one observation. Returns mean, 95 % half-width (Student t,
    stats.mean_interval), units where a wins, n and the unit ("images" | "seeds"), and the number of
    paired test cases ("cases")."""
    seeds = df["seed"] if "seed" in df else pd.Series(0, index=df.index)
    wide = df.assign(seed=seeds).pivot_table(index=["seed", "case_id"], columns="method", values=metric, aggfunc="first")
    d = (wide[a] - wide[b]).dropna()
    cases = d.index.get_level_values("case_id").nunique()
    if not by_name(metric).higher_is_better:
        d = -d
    unit = "seeds" if d.index.get_level_values("seed").nunique() > 1 else "images"
    if unit == "seeds":
        d = d.groupby(level="seed").mean()
    mean, half, n = mean_interval(d)
    return {"mean": mean, "half": half, "wins": int((d > 0).sum()), "n": n, "unit": unit, "cases": cases}


def _too_few(n_cases: int) -> str:
    """The verdict of a claim that cannot be judged, with the number of test cases it had."""
    return f"too few test cases to judge ({n_cases} test case{'s' if n_cases != 1 else ''}, at least {MIN_TEST_CASES} needed)"


def _quantity(metric: Metric, value: float) -> str:
    """A value in its metric's format, followed by the unit where it has one ("36.27 dB")."""
    return f"{metric.format(value)} {metric.unit}" if metric.unit else metric.format(value)


def _compare(df, a, b, what) -> str:
    """One paired claim "a improves on b", judged on each of CLAIM_METRICS."""
    parts, better, worse, results = [], 0, 0, []
    for metric in map(by_name, CLAIM_METRICS):
        r = paired_difference(df, a, b, metric.name)
        results.append(r)
        better += r["mean"] - r["half"] > 0
        worse += r["mean"] + r["half"] < 0
        unit = f" {metric.unit}" if metric.unit else ""
        parts.append(f"{metric.short} {r['mean']:+.3g} +- {r['half']:.2g}{unit}, better on {r['wins']}/{r['n']} {r['unit']}")
    n_cases = min(r["cases"] for r in results)
    if not judgeable(n_cases, *(r["half"] for r in results)):
        return f"- {what}: {_too_few(n_cases)} here ({a} vs {b}, paired, 95 % interval: {'; '.join(parts)})."
    verdict = {
        (2, 0): "holds",
        (0, 2): "is contradicted",
        (1, 0): "partly holds (one metric better, the other within noise)",
        (0, 1): "is partly contradicted (one metric worse, the other within noise)",
        (1, 1): "is mixed (one metric better, the other worse)",
        (0, 0): "is not shown (both differences within the 95 % interval)",
    }[(better, worse)]
    return f"- {what}: {verdict} here ({a} vs {b}, paired, 95 % interval: {'; '.join(parts)})."


def _ranking_claims(family: str, labels: dict, means: pd.Series, n_cases: int) -> list[str]:
    """The claims that rank a family's variants by their mean RANK_METRIC: the paper's full model
    is the best, and every variant beats doing nothing. ``labels``: {ablation: label} of the
    variants in the table; ``means``: mean RANK_METRIC per method, the identity included."""
    rank = by_name(RANK_METRIC)
    models = [m for m in labels.values() if m in means.index]
    best = models[0]
    for m in models[1:]:
        best = m if rank.better(means[m], means[best]) else best
    judged = judgeable(n_cases)
    verdict = ("holds" if best == labels["dae_msssim"] else "does not hold") if judged else _too_few(n_cases)
    prefix = FAMILIES[family].label_prefix
    among = "" if family == REPRODUCED else f" of the {prefix} family"
    out = [f"- {labels['dae_msssim']} is the best variant{among}: {verdict} here (highest mean {rank.short}: {best}, {_quantity(rank, means[best])})."]
    beat = [m for m in models if rank.better(means[m], means[IDENTITY])]
    which = "Every variant" if family == REPRODUCED else f"Every {prefix} variant"
    if not judged:
        verdict = f"{_too_few(n_cases)} here ({len(beat)} of {len(models)} beat it)"
    elif len(beat) == len(models):
        verdict = "holds here"
    else:
        verdict = f"does not hold ({len(beat)} of {len(models)} beat it) here"
    out.append(f"- {which} beats doing nothing (identity, {_quantity(rank, means[IDENTITY])}): {verdict}.")
    return out


def claims(df: pd.DataFrame) -> list[str]:
    """The paper's claims, checked on paired per-image differences of the test cases, for each
    model family in the table (the paper's own, and again on the improved family)."""
    have = set(df["method"])
    means = df.groupby("method")[RANK_METRIC].mean()
    n_cases = df.loc[df["method"] == IDENTITY, "case_id"].nunique() if IDENTITY in have else df["case_id"].nunique()
    out = []
    for family in FAMILIES:
        L = {v.ablation: v.label for v in variants(family).values()}
        pairs = [
            (L["ae_msssim"], L["ae"], f"The MS-SSIM loss improves the plain {L['ae']}"),
            (L["dae_msssim"], L["dae"], f"The MS-SSIM loss improves the {L['dae']}"),
            (L["dae"], L["ae"], f"The bone-segmentation branch (disentanglement) improves the {L['ae']}"),
            (L["dae_msssim"], L["ae_msssim"], f"The bone-segmentation branch improves {L['ae_msssim']}"),
        ]
        out += [_compare(df, a, b, what) for a, b, what in pairs if a in have and b in have]
        if IDENTITY in have and any(m in have for m in L.values()):
            out += _ranking_claims(family, L, means, n_cases)
    return out


def _commits(block: pd.DataFrame) -> str:
    """The commits of a block's runs, each with the methods trained at it (they may differ when
    some variants were retrained, e.g. after a change that concerns only them)."""
    models = block[block["commit"].notna()]
    by = {c: list(g["method"]) for c, g in models.groupby("commit", sort=False)}
    if len(by) <= 1:
        return f"commit {next(iter(by), 'unknown')}"
    return "commits " + "; ".join(f"{c} ({', '.join(m)})" for c, m in by.items())


def _span(utc: pd.Series) -> str:
    """The time span of a block's trainings: "first to last", one time, or "n/a"."""
    times = sorted(str(t) for t in utc.dropna())
    return "n/a" if not times else times[0] if times[0] == times[-1] else f"{times[0]} to {times[-1]}"


def _fmt(v, metric: Metric) -> str:
    """A table cell: ``v`` in the metric's format, "n/a" where it is missing (None or NaN)."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else metric.format(v)


def _md_row(cells) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _md_rule(n: int) -> str:
    """The header rule of a Markdown table of ``n`` columns."""
    return "|" + " --- |" * n


def table_rows(summary: pd.DataFrame, data: str, profile: str, prov: dict) -> pd.DataFrame:
    """The CSV block of one (data, profile): metrics, the paper's values and the provenance."""
    label_to_variant = {v.label: name for name, v in variants().items()}
    rows = []
    for method, r in summary.iterrows():
        variant = label_to_variant.get(method)
        p = prov.get(variant) or next(iter(prov.values()), {})
        row = {"data": data, "profile": profile, "method": method, "n_test": int(r["n"]), "n_seeds": int(r.get("n_seeds", 1))}
        for k in _names(TABLE1):
            row[f"{k}_mean"] = r[f"{k}_mean"]
            row[f"{k}_std"] = r[f"{k}_std"]
        row.update({f"paper_{k}": v for k, v in paper_row(method).items()})
        for k in _names(REGION, HEAD):
            row[f"{k}_mean"] = r.get(f"{k}_mean")
        row.update(
            device=p.get("device"), seed=p.get("seed"), epochs=p.get("epochs_done"),
            train_seconds=p.get("train_seconds_total") if variant else None,
            commit=p.get("commit"), data_source=portable(p.get("data")), utc=p.get("utc"),
        )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def write_table1(summary, results_dir, data: str, profile: str, prov: dict, claim_lines=()) -> tuple[Path, Path]:
    """Replace this (data, profile) block in results/table1.csv and re-render results/table1.md."""
    if len(summary) == 0:
        raise RunDirError(f"no finished runs to tabulate for {data}/{profile}: train the variants (notebook 2) first")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = results_dir / "table1.csv", results_dir / "table1.md"
    block = table_rows(summary, data, profile, prov)
    if csv_path.exists() and csv_path.stat().st_size > 0:
        old = pd.read_csv(csv_path)
        old = old[~((old["data"] == data) & (old["profile"] == profile))]
        block = pd.concat([old, block], ignore_index=True)
    block["data_source"] = block["data_source"].map(portable)  # also blocks written before this rule
    with atomic_path(csv_path) as tmp:
        block.to_csv(tmp, index=False)
    claims_path = results_dir / "table1_claims.json"
    all_claims = json.loads(claims_path.read_text()) if claims_path.exists() else {}
    all_claims[f"{data}/{profile}"] = list(claim_lines)
    write_json_atomic(claims_path, all_claims)
    md = render_markdown(block, all_claims)
    with atomic_path(md_path) as tmp:
        tmp.write_text(md)
    return csv_path, md_path


INTRO = [
    "# Table 1: bone suppression on the test cases",
    "",
    "Mean +- standard deviation over the test images (85/15 split by case ID). Metrics on the images as the",
    "model sees them: clinical polarity, [0, 1], the profile's size. BSR: 1 - |S_hat - S|^2 / |X - S|^2;",
    "RMAE: sum|S_hat - S| / sum|S|; PSNR (data range 1); SSIM (Wang 2004: Gaussian 11x11, sigma 1.5).",
    "The identity row (S_hat = X) is the do-nothing baseline. Regenerate a block with",
    "`make reproduce DATA=... PROFILE=...`.",
    "",
]


def render_markdown(table: pd.DataFrame, all_claims: dict) -> str:
    """results/table1.md from results/table1.csv (``table``) and the claims of each block
    ({"data/profile": lines}): the paper's table and the regime it implies, then one section per
    (data, profile) block."""
    lines = [*INTRO, *_paper_section(table)]
    several = _seed_unit_pointer(table)
    for (data, profile), block in table.groupby(["data", "profile"], sort=False):
        lines += _block_section(data, profile, block, all_claims.get(f"{data}/{profile}"), several)
    return "\n".join(lines)


def _paper_section(table: pd.DataFrame) -> list[str]:
    """The paper's Table 1 with the identity PSNR each row implies, beside our measured ones."""
    paper = paper_values()
    if not paper.get("transcribed"):
        return ["The paper's values are not transcribed yet (see dae_lib/paper_table1.yaml): that column reads n/a.", ""]
    regime = paper_regime(table)
    ours = [c for c in regime.columns if c.startswith("our identity")]
    gap = ""
    if ours:
        d = regime[ours].to_numpy().ravel()[:, None] - regime["implied_identity_psnr"].to_numpy()[None, :]
        gap = f" ({d.min():.1f} to {d.max():.1f} dB lower identity PSNR: that much more bone energy, X - S, than in our copy)"
    lines = [
        "## The paper's Table 1 and the regime it implies",
        "",
        f"{paper['source']}. Each paper row implies the PSNR of doing nothing on the paper's data,",
        "PSNR + 10 log10(1 - BSR) (table1.implied_identity_psnr); ours is measured. The paper's images differ",
        f"far more from their soft-tissue targets than ours{gap}, so absolute PSNR and SSIM do not compare",
        "across the two tables; BSR and the gain over doing nothing do. Also different: 247 pairs there, 128",
        "here; the resolution, bit depth and preprocessing of the paper's copy are not stated.",
        "",
        paper_regime_markdown(table),
    ]
    return [*lines, ""]


def paper_regime_markdown(table: pd.DataFrame | None = None) -> str:
    """The paper's Table 1 rows as a Markdown table, each metric in Table 1's format, with the
    identity PSNR each row implies and, where ``table`` (our table1.csv) has real-data blocks,
    our measured identity PSNR of each (paper_regime)."""
    regime = paper_regime(table)
    ours = [c for c in regime.columns if c.startswith("our identity")]
    psnr, columns = by_name("psnr"), registered(TABLE1)
    lines = [
        _md_row(["paper row", *(m.label for m in columns), f"implied identity {psnr.label}", *ours]),
        _md_rule(len(columns) + 2 + len(ours)),
    ]
    for _, r in regime.iterrows():
        cells = [_fmt(r.get(m.name), m) for m in columns]
        lines.append(_md_row([r["method"], *cells, *(psnr.format(float(r[c])) for c in ("implied_identity_psnr", *ours))]))
    return "\n".join(lines)


def block_seeds(block: pd.DataFrame) -> int:
    """The number of training seeds a (data, profile) block of table1.csv averages over (1 for
    blocks written before the column existed)."""
    return int(block["n_seeds"].max()) if "n_seeds" in block and block["n_seeds"].notna().any() else 1


#: The label of every verdict judged on one training seed (notebook 03, results/table1.md).
ONE_SEED = "one training seed: the interval is over test images, not training runs"


def seed_unit_blocks(table: pd.DataFrame) -> list[str]:
    """The (data, profile) blocks of a table1.csv ``table`` that average over several training
    seeds, where the claims take the seed as the unit: ["bse-jsrt-512, profile quick (3 seeds)"]."""
    out = []
    for (data, profile), block in table.groupby(["data", "profile"], sort=False):
        if (n := block_seeds(block)) > 1:
            out.append(f"{data}, profile {profile} ({n} seeds)")
    return out


def _seed_unit_pointer(table: pd.DataFrame) -> list[str]:
    """seed_unit_blocks of ``table`` and of the committed results/table1.csv (a scratch table of
    one seed still points to the committed blocks with several)."""
    committed = RESULTS_DIR / "table1.csv"
    more = seed_unit_blocks(pd.read_csv(committed)) if committed.is_file() else []
    return list(dict.fromkeys([*seed_unit_blocks(table), *more]))


def seed_note(n_seeds: int, several=()) -> str:
    """What the claims of a block of ``n_seeds`` seeds rest on: "" for several seeds (the seed is
    the unit); for one, ONE_SEED and where the seed-as-unit results are (``several``: the blocks
    of seed_unit_blocks), or how to make one."""
    if n_seeds > 1:
        return ""
    where = (
        f"the seed as the unit: results/table1.md, {'; '.join(several)}" if several
        else "no block with several seeds yet (`make reproduce SEEDS=3` makes one)"
    )
    return f"**Verdicts on {ONE_SEED}**; {where}."


def _block_section(data: str, profile: str, block: pd.DataFrame, claim_lines, several=()) -> list[str]:
    """One (data, profile) block: provenance, Table 1 beside the paper's column, the per-region
    table and the claims (labelled as resting on one seed where they do: seed_note; ``several``:
    the blocks with several seeds, seed_unit_blocks)."""
    first = block.iloc[-1]
    n_seeds = block_seeds(block)
    seeds = (
        f"{n_seeds} seeds (mean +- sd over the seeds of each seed's mean over the test images; the claims take the seed as the unit)"
        if n_seeds > 1 else f"seed {first['seed']} (mean +- sd over the test images)"
    )
    epochs = ", ".join(str(int(e)) for e in dict.fromkeys(block["epochs"].dropna()))
    lines = [
        f"## {data}, profile {profile}",
        "",
        f"Data: {first['data_source']}; {int(block['n_test'].iloc[0])} test cases; device: {first['device']}; "
        f"{seeds}; epochs {epochs}; {_commits(block)}; trained {_span(block['utc'])}.",
        "",
        *_main_table(block),
        *_region_table(block),
    ]
    if claim_lines:
        note = seed_note(n_seeds, several)
        lines += ["", "The paper's claims on these numbers (paired per-image differences):", "", *([note, ""] if note else []), *claim_lines]
    return [*lines, ""]


def _main_table(block: pd.DataFrame) -> list[str]:
    """Table 1 of one block: mean +- sd of each Table 1 metric, the paper's value, training time."""
    columns = registered(TABLE1)
    head = ["method", *(m.label for m in columns), *(f"paper {m.short}" for m in columns), "train s"]
    lines = [_md_row(head), _md_rule(len(head))]
    for _, r in block.iterrows():
        cells = [str(r["method"])]
        cells += [f"{_fmt(r.get(f'{m.name}_mean'), m)} +- {_fmt(r.get(f'{m.name}_std'), m)}" for m in columns]
        cells += [_fmt(r.get(f"paper_{m.name}"), m) for m in columns]
        cells.append("" if pd.isna(r["train_seconds"]) else f"{float(r['train_seconds']):.0f}")
        lines.append(_md_row(cells))
    return lines


def _region_table(block: pd.DataFrame) -> list[str]:
    """The per-region (and segmentation-head) means of one block; nothing for a block evaluated
    before the per-region metrics existed."""
    if not any(f"{k}_mean" in block and block[f"{k}_mean"].notna().any() for k in _names(REGION)):
        return []
    columns = registered(REGION, HEAD)
    lines = [
        "",
        "Per region (mean over the test images): inside the bone mask M, where bone is removed, and",
        "outside it, where the soft tissue should stay as it is. For the variants with a segmentation",
        "head, its Dice against M (the head is run for this only, never at inference).",
        "",
        _md_row(["method", *(m.label for m in columns)]),
        _md_rule(len(columns) + 1),
    ]
    for _, r in block.iterrows():
        lines.append(_md_row([str(r["method"]), *(_fmt(r.get(f"{m.name}_mean"), m) for m in columns)]))
    return lines


def committed_blocks(results_dir: str | Path, skip_data: str | None = None) -> list[tuple[pd.DataFrame, str]]:
    """The (data, profile) blocks of a results folder's table1.csv with their sections as
    table1.md renders them (provenance line, Table 1, per-region table, claims from
    table1_claims.json), rendered from the CSV, in the table's order; blocks of ``skip_data`` left
    out. Nothing when the folder holds no table."""
    results_dir = Path(results_dir)
    csv_path, claims_path = results_dir / "table1.csv", results_dir / "table1_claims.json"
    if not csv_path.is_file():
        return []
    table = pd.read_csv(csv_path)
    all_claims = json.loads(claims_path.read_text()) if claims_path.is_file() else {}
    several = _seed_unit_pointer(table)
    out = []
    for (data, profile), block in table.groupby(["data", "profile"], sort=False):
        if data != skip_data:
            lines = _block_section(data, profile, block, all_claims.get(f"{data}/{profile}"), several)
            out.append((block, "\n".join(lines).rstrip("\n") + "\n"))
    return out


def block_section(results_dir: str | Path, data: str, profile: str) -> str:
    """The section of one (data, profile) block in a results folder's table1.md ("" without one)."""
    return next((section for block, section in committed_blocks(results_dir) if (block["data"].iloc[0], block["profile"].iloc[0]) == (data, profile)), "")


def summary_markdown(summary: pd.DataFrame) -> str:
    """A Markdown table of a ``summarize`` result (mean +- sd per metric) beside the paper's values,
    for display in notebook 03."""
    columns = registered(TABLE1)
    lines = [_md_row(["method", *(m.short for m in columns), *(f"paper {m.short}" for m in columns)]), _md_rule(1 + 2 * len(columns))]
    for method, r in summary.iterrows():
        paper = paper_row(method)
        ours = [f"{_fmt(r.get(f'{m.name}_mean'), m)} +- {_fmt(r.get(f'{m.name}_std'), m)}" for m in columns]
        lines.append(_md_row([str(method), *ours, *(_fmt(paper[m.name], m) for m in columns)]))
    return "\n".join(lines)


def against_identity(table: pd.DataFrame, family: str = REPRODUCED) -> pd.DataFrame:
    """Each (data, profile) block of a table1.csv ``table`` with the variants of ``family``
    beside doing nothing: one row per block with the identity's PSNR, each variant's PSNR and BSR,
    how many of them beat the identity's mean PSNR, how many have a negative BSR, and the block's
    provenance (seeds, test cases, commit)."""
    labels = [v.label for v in variants(family).values()]
    rows = []
    for (data, profile), block in table.groupby(["data", "profile"], sort=False):
        by = block.set_index("method")
        if IDENTITY not in by.index or not set(labels) & set(by.index):
            continue
        shown = [m for m in labels if m in by.index]
        ident = float(by.loc[IDENTITY, "psnr_mean"])
        commits = block["commit"].dropna().astype(str)
        row = {"data": data, "profile": profile, "n_seeds": block_seeds(block), "n_test": int(block["n_test"].iloc[0]),
               "commit": commits.iloc[-1][:7] if len(commits) else "unknown", "identity_psnr": ident,
               "beat": sum(float(by.loc[m, "psnr_mean"]) > ident for m in shown), "of": len(shown),
               "bsr_negative": sum(float(by.loc[m, "bsr_mean"]) < 0 for m in shown)}  # fmt: skip
        for m in shown:
            row[f"{m} psnr"], row[f"{m} bsr"] = float(by.loc[m, "psnr_mean"]), float(by.loc[m, "bsr_mean"])
        rows.append(row)
    return pd.DataFrame(rows)


def against_identity_markdown(table: pd.DataFrame, family: str = REPRODUCED) -> str:
    """``against_identity`` as Markdown (PSNR in 2 decimals, as Table 1; BSR in 4; mean over the
    test images, and over the seeds where there are several), then one sentence per block: how
    many variants beat doing nothing, with its provenance."""
    rows = against_identity(table, family)
    if not len(rows):
        return "No committed block with these variants and the identity (results/table1.csv)."
    psnr, bsr = by_name("psnr"), by_name("bsr")
    labels = [v.label for v in variants(family).values() if f"{v.label} psnr" in rows]
    head = ["data, profile", f"identity {psnr.label}", *(f"{m} {psnr.short} / {bsr.short}" for m in labels)]
    lines = [_md_row(head), _md_rule(len(head))]
    for _, r in rows.iterrows():
        cells = [f"{r['data']}, {r['profile']}", psnr.format(r["identity_psnr"])]
        cells += ["n/a" if pd.isna(r[f"{m} psnr"]) else f"{psnr.format(r[f'{m} psnr'])} / {bsr.format(r[f'{m} bsr'])}" for m in labels]
        lines.append(_md_row(cells))
    lines.append("")
    for _, r in rows.iterrows():
        seeds = f"{r['n_seeds']} seeds" if r["n_seeds"] > 1 else "one seed"
        lines.append(
            f"- {r['data']}, profile {r['profile']} ({r['n_test']} test cases, {seeds}, commit {r['commit']}): "
            f"{r['beat']} of {r['of']} beat doing nothing's mean PSNR; {r['bsr_negative']} of {r['of']} have a negative BSR."
        )
    return "\n".join(lines)
