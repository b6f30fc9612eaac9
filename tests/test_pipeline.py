"""The notebook pipeline end to end (smoke profile, phantom) and nbval's ability to fail."""
import base64
import io
import json
import re
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from dae_lib import pipeline, runs
from dae_lib.cli import main as cli_main
from dae_lib.errors import ConfigError, PublishError
from dae_lib.reporting import figures
from dae_lib.reporting.evaluate import IDENTITY
from dae_lib.runs import REPO_ROOT
from dae_lib.reporting import table1
from dae_lib.reporting.table1 import write_table1
from helpers import run_ok


@pytest.fixture(scope="module")
def smoke_run(installed_package, tmp_path_factory):
    """`python -m dae_lib reproduce --profile smoke --jobs 2` as a user runs it: from the wheel
    installed outside the checkout (profiles, the paper's table and the released weights from the
    install), in a folder of the user's holding a copy of notebooks/. Returns the output root, the
    executed notebooks and the lines the command printed."""
    work = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(REPO_ROOT / "notebooks", work / "notebooks")
    root = work / "out"
    printed = run_ok(
        [installed_package.python, "-m", "dae_lib", "reproduce", "--profile", "smoke", "--jobs", "2", "--out-root", root],
        cwd=work, timeout=1800, env=installed_package.environment(),
    )  # --jobs 2: the parallel trainings (one at a time is the plain loop, which notebooks 02's nbval run takes)
    executed = sorted((root / "results" / "executed" / "phantom-smoke").glob("*.ipynb"))
    return root, executed, printed.splitlines()


def test_pipeline_writes_every_output(smoke_run):
    root, executed, log = smoke_run
    assert "running 8 trainings, 2 at a time" in "\n".join(log)
    assert sum("done" in line and "variant" in line for line in log) == 8
    assert [p.name for p in executed] == [
        "01_data_preparation.ipynb", "02_training_dae_msssim.ipynb", "02_training_r_dae_msssim.ipynb",
        "03_table1.ipynb", "04_figures.ipynb", "05_beyond_the_paper.ipynb", "06_suppress_your_radiograph.ipynb",
        "07_score_your_pairs.ipynb",
    ]  # fmt: skip  (one copy of 02 per family; the other trainings' copies lie in the runs folder)
    others = sorted(p.name for p in (root / "runs" / "smoke" / "phantom" / pipeline.TRAINING_COPIES).glob("*.ipynb"))
    assert others == ["02_training_ae.ipynb", "02_training_ae_msssim.ipynb", "02_training_dae.ipynb",
                      "02_training_r_ae.ipynb", "02_training_r_ae_msssim.ipynb", "02_training_r_dae.ipynb"]  # fmt: skip
    for name in ("fig2.png", "fig3.png", "training_curves.png", "error_maps.png", "segmentation.png", "gains.png",
                 "beyond_errors.png", "beyond_curves.png", "beyond_renderings.png"):  # fmt: skip  (beyond_shifted.png needs results/v2/)
        assert (root / "figures" / name).stat().st_size > 10_000, name
    assert not (root / "scratch").exists()  # the pipeline publishes (publish=True)
    assert (root / "results" / "wall_times.csv").exists()  # the command records its wall time
    table = pd.read_csv(root / "results" / "table1.csv")
    assert list(table["method"]) == [
        IDENTITY, "AE", "AE + MS-SSIM", "DAE", "DAE + MS-SSIM", "R-AE", "R-AE + MS-SSIM", "R-DAE", "R-DAE + MS-SSIM"
    ]  # both families, each labelled so that its family shows
    assert set(table["profile"]) == {"smoke"} and set(table["data"]) == {"phantom"}
    assert table["commit"].notna().all() and table["device"].notna().all()
    md = (root / "results" / "table1.md").read_text()
    assert "## phantom, profile smoke" in md and "Identity" in md and "claims" in md
    assert "implied identity PSNR" in md and "| DAE + MS-SSIM | 0.9100 | 0.0091 | 30.80 | 0.9700 | 20.34 |" in md
    assert "improves the plain R-AE" in md and "Every R- variant beats doing nothing" in md


