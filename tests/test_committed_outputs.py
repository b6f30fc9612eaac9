"""The committed outputs are one run's, from committed code: every executed copy, figure footer and
provenance record of a `make reproduce` names the same commit, with no local changes; each copy
says what it was run with; and every number the prose quotes from results/ agrees with it."""
import json
import re

import pandas as pd
import pytest

from dae_lib import pipeline
from dae_lib.errors import ConfigError
from dae_lib.reporting import facts, layout
from dae_lib.reporting.figures import saved_footer
from dae_lib.runs import FIGURES_DIR, REPO_ROOT, RESULTS_DIR

EXECUTED = RESULTS_DIR / "executed"
#: A commit as footers and tables name it: 7 or 40 hexadecimal digits.
COMMIT = re.compile(r"commit ([0-9a-f]{7,40})\b")


def _copies(folder):
    return sorted(folder.glob("*.ipynb")) + sorted((folder / pipeline.SOLUTIONS_DIR).glob("*.ipynb"))


def _made(path) -> dict:
    made = json.loads(path.read_text())["metadata"].get(pipeline.COPY_METADATA)
    assert made, f"{path.name}: no record of how it was made (regenerate it: python -m dae_lib reproduce)"
    return made


@pytest.mark.parametrize("folder", sorted(p for p in EXECUTED.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_every_executed_copy_names_one_clean_commit_and_says_what_it_was_run_with(folder):
    data, profile = folder.name.rsplit("-", 1)
    commits = set()
    for path in _copies(folder):
        made = _made(path)
        nb = json.loads(path.read_text())
        first = "".join(nb["cells"][0]["source"])
        assert (made["profile"], made["data"]) == (profile, data), path.name
        assert not made["uncommitted"] and not made["commit"].endswith("-dirty") and made["commit"] != "unknown", (path.name, made["uncommitted"])
        assert "Stored outputs" not in first and "**This copy**" in first, path.name  # the banner names the run, not the smoke profile
        assert f"profile `{profile}`, data `{data}`" in first and f"commit `{made['commit'][:7]}`" in first, path.name
        text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
        assert "local changes" not in text and "-dirty" not in text, path.name
        commits.add(made["commit"])
    assert len(commits) == 1, f"{folder.name}: copies from {len(commits)} commits ({', '.join(c[:7] for c in sorted(commits))})"
    (commit,) = commits
    prov = json.loads((folder / pipeline.SOLUTIONS_DIR / pipeline.SOLUTIONS_PROVENANCE).read_text())
    assert prov["commit"] == commit and not prov["uncommitted"]
    table = pd.read_csv(RESULTS_DIR / "table1.csv")
    rows = table[(table["data"] == data) & (table["profile"] == profile)]
    assert len(rows) and set(rows["commit"]) == {commit}  # Table 1's block: the trainings of that run
    times = pd.read_csv(RESULTS_DIR / "wall_times.csv")
    assert ((times["commit"] == commit) & (times["profile"] == profile) & (times["data"] == data) & (times["uncommitted"] == "[]")).any()


def test_every_committed_figure_carries_the_footer_of_the_committed_run():
    """figures/ holds the phantom's figures (real-data images are never committed): each says, as
    text in the file, the commit that made its numbers: the one the phantom's executed copies name.
    The one that notebook 05 draws from the committed v2 study's scores (results/v2: metrics on
    BSE-JSRT validation cases, no images) names the commit that scored it, the study's own."""
    (commit,) = {_made(p)["commit"] for p in _copies(EXECUTED / "phantom-quick")}
    (study,) = set(pd.read_csv(RESULTS_DIR / "v2" / "candidates.csv")["scored_at"].astype(str))
    pngs = sorted(FIGURES_DIR.glob("*.png"))
    assert len(pngs) >= 11
    from_study = []
    for png in pngs:
        footer = saved_footer(png)
        assert footer and "local changes" not in footer, (png.name, footer)
        if "| profile v2 study |" in footer:
            from_study.append(png.name)
            assert footer.startswith("data bse-jsrt-512, ") and COMMIT.findall(footer) == [study[:7]], (png.name, footer)
        else:
            assert footer.startswith("data phantom") and COMMIT.findall(footer) == [commit[:7]], (png.name, footer)
    assert from_study == ["beyond_shifted.png"]


def test_the_prose_quotes_results_as_they_are():
    assert facts.stale() == []  # `python -m dae_lib facts` rewrites them
    readme = (REPO_ROOT / "README.md").read_text()
    for marker in ("reproduce-seconds quick phantom all", "table1-psnr phantom quick dae_msssim", "table1-psnr bse-jsrt-512 paper identity"):
        assert f"<!-- fact: {marker} -->" in readme, marker


def test_a_stale_quote_is_named_and_rewritten(tmp_path):
    (tmp_path / "results").mkdir()
    pd.DataFrame([
        {"profile": "quick", "data": "phantom", "wall_seconds": 500.0, "families": "reproduced+residual", "utc": "2026-01-01T00:00:00+00:00"},
        {"profile": "quick", "data": "phantom", "wall_seconds": 801.4, "families": "reproduced+residual", "utc": "2026-02-01T00:00:00+00:00"},
        {"profile": "quick", "data": "phantom", "wall_seconds": 250.0, "families": "paper", "utc": "2026-03-01T00:00:00+00:00"},
    ]).to_csv(tmp_path / "results" / "wall_times.csv", index=False)  # fmt: skip
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "speed.md"
    page.write_text("all: <!-- fact: reproduce-seconds quick phantom all -->632-662 s<!-- /fact -->; one family: "
                    "<!-- fact: reproduce-seconds quick phantom reproduced -->250 s<!-- /fact -->.\n")  # fmt: skip
    (line,) = facts.stale(tmp_path)
    assert line.startswith("docs/speed.md: fact reproduce-seconds quick phantom all") and "'632-662 s'" in line and "'801 s (13 min)'" in line
    assert facts.rewrite(tmp_path) == [page] and facts.stale(tmp_path) == []  # the latest run, not the first
    assert "-->801 s (13 min)<!--" in page.read_text() and "-->250 s<!--" in page.read_text()
    page.write_text("<!-- fact: reproduce-minutes quick phantom -->1<!-- /fact -->")
    with pytest.raises(ConfigError, match="unknown fact 'reproduce-minutes'"):
        facts.stale(tmp_path)
    page.write_text("<!-- fact: reproduce-seconds paper phantom all -->1<!-- /fact -->")
    with pytest.raises(ConfigError, match="no `make reproduce` of profile paper on phantom"):
        facts.stale(tmp_path)


#: What a stored output must not show: a progress bar's text (tqdm: "40%|####  | 12/30"), or a
#: widget's repr or model (a stored notebook has no kernel to draw it: it shows as text or nothing).
RESIDUE = re.compile(r"\d+%\|[^\n]*\|\s*\d+/\d+|it/s\]|s/it\]|(?:VBox|HBox|FloatSlider|IntSlider|FloatProgress|IntProgress|Output)\(children=|FloatSlider\(|FloatProgress\(|application/vnd\.jupyter\.widget-view\+json")


def _outputs_text(path) -> str:
    return json.dumps([c.get("outputs", []) for c in json.loads(path.read_text())["cells"]])


def _stored(folder):
    return _copies(folder) + sorted((REPO_ROOT / "notebooks").glob("*.ipynb")) + sorted((REPO_ROOT / "notebooks" / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("folder", sorted(p for p in EXECUTED.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_no_stored_output_shows_progress_bar_residue_or_a_widget_repr(folder):
    found = {str(p.relative_to(REPO_ROOT)): RESIDUE.findall(_outputs_text(p))[:3] for p in _stored(folder)}  # by path: a copy and its notebook share a name
    assert {k: v for k, v in found.items() if v} == {}


def test_the_residue_rule_catches_what_it_is_for():
    assert RESIDUE.search("dae_msssim:   0%|          | 0/30 [00:00<?, ?it/s]")
    assert RESIDUE.search("VBox(children=(FloatSlider(value=0.5")
    assert not RESIDUE.search("dae_msssim: 30/30 epochs; epoch 30: training loss 0.0012, validation PSNR 38.10 dB, 2.0 s")


@pytest.mark.parametrize("folder", sorted(p for p in EXECUTED.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_every_stored_figure_is_readable_at_its_stored_width(folder):
    """Every image output of the executed copies carries the layout report of the draw that made it
    (reporting.layout): text at least MIN_TEXT_PX high as shown, no overlapping texts."""
    bad = {}
    for path in _copies(folder):
        for k, cell in enumerate(json.loads(path.read_text())["cells"]):
            for out in cell.get("outputs", []):
                if "image/png" in out.get("data", {}):
                    found = layout.problems(out.get("metadata", {}).get(layout.LAYOUT_KEY))
                    if found:
                        bad[f"{path.name} cell {k}"] = found
    assert bad == {}


def test_every_committed_figure_is_readable_at_its_stored_width():
    bad = {png.name: layout.problems(layout.saved_report(png)) for png in sorted(FIGURES_DIR.glob("*.png"))}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_phantom_copies_are_the_pipelines_copies_and_no_others():
    """One executed copy of each notebook, and of 02 one per family (pipeline.SHOWN_TRAININGS): a
    copy the pipeline no longer writes would be stale."""
    names = sorted(p.name for p in (EXECUTED / "phantom-quick").glob("*.ipynb"))
    expected = [pipeline.NOTEBOOKS[0], *(f"02_training_{v}.ipynb" for v in pipeline.SHOWN_TRAININGS), *pipeline.NOTEBOOKS[2:]]
    assert names == sorted(expected)
    solutions = sorted(p.name for p in (EXECUTED / "phantom-quick" / pipeline.SOLUTIONS_DIR).glob("*.ipynb"))
    assert solutions == sorted(p.name for p in (REPO_ROOT / "notebooks" / pipeline.SOLUTIONS_DIR).glob("*.ipynb"))


def test_any_table1_metric_and_the_papers_own_values_can_be_quoted():
    assert facts.table1_value("phantom", "quick", "identity", "psnr") == facts.table1_psnr("phantom", "quick", "identity")
    table = pd.read_csv(RESULTS_DIR / "table1.csv")
    row = table[(table["data"] == "bse-jsrt-512") & (table["profile"] == "paper") & (table["method"] == "R-AE + MS-SSIM")]
    assert facts.table1_value("bse-jsrt-512", "paper", "r_ae_msssim", "bsr") == f"{row['bsr_mean'].iloc[0]:.2f}"
    assert facts.paper_value("dae_msssim", "psnr") == "30.80" and facts.paper_value("ae", "ssim") == "0.935"  # the transcription
    with pytest.raises(ConfigError, match="unknown Table 1 metric 'dice'"):
        facts.table1_value("phantom", "quick", "ae", "dice")
    # 25.9 + 10 log10(1 - 0.75) = 19.88 ... 29.0 + 10 log10(1 - 0.85) = 20.76: the paper's data sit near 20 dB
    assert facts.paper_identity_range() == "19-21"
    with pytest.raises(ConfigError, match="no bsr for R-AE"):
        facts.paper_value("r_ae", "bsr")  # the paper has no R- rows
