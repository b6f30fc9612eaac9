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

from .atomic import atomic_path, write_json_atomic
from .errors import RunDirError
from .evaluate import IDENTITY, evaluate_run, finished_runs, find_runs, seed_folders
from .families import FAMILIES, get_variant, variants
from .metrics import FORMATS, HIGHER_IS_BETTER, METRICS, REGION_METRICS
from .paths import portable
from .stats import MIN_TEST_CASES, judgeable, mean_interval

PAPER_FILE = Path(__file__).with_name("paper_table1.yaml")


def paper_values() -> dict:
    return yaml.safe_load(PAPER_FILE.read_text())


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
    for method, v in paper_values()["values"].items():
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
        return pd.DataFrame(columns=["case_id", "method", "seed", *METRICS]), missing
    return pd.concat(frames, ignore_index=True), missing


def _collect_one_seed(runs_dir: Path, data) -> tuple[pd.DataFrame, list[str]]:
    frames = []
    done, missing = finished_runs(runs_dir)
    for variant, run in done.items():
        weights, cached = run / "best.safetensors", run / "test_metrics.csv"
        df = pd.read_csv(cached) if cached.exists() and cached.stat().st_mtime >= weights.stat().st_mtime else None
        needed = set(REGION_METRICS) | ({"dice"} if get_variant(variant).seg_head else set())
        if df is None or not needed <= set(df.columns):  # absent, stale, or from an older evaluation
            df = evaluate_run(run, data)
        frames.append(df if not frames else df[df["method"] != IDENTITY])
    if not frames:
        return pd.DataFrame(columns=["case_id", "method", *METRICS]), missing
    return pd.concat(frames, ignore_index=True), missing


def run_provenance(runs_dir: str | Path) -> dict:
    """Provenance of the runs in a table, by variant: from each run's provenance.json."""
    out = {}
    for variant, run in find_runs(runs_dir).items():
        p = run / "provenance.json"
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
    if not HIGHER_IS_BETTER[metric]:
        d = -d
    unit = "seeds" if d.index.get_level_values("seed").nunique() > 1 else "images"
    if unit == "seeds":
        d = d.groupby(level="seed").mean()
    mean, half, n = mean_interval(d)
    return {"mean": mean, "half": half, "wins": int((d > 0).sum()), "n": n, "unit": unit, "cases": cases}


def _too_few(n_cases: int) -> str:
    """The verdict of a claim that cannot be judged, with the number of test cases it had."""
    return f"too few test cases to judge ({n_cases} test case{'s' if n_cases != 1 else ''}, at least {MIN_TEST_CASES} needed)"


def _compare(df, a, b, what) -> str:
    parts, better, worse, results = [], 0, 0, []
    for metric in ("psnr", "ssim"):
        r = paired_difference(df, a, b, metric)
        results.append(r)
        better += r["mean"] - r["half"] > 0
        worse += r["mean"] + r["half"] < 0
        unit = " dB" if metric == "psnr" else ""
        parts.append(f"{metric.upper()} {r['mean']:+.3g} +- {r['half']:.2g}{unit}, better on {r['wins']}/{r['n']} {r['unit']}")
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