def test_each_executed_copy_is_labelled_with_the_run_that_made_it(smoke_run):
    _, executed, _ = smoke_run
    made = {p.name: json.loads(p.read_text())["metadata"][pipeline.COPY_METADATA] for p in executed}
    assert {(m["profile"], m["data"]) for m in made.values()} == {("smoke", "phantom")}
    assert made["02_training_r_dae_msssim.ipynb"]["variant"] == "r_dae_msssim" and made["02_training_dae_msssim.ipynb"]["seeds"] == [0]
    assert made["01_data_preparation.ipynb"]["seeds"] is None and made["03_table1.ipynb"]["seeds"] == [0]
    for p in executed:
        first = "".join(json.loads(p.read_text())["cells"][0]["source"])
        assert "profile `smoke`, data `phantom`" in first and "Stored outputs" not in first, p.name


def test_executed_notebooks_are_small_and_without_papermill_timings(smoke_run):
    _, executed, _ = smoke_run
    for path in executed:
        nb = json.loads(path.read_text())
        assert "papermill" not in nb["metadata"]
        assert all("papermill" not in c.get("metadata", {}) for c in nb["cells"])
        assert path.stat().st_size < 3_000_000
        for o in (o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})):
            im = Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"])))
            assert im.width <= pipeline.SCREEN_WIDTH and im.mode == "P"  # screen resolution, 256 colours


def _identity_summary():
    """A one-row ``summarize`` result: the identity on 3 images."""
    return pd.DataFrame(
        {"bsr_mean": [0.0], "rmae_mean": [0.1], "psnr_mean": [30.0], "ssim_mean": [0.9],
         "bsr_std": [0.0], "rmae_std": [0.0], "psnr_std": [1.0], "ssim_std": [0.01], "n": [3]},
        index=pd.Index([IDENTITY], name="method"),
    )  # fmt: skip


def test_table_keeps_other_blocks(tmp_path):
    summary = _identity_summary()
    write_table1(summary, tmp_path, "phantom", "quick", {})
    write_table1(summary, tmp_path, "bse-jsrt-512", "quick", {})
    write_table1(summary, tmp_path, "phantom", "quick", {})  # replaces its own block only
    table = pd.read_csv(tmp_path / "table1.csv")
    assert sorted(table["data"]) == ["bse-jsrt-512", "phantom"]


def _broken_copy(tmp_path, name, source):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir(exist_ok=True)
    for n in pipeline.NOTEBOOKS:
        shutil.copy(REPO_ROOT / "notebooks" / n, nb_dir / n)
    nb = json.loads((nb_dir / name).read_text())
    after_setup = 1 + next(k for k, c in enumerate(nb["cells"]) if "notebook_setup(" in "".join(c["source"]))  # code cell 3
    nb["cells"].insert(after_setup, {"cell_type": "code", "id": "broken", "metadata": {}, "source": source, "outputs": [], "execution_count": None})
    (nb_dir / name).write_text(json.dumps(nb))
    return nb_dir


def test_pipeline_names_the_failing_notebook_and_cell(tmp_path):
    nb_dir = _broken_copy(tmp_path, "01_data_preparation.ipynb", 'raise RuntimeError("deliberately broken")')
    with pytest.raises(pipeline.PipelineError, match=r"01_data_preparation.ipynb failed in code cell 3 .*deliberately broken"):
        pipeline.reproduce(pipeline.Request("smoke", None, tmp_path / "out"), notebook_dir=nb_dir, log=lambda *a: None)


def test_a_failing_parallel_training_is_named_and_stops_the_pipeline(tmp_path):
    nb_dir = _broken_copy(tmp_path, "02_training.ipynb", 'raise RuntimeError("deliberately broken")')
    with pytest.raises(pipeline.PipelineError, match=r"02_training.ipynb \(variant \w+, seed 0\) failed in code cell \d+ .*deliberately broken"):
        pipeline.reproduce(pipeline.Request("smoke", None, tmp_path / "out"), notebook_dir=nb_dir, log=lambda *a: None, jobs=2)
    assert not (tmp_path / "out" / "results" / "table1.md").exists()  # nothing after the trainings ran


