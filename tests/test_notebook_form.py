"""The notebooks read as the paper, annotated: each names the paper it accompanies (from
CITATION.cff, so the two cannot disagree), heads its parts with the paper's own sections and
equations, never with numbers of its own that clash with the paper's, and has a parameters cell."""
import json
import re

import pytest
import yaml

from dae_lib.pipeline import NOTEBOOKS
from dae_lib.runs import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
ALL = [NOTEBOOK_DIR / n for n in NOTEBOOKS] + sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))
#: A heading numbered by the notebook itself ("## 1.3 The bone mask"): refused, the paper's own
#: sections are "§2.3"; a notebook's parts say "Paper §2.3" or are plainly ours.
OWN_NUMBER = re.compile(r"^#{2,4} \d+(\.\d+)*\b", re.M)
PAPER_SECTION = re.compile(r"^#{2,4} Paper §\d(\.\d)?\b", re.M)


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _paper() -> dict:
    cff = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    return cff["references"][0]


def citation_parts() -> list[str]:
    """What a citation of the paper must hold, read from CITATION.cff's first reference."""
    ref = _paper()
    names = [f"{a['given-names']} {a['family-names']}" for a in ref["authors"]]
    return [*names, ref["title"], ref["conference"]["name"], str(ref["year"])]


def test_citation_cff_names_the_paper_as_the_work_this_software_implements():
    ref = _paper()
    assert ref["type"] == "conference-paper" and ref["year"] == 2020 and "(ISBI)" in ref["conference"]["name"]
    assert ref["title"] == "Deep Feature Disentanglement Learning for Bone Suppression in Chest Radiographs"
    assert [a["family-names"] for a in ref["authors"]] == ["Lin", "Tang", "Lin", "Liu", "Lu", "Chen", "Gao", "Zhou"]
    assert "implements" in ref["notes"] and "doi" not in ref  # the DOI is not confirmed: not given
    readme = (REPO_ROOT / "README.md").read_text()[:1500].replace("\n", " ")
    assert all(part in readme for part in citation_parts())


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_notebook_names_the_paper_in_its_first_cell(path):
    first = "".join(_cells(path)[0]["source"])
    missing = [part for part in citation_parts() if part not in first]
    assert missing == [], (path.name, missing)
    assert "CITATION.cff" in first


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_heading_carries_a_number_of_the_notebooks_own(path):
    headings = [m.group(0) for c in _cells(path) if c["cell_type"] == "markdown" for m in OWN_NUMBER.finditer("".join(c["source"]))]
    assert headings == [], path.name


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n[:2] in ("01", "02", "03", "04")])
def test_the_paper_notebooks_head_their_parts_with_the_papers_sections(name):
    text = "\n".join("".join(c["source"]) for c in _cells(NOTEBOOK_DIR / name) if c["cell_type"] == "markdown")
    assert PAPER_SECTION.search(text), name


def test_the_heading_rules_catch_what_they_are_for():
    assert OWN_NUMBER.search("## 2.1 Shapes") and OWN_NUMBER.search("### 3 Table") and not OWN_NUMBER.search("## Paper §2.1: architecture")
    assert PAPER_SECTION.search("## Paper §2.2, eq. (3)-(4): SSIM") and not PAPER_SECTION.search("## Beyond the paper: the split")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_notebook_has_one_parameters_cell_before_any_other_code(path):
    """papermill injects its parameters after the cell tagged "parameters"; without one it puts
    them at the top, and the executed copy no longer matches the notebook."""
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and code[0] is tagged[0], path.name