def claims(df: pd.DataFrame) -> list[str]:
    """The paper's claims, checked on paired per-image differences of the test cases, for each
    model family in the table (the paper's own, and again on the improved family)."""
    have = set(df["method"])
    means = df.groupby("method")["psnr"].mean()
    n_cases = df.loc[df["method"] == IDENTITY, "case_id"].nunique() if IDENTITY in have else df["case_id"].nunique()
    out = []
    for family, fam in FAMILIES.items():
        L = {v.ablation: v.label for v in variants(family).values()}
        pairs = [
            (L["ae_msssim"], L["ae"], f"The MS-SSIM loss improves the plain {L['ae']}"),
            (L["dae_msssim"], L["dae"], f"The MS-SSIM loss improves the {L['dae']}"),
            (L["dae"], L["ae"], f"The bone-segmentation branch (disentanglement) improves the {L['ae']}"),
            (L["dae_msssim"], L["ae_msssim"], f"The bone-segmentation branch improves {L['ae_msssim']}"),
        ]
        for a, b, what in pairs:
            if a in have and b in have:
                out.append(_compare(df, a, b, what))
        models = [m for m in L.values() if m in have]
        if models and IDENTITY in have:
            judged = judgeable(n_cases)
            best = max(models, key=lambda m: means[m])
            verdict = ("holds" if best == L["dae_msssim"] else "does not hold") if judged else _too_few(n_cases)
            among = "" if family == "paper" else f" of the {fam.label_prefix} family"
            out.append(f"- {L['dae_msssim']} is the best variant{among}: {verdict} here (highest mean PSNR: {best}, {means[best]:.2f} dB).")
            beat = [m for m in models if means[m] > means[IDENTITY]]
            which = "Every variant" if family == "paper" else f"Every {fam.label_prefix} variant"
            if not judged:
                verdict = f"{_too_few(n_cases)} here ({len(beat)} of {len(models)} beat it)"
            elif len(beat) == len(models):
                verdict = "holds here"
            else:
                verdict = f"does not hold ({len(beat)} of {len(models)} beat it) here"
            out.append(f"- {which} beats doing nothing (identity, {means[IDENTITY]:.2f} dB): {verdict}.")
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
    times = sorted(str(t) for t in utc.dropna())
    return "n/a" if not times else times[0] if times[0] == times[-1] else f"{times[0]} to {times[-1]}"


def _fmt(v, metric) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else FORMATS[metric].format(v)


def table_rows(summary: pd.DataFrame, data: str, profile: str, prov: dict) -> pd.DataFrame:
    """The CSV block of one (data, profile): metrics, the paper's values and the provenance."""
    paper = paper_values()["values"]
    label_to_variant = {v.label: name for name, v in variants().items()}
    rows = []
    for method, r in summary.iterrows():
        variant = label_to_variant.get(method)
        p = prov.get(variant) or next(iter(prov.values()), {})
        row = {"data": data, "profile": profile, "method": method, "n_test": int(r["n"]), "n_seeds": int(r.get("n_seeds", 1))}
        for k in METRICS:
            row[f"{k}_mean"] = r[f"{k}_mean"]
            row[f"{k}_std"] = r[f"{k}_std"]
        for k in METRICS:
            row[f"paper_{k}"] = (paper.get(method) or {}).get(k)
        for k in (*REGION_METRICS, "dice"):
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