def test_an_interrupt_leaves_the_queued_trainings_unstarted(tmp_path):
    def log(line):
        if "after the trainings began" in line:
            raise KeyboardInterrupt  # as Ctrl-C arriving once the first training is done

    with pytest.raises(KeyboardInterrupt):
        pipeline.reproduce(pipeline.Request("smoke", None, tmp_path / "out"), log=log, jobs=2)
    out = tmp_path / "out"
    started = [*(out / "results" / "executed" / "phantom-smoke").glob("02_training_*.ipynb"),
               *(out / "runs" / "smoke" / "phantom" / pipeline.TRAINING_COPIES).glob("02_training_*.ipynb")]  # fmt: skip
    assert len(started) == 2  # the first two (one done, one running), none of the six queued


def test_jobs_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        pipeline.reproduce(pipeline.Request("smoke", None, tmp_path), jobs=0)


def _nbval(path):
    env = {**os.environ, "DAE_OUT": str(path.parent / "out")}  # never the session's output root
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO_ROOT), "-c", str(REPO_ROOT / "pyproject.toml"), str(path)],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env,
    )  # fmt: skip


def test_nbval_fails_on_a_broken_notebook(tmp_path):
    nb_dir = _broken_copy(tmp_path, "03_table1.ipynb", 'raise RuntimeError("deliberately broken")')
    r = _nbval(nb_dir / "03_table1.ipynb")
    assert r.returncode != 0 and "deliberately broken" in r.stdout


def test_nbval_fails_when_a_checked_output_changes(tmp_path):
    nb_dir = tmp_path / "nb"
    nb_dir.mkdir()
    nb = json.loads((REPO_ROOT / "notebooks" / "01_data_preparation.ipynb").read_text())
    checked = [c for c in nb["cells"] if "NBVAL_CHECK_OUTPUT" in "".join(c["source"])]
    assert checked and all(c["outputs"] for c in checked), "stored notebooks must carry the checked outputs"
    checked[-1]["outputs"][0]["text"] = ["{'train': 99, 'val': 0, 'test': 0}\n"]
    (nb_dir / "01_data_preparation.ipynb").write_text(json.dumps(nb))
    r = _nbval(nb_dir / "01_data_preparation.ipynb")
    assert r.returncode != 0


def test_committed_tables_hold_no_absolute_machine_path(tmp_path):
    summary = _identity_summary()
    data = REPO_ROOT.parent / "shared" / "data" / "bse-jsrt-512"
    write_table1(summary, tmp_path, "bse-jsrt-512", "quick", {"ae": {"data": str(data)}})
    text = (tmp_path / "table1.csv").read_text() + (tmp_path / "table1.md").read_text()
    assert str(REPO_ROOT.parent) not in text and "../shared/data/bse-jsrt-512" in text


def test_plan_trains_every_variant_once_per_seed(tmp_path):
    steps = pipeline.plan(pipeline.Request("smoke", None, tmp_path, seeds=2, families=("reproduced",)))
    training = [s for s in steps if "variant" in s.parameters]
    assert [s.output.name for s in training] == [
        "02_training_ae.ipynb", "02_training_ae_msssim.ipynb", "02_training_dae.ipynb", "02_training_dae_msssim.ipynb",
        "02_training_ae_seed1.ipynb", "02_training_ae_msssim_seed1.ipynb", "02_training_dae_seed1.ipynb",
        "02_training_dae_msssim_seed1.ipynb",
    ]  # fmt: skip
    assert [s.parameters["seed"] for s in training] == [0] * 4 + [1] * 4
    shown = [s.output.relative_to(tmp_path).parts[:2] for s in training]
    assert shown == [("runs", "smoke")] * 3 + [("results", "executed")] + [("runs", "smoke")] * 4  # one copy per family is shown
    assert [s.notebook for s in steps[-5:]] == ["03_table1.ipynb", "04_figures.ipynb", "05_beyond_the_paper.ipynb",
                                                "06_suppress_your_radiograph.ipynb", "07_score_your_pairs.ipynb"]  # fmt: skip


