"""The teaching layer: every notebook opens with objectives, prerequisites and timing, ends with 3-5
exercises stating their expected outcome, and each exercise has a solution that asserts it (the
solutions notebooks themselves run under nbval on the smoke profile, so a stated outcome that stops
happening fails the suite). Cells stay short."""
import json
import re

import pytest

from dae_lib import pipeline
from dae_lib.pipeline import NOTEBOOKS, SOLUTIONS_DIR
from dae_lib.runs import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
SOLUTIONS = sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))
#: "no cell over about 200 words"
MAX_WORDS = 210


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _text(cell):
    return "".join(cell["source"])


def _exercises(name):
    """The notebook's exercises section (its cells from "## Exercises" to the end) and its items."""
    texts = [_text(c) for c in _cells(NOTEBOOK_DIR / name)]
    start = next((k for k, t in enumerate(texts) if t.startswith("## Exercises")), len(texts))
    section = "\n\n".join(texts[start:])
    items = [(m.group(1), m.group(2), t[m.end():]) for t in texts[start + 1 :] if (m := re.match(r"(\d)\. \*\*(.+?)\*\*", t))]
    return section, items


#: An exercise's time, right after its title: "(about 3 min on the quick profile)" ("<1" allowed).
EXERCISE_TIME = re.compile(r"^ \(about (<1|\d+(?:-\d+)?) min on the quick profile[^)]*\)")
#: Its expected outcome, collapsed until the student opens it.
OUTCOME = re.compile(r"<details><summary>Expected outcome</summary>\n\n(.+?)\n\n</details>", re.S)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_opens_with_objectives_prerequisites_timing_and_the_glossary(name):
    first = _text(_cells(NOTEBOOK_DIR / name)[0])
    objectives = re.search(r"\*\*You will be able to\*\*\n((?:- .+\n)+)", first)
    assert objectives and 3 <= len(objectives.group(1).splitlines()) <= 5, name
    assert "**Prerequisites**" in first and "**Takes** (measured on 2 CPU cores)" in first
    assert "(../docs/glossary.md)" in first and (REPO_ROOT / "docs" / "glossary.md").read_text().startswith("# Glossary")
    assert "(docs/glossary.md)" in (REPO_ROOT / "README.md").read_text()  # the first page points there too


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_ends_with_three_to_five_exercises_with_expected_outcomes(name):
    section, items = _exercises(name)
    assert section.startswith("## Exercises"), name
    assert 3 <= len(items) <= 5, (name, len(items))
    for number, title, body in items:
        assert EXERCISE_TIME.match(body), (name, number, title, "say its time on the quick profile right after the title")
        outcome = OUTCOME.search(body)
        assert outcome and "*Expected*" in outcome.group(1), (name, number, title, "the outcome goes in a collapsed <details> block")
        assert "*Expected*" not in body[: outcome.start()] + body[outcome.end() :], (name, number, "the outcome shows outside the block")
        assert "quick" in outcome.group(1) or "any profile" in outcome.group(1), (name, number, "state the profile the outcome holds for")
    link = re.search(r"\]\((solutions/[\w.]+\.ipynb)\)", section)
    assert link and (NOTEBOOK_DIR / link.group(1)).is_file(), name


def test_every_exercise_has_a_solution_that_asserts_its_outcome():
    solutions = {}
    for path in SOLUTIONS:
        cells = _cells(path)
        for k, cell in enumerate(cells):
            found = re.match(r"\*\*(\d\d), exercise (\d)", _text(cell)) if cell["cell_type"] == "markdown" else None
            if found:
                code = _text(cells[k + 1])
                solutions[found.groups()] = code
    for name in NOTEBOOKS:
        for number, title, _ in _exercises(name)[1]:
            code = solutions.get((name[:2], number))
            assert code is not None, f"no solution for {name} exercise {number} ({title})"
            assert "assert " in code, f"the solution of {name} exercise {number} asserts nothing"


@pytest.mark.parametrize("path", [NOTEBOOK_DIR / n for n in NOTEBOOKS] + SOLUTIONS, ids=lambda p: p.name)
def test_no_markdown_cell_runs_over_about_200_words(path):
    for k, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "markdown":
            assert len(_text(cell).split()) <= MAX_WORDS, (path.name, k, len(_text(cell).split()))


def test_the_solutions_use_the_smoke_profile_under_the_tests_and_write_only_to_scratch():
    for path in SOLUTIONS:
        code = "\n".join(_text(c) for c in _cells(path) if c["cell_type"] == "code")
        assert "notebook_setup(profile, data_dir, out_root, publish)" in code, path.name  # DAE_PROFILE=smoke reaches it
        assert "publish = True" not in code and "results/" not in code


def _tiny_solutions(folder, body):
    (folder / SOLUTIONS_DIR).mkdir(parents=True)
    nb = {"cells": [
        {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "outputs": [], "execution_count": None,
         "source": 'profile = "quick"\ndata_dir = "phantom"\nout_root = ""\npublish = False'},
        {"cell_type": "code", "id": "s", "metadata": {}, "outputs": [], "execution_count": None, "source": body},
    ], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    (folder / SOLUTIONS_DIR / "01_02_solutions.ipynb").write_text(json.dumps(nb))
    return folder


def test_run_solutions_writes_executed_copies_beside_the_pipelines_and_names_a_failing_one(tmp_path):
    request = pipeline.Request("smoke", None, tmp_path / "out")
    ok = _tiny_solutions(tmp_path / "ok", 'print(profile, data_dir)\nassert profile == "smoke"')
    (done,) = pipeline.run_solutions(request, notebook_dir=ok, log=lambda *a: None)
    assert done == request.outputs.executed / SOLUTIONS_DIR / "01_02_solutions.ipynb"
    outputs = [o for c in json.loads(done.read_text())["cells"] for o in c.get("outputs", [])]
    assert any("smoke phantom" in "".join(o.get("text", "")) for o in outputs)
    prov = json.loads((done.parent / pipeline.SOLUTIONS_PROVENANCE).read_text())
    assert prov["profile"] == "smoke" and prov["data"] == "phantom" and set(prov["wall_seconds"]) == {"01_02_solutions.ipynb"}
    assert prov["commit"] and prov["device"] and prov["utc"]
    bad = _tiny_solutions(tmp_path / "bad", "assert 0.04 > 0.01 * 5, 'the stated outcome no longer happens'")
    with pytest.raises(pipeline.PipelineError, match=r"01_02_solutions.ipynb failed in code cell 2 .*AssertionError: the stated outcome"):
        pipeline.run_solutions(request, notebook_dir=bad, log=lambda *a: None)


@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n[:2] in ("01", "02", "03", "04")])
def test_each_paper_notebook_has_an_exercise_where_the_student_writes_a_piece_of_the_paper(name):
    """01-04 each ask the student to write one piece of the paper (the mask, a metric, a loss) and
    their solution checks the student's version against the library's."""
    writes = [(k, t) for k, t, _ in _exercises(name)[1] if t.startswith("Write")]
    assert writes, name
    codes = []
    for path in SOLUTIONS:
        cells = _cells(path)
        codes += [_text(cells[i + 1]) for i, c in enumerate(cells) if c["cell_type"] == "markdown" and re.match(rf"\*\*{name[:2]}, exercise ({'|'.join(k for k, _ in writes)})\b", _text(c))]
    assert codes and all("assert" in c and "dae_lib" in c or "assert" in c and any(m in c for m in ("losses.", "metrics.", "msssim.")) for c in codes), name
