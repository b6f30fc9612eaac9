"""Numbers that the prose (README.md, docs/) quotes from a file in results/, rendered from that file.

A quoted number sits between two markers that Markdown does not show:

    make reproduce takes <!-- fact: reproduce-seconds quick phantom all -->764 s<!-- /fact --> on 2 CPU cores

The marker names a fact (FACTS: one function each, reading one results file) and its arguments;
the text between the markers is what the function returns for them. ``python -m dae_lib facts``
rewrites every marked span from the files as they are; ``stale`` lists the spans that disagree
with them (a test runs it, so a sentence and its file cannot drift apart).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..errors import ConfigError
from ..models import FAMILIES, REPRODUCED, label_of, variants
from ..runs import REPO_ROOT, RESULTS_DIR, WALL_TIMES_CSV
from .evaluate import IDENTITY
from .table1 import implied_identity_psnr, paper_row

#: One marked span: the fact's name, its arguments (separated by spaces), the text it renders to.
FACT = re.compile(r"<!-- fact: (?P<name>[\w-]+)(?P<args>(?: [^\s>]+)*) -->(?P<text>.*?)<!-- /fact -->", re.S)

#: The prose that may quote results: the first page and every page of docs/.
PROSE = ("README.md", "docs/**/*.md")

#: The family names results/wall_times.csv has used (the reproduced family was once "paper").
_FAMILY_ALIASES = {"paper": "reproduced"}


def _families(cell) -> frozenset[str]:
    return frozenset(_FAMILY_ALIASES.get(f, f) for f in str(cell).split("+") if f)


def duration(seconds: float) -> str:
    """A wall time as the prose writes it: "764 s", with minutes or hours beside it from 10 minutes."""
    s = round(float(seconds))
    if s < 600:
        return f"{s} s"
    if s < 3600:
        return f"{s} s ({s / 60:.0f} min)"
    return f"{s} s ({s // 3600} h {round(s % 3600 / 60)} min)"


def wall_time_row(profile: str, data: str, families: str = "all", results: Path = RESULTS_DIR) -> pd.Series:
    """The latest row of results/wall_times.csv for ``profile`` on ``data`` with ``families``
    ("all": every model family; else one family's name): the run the prose quotes."""
    wanted = frozenset(FAMILIES) if families == "all" else frozenset({families})
    table = pd.read_csv(Path(results) / WALL_TIMES_CSV)
    rows = table[(table["profile"] == profile) & (table["data"] == data) & table["families"].map(_families).eq(wanted)]
    if rows.empty:
        raise ConfigError(f"results/wall_times.csv: no `make reproduce` of profile {profile} on {data} with families {families}")
    return rows.sort_values("utc").iloc[-1]


def reproduce_seconds(profile: str, data: str, families: str = "all", results: Path = RESULTS_DIR) -> str:
    """The end-to-end wall time of the latest `make reproduce` of that kind (``wall_time_row``)."""
    return duration(wall_time_row(profile, data, families, results)["wall_seconds"])


def table1_psnr(data: str, profile: str, method: str, results: Path = RESULTS_DIR) -> str:
    """Mean test PSNR of one row of results/table1.csv: ``method`` a variant's name (``ae``,
    ``r_dae_msssim``, ...) or ``identity`` (doing nothing), on ``data`` at ``profile``, in dB to 0.01."""
    return table1_value(data, profile, method, "psnr", results)


#: How each Table 1 metric is quoted in prose (results/table1.md keeps more digits).
METRIC_FORMAT = {"bsr": "{:.2f}", "rmae": "{:.4f}", "psnr": "{:.2f}", "ssim": "{:.3f}"}


def _metric(metric: str) -> str:
    if metric not in METRIC_FORMAT:
        raise ConfigError(f"unknown Table 1 metric {metric!r} (known: {', '.join(METRIC_FORMAT)})")
    return METRIC_FORMAT[metric]


def table1_value(data: str, profile: str, method: str, metric: str, results: Path = RESULTS_DIR) -> str:
    """One metric's mean (``bsr``, ``rmae``, ``psnr``, ``ssim``) of one row of results/table1.csv:
    ``method`` a variant's name or ``identity``, rounded as METRIC_FORMAT says."""
    label = IDENTITY if method == "identity" else label_of(method)
    table = pd.read_csv(Path(results) / "table1.csv")
    row = table[(table["data"] == data) & (table["profile"] == profile) & (table["method"] == label)]
    if len(row) != 1:
        raise ConfigError(f"results/table1.csv: {len(row)} rows for {label} on {data}, profile {profile} (one expected)")
    return _metric(metric).format(row[f"{metric}_mean"].iloc[0])


def paper_value(method: str, metric: str, results: Path = RESULTS_DIR) -> str:
    """The paper's own Table 1 value (its transcription, table1.paper_row) of ``method`` (a
    reproduced variant's name), rounded as METRIC_FORMAT says; ``results`` is not read."""
    value = paper_row(label_of(method)).get(metric)
    if value is None:
        raise ConfigError(f"the paper's Table 1 gives no {metric} for {label_of(method)}")
    return _metric(metric).format(value)


def paper_identity_range(results: Path = RESULTS_DIR) -> str:
    """The range of doing nothing's PSNR that the paper's four rows imply (table1.implied_identity_psnr),
    whole dB: where the paper's data sit."""
    implied = [implied_identity_psnr(row["psnr"], row["bsr"]) for row in (paper_row(label_of(v)) for v in variants(REPRODUCED))]
    return f"{math.floor(min(implied))}-{math.ceil(max(implied))}"


#: Every fact the prose may quote, by the name its marker gives.
FACTS = {"reproduce-seconds": reproduce_seconds, "table1-psnr": table1_psnr, "table1": table1_value, "paper": paper_value, "paper-identity-range": paper_identity_range}


def render(text: str, results: Path = RESULTS_DIR, where: str = "text") -> str:
    """``text`` with every marked span rendered anew from the results files."""
    def one(m: re.Match) -> str:
        name, args = m.group("name"), m.group("args").split()
        if name not in FACTS:
            raise ConfigError(f"{where}: unknown fact {name!r} (known: {', '.join(sorted(FACTS))})")
        value = FACTS[name](*args, results=results)
        return f"<!-- fact: {name}{''.join(' ' + a for a in args)} -->{value}<!-- /fact -->"

    return FACT.sub(one, text)


def prose_files(root: Path = REPO_ROOT) -> list[Path]:
    """README.md and the pages of docs/ (PROSE), those that exist."""
    return sorted({p for pattern in PROSE for p in Path(root).glob(pattern) if p.is_file()})


def stale(root: Path = REPO_ROOT) -> list[str]:
    """One line per marked span whose text disagrees with its results file: "file: was -> is"."""
    lines = []
    for path in prose_files(root):
        text = path.read_text(encoding="utf-8")
        for m in FACT.finditer(text):
            now = FACT.match(render(m.group(0), Path(root) / "results", path.name)).group("text")
            if now != m.group("text"):
                lines.append(f"{path.relative_to(root)}: fact {m.group('name')}{m.group('args')}: says {m.group('text')!r}, results say {now!r}")
    return lines


def rewrite(root: Path = REPO_ROOT) -> list[Path]:
    """Every marked span of the prose rendered anew (files written atomically); the files changed."""
    changed = []
    for path in prose_files(root):
        text = path.read_text(encoding="utf-8")
        new = render(text, Path(root) / "results", path.name)
        if new != text:
            with atomic_path(path) as tmp:
                Path(tmp).write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