def test_runs_of_several_seeds_are_collected_and_summarized_over_seeds(tiny_data, tmp_path):
    from dae_lib.reporting.evaluate import summarize
    from dae_lib.runs import outputs
    from dae_lib.train import fit
    from helpers import tiny_config

    out = outputs("smoke", None, tmp_path)
    for seed in (0, 1):
        for variant in ("ae", "dae"):
            fit(tiny_config(variant=variant, epochs=1, seed=seed), out.run(variant, seed), data=tiny_data, progress=False)
    assert out.run("ae", 1) == out.runs / "seed1" / "ae"
    per_image, missing = table1.collect(out.runs, tiny_data)
    assert sorted(per_image["seed"].unique()) == [0, 1]
    s = summarize(per_image)
    assert (s["n_seeds"] == 2).all() and s.loc["AE", "n"] == (per_image["method"] == "AE").sum() // 2
    ae = per_image[per_image["method"] == "AE"]
    assert s.loc["AE", "psnr_mean"] == pytest.approx(ae.groupby("seed")["psnr"].mean().mean())
    claim = [c for c in table1.claims(per_image) if "improves the AE" in c][0]
    assert "/2 seeds" in claim


def test_portable_paths_stay_relative_through_a_symlinked_data_folder(tmp_path):
    """A data folder reached through a symbolic link (a shared folder linked beside the checkout)
    is recorded as given, not as the machine's folder the link points to."""
    from dae_lib.runs import portable

    target = tmp_path / "elsewhere" / "bse-jsrt-512"
    target.mkdir(parents=True)
    link = REPO_ROOT / ".cache" / f"test-link-{os.getpid()}"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    try:
        rel = portable(str(link / "bse-jsrt-512"))
        assert rel == os.path.join(".cache", link.name, "bse-jsrt-512") and str(tmp_path) not in rel
    finally:
        link.unlink()


# --------------------------------------------------------------------------------------------
# The notebooks' set-up: parameters cells of literals, one set-up function
# --------------------------------------------------------------------------------------------


def _parameters_cell(name):
    nb = json.loads((REPO_ROOT / "notebooks" / name).read_text())
    return next("".join(c["source"]) for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))


@pytest.mark.parametrize("name", pipeline.NOTEBOOKS)
def test_parameters_cells_hold_only_literals_and_the_default_profile(name):
    """papermill needs literals; the environment is read by notebook_setup alone, and the cell's
    profile is the command line's default (config.DEFAULT_PROFILE)."""
    import ast

    from dae_lib.config import DEFAULT_PROFILE

    tree = ast.parse(_parameters_cell(name))
    values = {}
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant), ast.unparse(stmt)
        values[stmt.targets[0].id] = stmt.value.value
    assert values["profile"] == DEFAULT_PROFILE and {"data_dir", "out_root"} <= set(values)
    nb_text = (REPO_ROOT / "notebooks" / name).read_text()
    assert "os.environ" not in nb_text and "notebook_setup(profile, data_dir, out_root" in nb_text


def test_notebook_setup_takes_the_environment_and_normalises_once(monkeypatch, tmp_path):
    for name in pipeline.ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)
    s = pipeline.notebook_setup("quick", "phantom", "", seed=3)
    assert (s.profile, s.data_dir, s.cfg.seed, s.out.root, s.sources) == ("quick", None, 3, REPO_ROOT, {})
    monkeypatch.setenv("DAE_PROFILE", "smoke")
    monkeypatch.setenv("DAE_OUT", str(tmp_path))
    s = pipeline.notebook_setup("quick", "../shared/data/bse-jsrt-512", "")
    assert s.profile == "smoke" and s.cfg.image_size == 192 and s.out.root == tmp_path
    assert os.path.normpath(s.data_dir) == os.path.normpath(REPO_ROOT / "../shared/data/bse-jsrt-512") and s.cfg.data_dir == s.data_dir
    assert "from DAE_PROFILE" in str(s) and "from DAE_OUT" in str(s)
    monkeypatch.setenv("DAE_PROFILE", "fast")
    with pytest.raises(ConfigError, match="profile must be one of smoke, quick, paper, not 'fast'"):
        pipeline.notebook_setup("quick", "phantom", "")