def render_markdown(table: pd.DataFrame, all_claims: dict) -> str:
    paper = paper_values()
    lines = [
        "# Table 1: bone suppression on the test cases",
        "",
        "Mean +- standard deviation over the test images (85/15 split by case ID). Metrics on the images as the",
        "model sees them: clinical polarity, [0, 1], the profile's size. BSR: 1 - |S_hat - S|^2 / |X - S|^2;",
        "RMAE: sum|S_hat - S| / sum|S|; PSNR (data range 1); SSIM (Wang 2004: Gaussian 11x11, sigma 1.5).",
        "The identity row (S_hat = X) is the do-nothing baseline. Regenerate a block with",
        "`make reproduce DATA=... PROFILE=...`.",
        "",
    ]
    if not paper.get("transcribed"):
        lines += ["The paper's values are not transcribed yet (see dae_lib/paper_table1.yaml): that column reads n/a.", ""]
    else:
        regime = paper_regime(table)
        ours = [c for c in regime.columns if c.startswith("our identity")]
        gap = ""
        if ours:
            d = regime[ours].to_numpy().ravel()[:, None] - regime["implied_identity_psnr"].to_numpy()[None, :]
            gap = f" ({d.min():.1f} to {d.max():.1f} dB lower identity PSNR: that much more bone energy, X - S, than in our copy)"
        lines += [
            "## The paper's Table 1 and the regime it implies",
            "",
            f"{paper['source']}. Each paper row implies the PSNR of doing nothing on the paper's data,",
            "PSNR + 10 log10(1 - BSR) (table1.implied_identity_psnr); ours is measured. The paper's images differ",
            f"far more from their soft-tissue targets than ours{gap}, so absolute PSNR and SSIM do not compare",
            "across the two tables; BSR and the gain over doing nothing do. Also different: 247 pairs there, 128",
            "here; the resolution, bit depth and preprocessing of the paper's copy are not stated.",
            "",
            "| paper row | BSR | RMAE | PSNR (dB) | SSIM | implied identity PSNR (dB) |"
            + "".join(f" {c} |" for c in ours),
            "| --- | --- | --- | --- | --- | --- |" + " --- |" * len(ours),
        ]
        for _, r in regime.iterrows():
            lines.append(
                f"| {r['method']} | " + " | ".join(_fmt(float(r[k]), k) for k in METRICS)
                + f" | {r['implied_identity_psnr']:.2f} |" + "".join(f" {float(r[c]):.2f} |" for c in ours)
            )
        lines.append("")
    for (data, profile), block in table.groupby(["data", "profile"], sort=False):
        first = block.iloc[-1]
        n_seeds = int(block["n_seeds"].max()) if "n_seeds" in block and block["n_seeds"].notna().any() else 1
        seeds = (
            f"{n_seeds} seeds (mean +- sd over the seeds of each seed's mean over the test images; the claims take the seed as the unit)"
            if n_seeds > 1 else f"seed {first['seed']} (mean +- sd over the test images)"
        )
        epochs = ", ".join(str(int(e)) for e in dict.fromkeys(block["epochs"].dropna()))
        lines += [
            f"## {data}, profile {profile}",
            "",
            f"Data: {first['data_source']}; {int(block['n_test'].iloc[0])} test cases; device: {first['device']}; "
            f"{seeds}; epochs {epochs}; {_commits(block)}; trained {_span(block['utc'])}.",
            "",
            "| method | BSR | RMAE | PSNR (dB) | SSIM | paper BSR | paper RMAE | paper PSNR | paper SSIM | train s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for _, r in block.iterrows():
            cells = [str(r["method"])]
            cells += [f"{_fmt(r[f'{k}_mean'], k)} +- {_fmt(r[f'{k}_std'], k)}" for k in METRICS]
            cells += [_fmt(None if pd.isna(r[f"paper_{k}"]) else float(r[f"paper_{k}"]), k) for k in METRICS]
            cells.append("" if pd.isna(r["train_seconds"]) else f"{float(r['train_seconds']):.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        region = [k for k in REGION_METRICS if f"{k}_mean" in block and block[f"{k}_mean"].notna().any()]
        if region:
            lines += [
                "",
                "Per region (mean over the test images): inside the bone mask M, where bone is removed, and",
                "outside it, where the soft tissue should stay as it is. For the variants with a segmentation",
                "head, its Dice against M (the head is run for this only, never at inference).",
                "",
                "| method | PSNR in bone mask (dB) | MAE in bone mask | PSNR outside (dB) | MAE outside | Dice of the seg. head |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for _, r in block.iterrows():
                dice = float(r["dice_mean"]) if "dice_mean" in r and pd.notna(r["dice_mean"]) else None
                lines.append(f"| {r['method']} | " + " | ".join(_fmt(float(r[f'{k}_mean']), k) for k in REGION_METRICS) + f" | {_fmt(dice, 'dice')} |")
        if all_claims.get(f"{data}/{profile}"):
            lines += ["", "The paper's claims on these numbers (paired per-image differences):", ""]
            lines += all_claims[f"{data}/{profile}"]
        lines.append("")
    return "\n".join(lines)


def summary_markdown(summary: pd.DataFrame) -> str:
    """A Markdown table of a ``summarize`` result (mean +- sd per metric) beside the paper's values,
    for display in notebook 03."""
    table = paper_values()
    paper = table["values"] if table.get("transcribed") else {}
    head = "| method | " + " | ".join(k.upper() for k in METRICS) + " | " + " | ".join(f"paper {k.upper()}" for k in METRICS) + " |"
    lines = [head, "|" + " --- |" * (1 + 2 * len(METRICS))]
    for method, r in summary.iterrows():
        ours = [f"{_fmt(r[f'{k}_mean'], k)} +- {_fmt(r[f'{k}_std'], k)}" for k in METRICS]
        theirs = [_fmt((paper.get(method) or {}).get(k), k) for k in METRICS]
        lines.append(f"| {method} | " + " | ".join(ours + theirs) + " |")
    return "\n".join(lines)