def test_the_pipeline_hands_its_kernels_the_parameters_it_injects(monkeypatch, tmp_path):
    """The kernel's environment says what papermill injects (never the session's DAE_OUT), and
    the process's own environment is restored after."""
    seen = {}
    monkeypatch.setenv("DAE_OUT", "/elsewhere")
    monkeypatch.setattr(pipeline.pm, "execute_notebook", lambda *a, **k: seen.update({n: os.environ.get(n) for n in pipeline.ENVIRONMENT.values()}))
    pipeline.execute_notebook(tmp_path / "x.ipynb", tmp_path / "y.ipynb", dict(profile="smoke", data_dir="phantom", out_root=str(tmp_path)))
    assert seen == {"DAE_PROFILE": "smoke", "DAE_DATA": "phantom", "DAE_OUT": str(tmp_path)}
    assert os.environ["DAE_OUT"] == "/elsewhere"


def test_a_request_is_checked_and_normalised_where_it_is_made(tmp_path):
    r = pipeline.Request("smoke", "phantom", tmp_path)
    assert r.data_dir is None and r.outputs.runs == tmp_path / "runs" / "smoke" / "phantom"
    with pytest.raises(ConfigError, match="family must be one of reproduced, residual, not 'paper'"):
        pipeline.Request("smoke", families=("paper",))
    with pytest.raises(ConfigError, match="--seeds must be at least 1"):
        pipeline.Request("smoke", seeds=0)


# --------------------------------------------------------------------------------------------
# Safe by hand: nothing committed is replaced, notebooks before training stop at once
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["03_table1.ipynb", "04_figures.ipynb", "05_beyond_the_paper.ipynb"])
def test_a_notebook_before_any_training_stops_at_its_first_cell_and_writes_nothing(tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(pipeline.pm.PapermillExecutionError) as e:
        pipeline.execute_notebook(REPO_ROOT / "notebooks" / name, tmp_path / name, dict(profile="smoke", data_dir="phantom", out_root=str(out)))
    message = e.value.evalue
    assert e.value.ename == "NotReady" and "run notebook 02_training for each variant first, or `make reproduce PROFILE=smoke`" in message
    assert list(out.iterdir()) == []  # nothing written
    executed = json.loads((tmp_path / name).read_text())
    errors = [c for c in executed["cells"] if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(errors) == 1 and "notebook_setup(" in "".join(errors[0]["source"])  # the set-up cell, the first after the parameters


def test_without_publish_results_and_figures_go_to_scratch_never_over_committed_ones(monkeypatch, tmp_path):
    for name in pipeline.ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(runs, "dirty_files", lambda: [])  # as in a clean clone, whatever this checkout holds
    by_hand = pipeline.notebook_setup("quick", "phantom", "")
    assert by_hand.out.results == REPO_ROOT / "scratch" / "results" and by_hand.out.figures == REPO_ROOT / "scratch" / "figures"
    assert by_hand.out.runs == REPO_ROOT / "runs" / "quick" / "phantom"  # run folders are the same either way
    published = pipeline.notebook_setup("quick", "phantom", "", publish=True)
    assert published.out.results == REPO_ROOT / "results" and published.out.figures == REPO_ROOT / "figures"
    assert "scratch/" in (REPO_ROOT / ".gitignore").read_text().split()


def test_committed_outputs_are_never_written_from_uncommitted_code(monkeypatch, tmp_path, capsys):
    """publish (make reproduce, solutions, the phantom figure) into the repository's own results/ and
    figures/ is refused, before anything runs, while tracked files have uncommitted changes; another
    output root is not; the override is named in the message and works."""
    for name in (*pipeline.ENVIRONMENT.values(), runs.ALLOW_DIRTY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(runs, "dirty_files", lambda: ["dae_lib/losses.py", "notebooks/02_training.ipynb"])
    monkeypatch.setattr(pipeline, "execute_step", lambda *a, **k: pytest.fail("a notebook ran"))
    with pytest.raises(PublishError, match=r"uncommitted changes to tracked files \(dae_lib/losses.py, notebooks/02_training.ipynb\).*DAE_PUBLISH_DIRTY=1"):
        pipeline.notebook_setup("quick", "phantom", "", publish=True)
    for call in (lambda: pipeline.reproduce(pipeline.Request("smoke")), lambda: pipeline.run_solutions(pipeline.Request("smoke"))):
        with pytest.raises(PublishError):
            call()
    figure = REPO_ROOT / "figures" / "phantom_sample.png"
    before = figure.read_bytes() if figure.exists() else None
    with pytest.raises(PublishError):
        figures.phantom_sample_figure(size=64)
    assert (figure.read_bytes() if figure.exists() else None) == before
    assert cli_main(["reproduce", "--profile", "smoke"]) == 2 and "DAE_PUBLISH_DIRTY" in capsys.readouterr().err  # one line, no traceback
    assert pipeline.notebook_setup("quick", "phantom", "").out.publish is False  # scratch/: never refused
    assert pipeline.notebook_setup("quick", "phantom", str(tmp_path), publish=True).out.results == tmp_path / "results"
    figures.phantom_sample_figure(tmp_path / "p.png", size=64)  # a figure outside figures/
    monkeypatch.setenv(runs.ALLOW_DIRTY_ENV, "1")
    assert pipeline.notebook_setup("quick", "phantom", "", publish=True).out.results == REPO_ROOT / "results"


def test_an_executed_copy_says_what_it_was_run_with_not_what_the_notebook_stores():
    nb = json.loads((REPO_ROOT / "notebooks" / "02_training.ipynb").read_text())
    assert "**Stored outputs**" in "".join(nb["cells"][0]["source"])
    step = pipeline.Step("02_training.ipynb", REPO_ROOT / "x.ipynb", {"profile": "quick", "data_dir": "phantom", "device": "cpu", "variant": "dae", "seed": 2}, (2,))
    made = pipeline.copy_record(step)
    assert (made["profile"], made["data"], made["variant"], made["seeds"]) == ("quick", "phantom", "dae", [2]) and made["device"].startswith("cpu")
    pipeline.label_copy(nb, {**made, "commit": "0123456789abcdef", "uncommitted": []})
    first = "".join(nb["cells"][0]["source"])
    assert "Stored outputs" not in first and "Read it executed" not in first
    assert "**This copy** was executed headless (papermill) with profile `quick`, data `phantom`, variant `dae`, training seed 2, on cpu" in first
    assert "commit `0123456`," in first and "local changes" not in first and nb["metadata"][pipeline.COPY_METADATA]["seeds"] == [2]
    nb = json.loads((REPO_ROOT / "notebooks" / "01_data_preparation.ipynb").read_text())
    pipeline.label_copy(nb, {**made, "variant": None, "seeds": None, "commit": "0123456789abcdef-dirty", "uncommitted": ["dae_lib/x.py"]})
    assert "data `phantom`, no training, on cpu" in "".join(nb["cells"][0]["source"]) and "+ local changes" in "".join(nb["cells"][0]["source"])


def test_every_notebook_takes_the_publish_parameter_and_passes_it_to_its_set_up():
    for name in pipeline.NOTEBOOKS:
        assert "publish = False" in _parameters_cell(name), name
        text = (REPO_ROOT / "notebooks" / name).read_text()
        assert "notebook_setup(profile, data_dir, out_root, publish" in text, name
    assert all(s.parameters["publish"] is True for s in pipeline.plan(pipeline.Request("smoke")))


def test_the_pipeline_passes_paths_as_the_repository_sees_them():
    """Executed copies are committed: the injected parameters hold no absolute path of this machine."""
    steps = pipeline.plan(pipeline.Request("smoke", "../shared/data/bse-jsrt-512"))
    assert {s.parameters["out_root"] for s in steps} == {"."} and {s.parameters["data_dir"] for s in steps} == {"../shared/data/bse-jsrt-512"}


#: The executed notebooks of `make reproduce` (quick profile, phantom, both families), committed so
#: that a reader sees every figure without running anything.
EXECUTED = REPO_ROOT / "results" / "executed" / "phantom-quick"
#: The start of an absolute path of a machine (the image data of outputs is not searched).
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|home|root|tmp|usr|opt|Users|var|private|mnt)/")


def _text_outside_images(nb: dict) -> str:
    parts = []
    for c in nb["cells"]:
        parts.append("".join(c["source"]))
        for o in c.get("outputs", []):
            parts.append(json.dumps({k: v for k, v in o.items() if k != "data"}))
            parts.extend(json.dumps(v) for k, v in o.get("data", {}).items() if not k.startswith("image/"))
    return "\n".join(parts)


def test_the_committed_executed_notebooks_show_every_figure_and_hold_no_machine_path():
    copies = sorted(EXECUTED.glob("*.ipynb"))
    names = {p.name for p in copies}
    solutions = sorted((EXECUTED / pipeline.SOLUTIONS_DIR).glob("*.ipynb"))  # python -m dae_lib solutions
    assert {p.name for p in solutions} == {p.name for p in (REPO_ROOT / "notebooks" / pipeline.SOLUTIONS_DIR).glob("*.ipynb")}
    prov = json.loads((EXECUTED / pipeline.SOLUTIONS_DIR / pipeline.SOLUTIONS_PROVENANCE).read_text())
    assert prov["profile"] == "quick" and prov["data"] == "phantom" and set(prov["wall_seconds"]) == {p.name for p in solutions}
    assert not prov["uncommitted"] and not MACHINE_PATH.search(json.dumps(prov))
    copies += solutions
    assert {n for n in pipeline.NOTEBOOKS if not n.startswith("02_")} <= names
    assert {n for n in names if n.startswith("02_")} == {f"02_training_{v}.ipynb" for v in pipeline.SHOWN_TRAININGS}  # one per family
    assert sum(p.stat().st_size for p in copies) < 8_000_000
    images = 0
    for p in copies:
        nb = json.loads(p.read_text())
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert not any(o.get("output_type") == "error" for o in outputs), p.name
        assert not MACHINE_PATH.search(_text_outside_images(nb)), (p.name, MACHINE_PATH.search(_text_outside_images(nb)))
        images += sum("image/png" in o.get("data", {}) for o in outputs)
        for cell in nb["cells"] if p.parent == EXECUTED else []:  # every cell of a notebook that draws a figure shows it
            if cell["cell_type"] == "code" and re.search(r"\bfigures\.\w+\(", "".join(cell["source"])):
                assert any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])), (p.name, "".join(cell["source"])[:80])
        for link in re.findall(r"\]\(([\w./-]+)(?:#[\w-]*)?\)", "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")):
            assert (p.parent / link).exists(), (p.name, link)  # links (notebooks, README's glossary) resolve from the copy's own folder
    assert images >= 25


def test_the_committed_executed_copies_show_the_notebooks_code_as_it_is_now():
    """Each executed copy's code cells are its notebook's (papermill's injected parameters aside):
    a notebook edited without regenerating its copy (``python -m dae_lib reproduce``) fails here."""
    def code(nb):
        return ["".join(c["source"]) for c in nb["cells"]
                if c["cell_type"] == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]  # fmt: skip

    notebooks = REPO_ROOT / "notebooks"
    pairs = [(p, notebooks / ("02_training.ipynb" if p.name.startswith("02_") else p.name)) for p in EXECUTED.glob("*.ipynb")]
    pairs += [(p, notebooks / pipeline.SOLUTIONS_DIR / p.name) for p in (EXECUTED / pipeline.SOLUTIONS_DIR).glob("*.ipynb")]
    assert len(pairs) >= len(pipeline.NOTEBOOKS) + len(pipeline.SHOWN_TRAININGS) - 1 + 4  # 02 once per family; the solutions
    for copy, source in pairs:
        assert code(json.loads(copy.read_text())) == code(json.loads(source.read_text())), copy.name


@pytest.mark.parametrize("name", pipeline.NOTEBOOKS)
def test_every_notebook_opens_with_its_banner_and_a_link_to_its_executed_copy(name):
    first = "".join(json.loads((REPO_ROOT / "notebooks" / name).read_text())["cells"][0]["source"])
    for word in ("**Runs**", "**Takes**", "**Needs**", "**Writes**", "results/executed/phantom-quick/"):
        assert word in first, (name, word)
    linked = re.search(r"\(\.\./(results/executed/phantom-quick/[\w.]+\.ipynb)\)", first).group(1)
    assert (REPO_ROOT / linked).is_file()


def _names_read(source: str) -> set[str]:
    import ast

    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "notebooks").glob("**/*.ipynb")), ids=lambda p: p.name)
def test_after_the_set_up_no_cell_reads_the_raw_parameters(path):
    """notebook_setup lets DAE_PROFILE / DAE_DATA / DAE_OUT override the parameters (nbval and CI set
    them); a later cell that reads ``profile`` itself gets the parameters cell's "quick" instead of
    the profile in force (it once ran the quick profile's two fine-tunings under nbval, 223 s)."""
    cells = [("".join(c["source"])) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    after = [s for k, s in enumerate(cells) if any("notebook_setup(" in p for p in cells[:k])]
    for source in after:
        assert not _names_read(source) & {"profile", "data_dir", "out_root"}, (path.name, source[:200])


def test_an_executed_copy_keeps_its_links_to_the_repository_wherever_its_notebook_lies():
    """A solutions notebook links ``../../CITATION.cff``, a notebook ``../README.md#glossary``; their
    executed copies lie elsewhere (results/executed/<data>-<profile>/[solutions/]): each link is
    rewritten from the copy's folder and still names the same file; a link into the notebook's own
    folder (a solution, the next notebook) is left to resolve to the executed copies beside it."""
    copies = REPO_ROOT / "results" / "executed" / "phantom-quick"
    text = "[CITATION.cff](../../CITATION.cff), [glossary](../../README.md#glossary), [07](../07_score_your_pairs.ipynb)"
    relinked = pipeline._relink(text, copies / "solutions" / "07_solutions.ipynb", "solutions/07_solutions.ipynb")
    assert relinked == ("[CITATION.cff](../../../../CITATION.cff), [glossary](../../../../README.md#glossary), "
                        "[07](../../../../notebooks/07_score_your_pairs.ipynb)")  # fmt: skip
    text = "[glossary](../README.md#glossary), [solutions](solutions/05_06_solutions.ipynb)"
    assert pipeline._relink(text, copies / "05_beyond_the_paper.ipynb", "05_beyond_the_paper.ipynb") == (
        "[glossary](../../../README.md#glossary), [solutions](solutions/05_06_solutions.ipynb)")
    made = {"notebook": "solutions/07_solutions.ipynb", "profile": "quick", "data": "phantom", "device": "cpu", "commit": "0" * 40, "utc": "2026-12-07"}
    assert "(../../notebooks/solutions/07_solutions.ipynb)" in pipeline.copy_banner(made)


def test_an_executed_copy_keeps_a_widget_s_static_view_and_drops_the_widget(tmp_path):
    """papermill's kernel is live, so 06's slider is created; without a kernel a stored widget shows
    as its repr ("VBox(children=...") or nothing: the copy keeps the static image only."""
    image = {"output_type": "display_data", "data": {"image/png": pipeline.compact_png(_tiny_png()), "text/plain": "<Image>"}, "metadata": {}}
    widget = {"output_type": "execute_result", "execution_count": 1, "metadata": {},
              "data": {pipeline.WIDGET_VIEW: {"model_id": "x"}, "text/plain": "VBox(children=(FloatSlider(value=0.5,))"}}  # fmt: skip
    nb = {"cells": [{"cell_type": "code", "source": "slider()", "metadata": {}, "outputs": [image, widget], "execution_count": 1}],
          "metadata": {"widgets": {"state": {}}}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    path = tmp_path / "copy.ipynb"
    path.write_text(json.dumps(nb))
    pipeline.strip_metadata(path)
    stored = json.loads(path.read_text())
    assert [list(o["data"]) for o in stored["cells"][0]["outputs"]] == [["image/png", "text/plain"]]
    assert "widgets" not in stored["metadata"] and "VBox" not in path.read_text()


def _tiny_png() -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
