"""The notebook pipeline: 01 -> 02 (x4 variants per model family) -> 03 -> 04 -> 05 -> 06, headless by
papermill; and the one set-up every notebook starts with (``notebook_setup``).

    python -m dae_lib reproduce [--profile quick] [--data phantom|DIR] [--family all|reproduced|residual] [--kernel NAME] [--out-root DIR]

Executed copies go to results/executed/<data>-<profile>/ (papermill's run metadata is stripped to
keep them small). When a cell fails, the pipeline stops with a message naming the notebook and
the cell, and the executed copy up to the failure is kept for reading.

A notebook's parameters cell holds literal defaults only (papermill replaces them). Its next cell
passes them to ``notebook_setup``, where the environment variables ``ENVIRONMENT`` names take their
place when set: nbval (under pytest) cannot inject parameters, so conftest.py sets them; the
pipeline sets them to the very values it injects.
"""
from __future__ import annotations

import base64
import io
import json
import multiprocessing
import os
import re
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import papermill as pm
from PIL import Image
from jupyter_client.kernelspec import KernelSpecManager

from .atomic import append_csv, atomic_path
from .config import DEFAULT_PROFILE, ENVIRONMENT, PHANTOM, PROFILES, Config, check_choice, default, load_config
from .data import case_ids
from .device import describe, pick_device
from .errors import ConfigError, NotReady
from .models import FAMILIES, variants
from .reporting import layout
from .reporting.evaluate import evaluate_run
from .runs import REPO_ROOT, ROOT_ENV, SCRATCH_DIR, Outputs, check_publishable, finished_runs, footer_line, normalise_data_dir, outputs, portable, record, seed_folders, WALL_TIMES_CSV
from .split import checked_split
from .train import FitResult, fit

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = (
    "01_data_preparation.ipynb", "02_training.ipynb", "03_table1.ipynb", "04_figures.ipynb", "05_beyond_the_paper.ipynb",
    "06_suppress_your_radiograph.ipynb", "07_score_your_pairs.ipynb",
)


#: The notebooks after 02 that show the trained runs (the others show the data or the released model).
SHOWS_RUNS = ("03_table1.ipynb", "04_figures.ipynb", "05_beyond_the_paper.ipynb")


#: The trainings whose executed copy of 02 is kept beside the other notebooks' copies: one per
#: family (its variant with every loss term), since the copies of one family's variants show the
#: same text, code and figures and differ only in numbers that 03 tabulates. The others (and every
#: seed but the first) go to runs/<profile>/<data>/executed/ (``executed_copy``).
SHOWN_TRAININGS = tuple(list(variants(f))[-1] for f in FAMILIES)
#: Where the executed copies of the other trainings go, inside the runs folder.
TRAINING_COPIES = "executed"


class PipelineError(RuntimeError):
    """A notebook failed; the message names it and the cell."""


#: What a Jupyter kernel name may be (jupyter_client's own rule for kernel specs): the name is
#: passed on to papermill and to the kernel's launcher, so anything else is refused unread.
KERNEL_NAME = re.compile(r"[a-z0-9._\-]+", re.IGNORECASE)


def check_kernel(name: str | None) -> None:
    """A ConfigError naming --kernel unless ``name`` (None: the notebooks' own kernel) is a
    well-formed name of a kernel that jupyter_client finds on this machine."""
    if name is None:
        return
    if not isinstance(name, str) or not KERNEL_NAME.fullmatch(name):
        raise ConfigError(f"--kernel {name!r}: not a kernel name (letters, digits, '.', '_' and '-' only)")
    installed = sorted(KernelSpecManager().find_kernel_specs())
    if name.lower() not in installed:  # jupyter_client stores kernel names in lower case
        raise ConfigError(f"--kernel {name!r}: no such Jupyter kernel on this machine (installed: {', '.join(installed) or 'none'}; see `jupyter kernelspec list`)")


@dataclass(frozen=True)
class Request:
    """One pipeline run as the command line (or a test) asks for it: the profile, the data (None:
    the phantom; a folder is made absolute here, once), where the outputs go (None: the
    repository), the first training seed and how many, the device, the model families."""
    profile: str = DEFAULT_PROFILE
    data_dir: str | None = None
    out_root: str | Path | None = None
    seed: int = default("seed")
    seeds: int = 1
    device: str = default("device")
    families: tuple[str, ...] = tuple(FAMILIES)

    def __post_init__(self):
        check_choice("profile", self.profile, PROFILES)
        if self.seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, not {self.seeds}")
        for family in self.families:
            check_choice("family", family, tuple(FAMILIES))
        object.__setattr__(self, "data_dir", normalise_data_dir(self.data_dir))
        object.__setattr__(self, "families", tuple(self.families))

    @property
    def outputs(self) -> Outputs:
        return outputs(self.profile, self.data_dir, self.out_root)


def check_data(request: Request) -> None:
    """Refuse, before any notebook runs, what notebook 01 and the trainings would fail on: settings
    the Config refuses (the last training seed included), a data folder that cannot be read, and
    data that cannot give every part of the split (a DataError naming the folder and the counts)."""
    cfg = load_config(request.profile, data_dir=request.data_dir, seed=request.seed + request.seeds - 1, device=request.device)
    ids, where = case_ids(cfg)
    checked_split(ids, cfg.test_fraction, cfg.val_fraction, cfg.split_seed, where)


@dataclass
class Step:
    """One papermill run: the notebook (relative to the notebooks folder), its executed copy, the
    parameters injected, and the training seeds of the runs it shows (None: it shows no training;
    (): the solutions, which train runs of their own)."""
    notebook: str
    output: Path
    parameters: dict
    seeds: tuple[int, ...] | None = None

    @property
    def trains(self) -> bool:
        """Whether this step is a training (notebook 02 for one variant and seed)."""
        return "variant" in self.parameters


def executed_copy(out: Outputs, variant: str, seed: int) -> Path:
    """Where notebook 02's executed copy for ``variant`` and ``seed`` goes: beside the other
    notebooks' copies for SHOWN_TRAININGS at the first seed, else into the runs folder."""
    name = f"02_training_{variant}.ipynb" if seed == 0 else f"02_training_{variant}_seed{seed}.ipynb"
    return (out.executed if variant in SHOWN_TRAININGS and seed == 0 else out.runs / TRAINING_COPIES) / name


def plan(request: Request) -> list[Step]:
    """The ordered papermill runs of the pipeline: notebook 02 once per variant of the requested
    families and training seed (``seed``, ``seed + 1``, ... ``seeds`` of them)."""
    out = request.outputs
    # Paths as the repository sees them (relative where they can be): executed copies are committed.
    data = portable(request.data_dir) if request.data_dir else PHANTOM
    common = dict(profile=request.profile, data_dir=data, seed=request.seed, device=request.device, out_root=portable(out.root), publish=True)
    seeds = tuple(range(request.seed, request.seed + request.seeds))
    steps = [Step(NOTEBOOKS[0], out.executed / NOTEBOOKS[0], common)]
    for s in seeds:
        for variant in (v for f in request.families for v in variants(f)):
            steps.append(Step(NOTEBOOKS[1], executed_copy(out, variant, s), {**common, "variant": variant, "seed": s}, (s,)))
    steps += [Step(nb, out.executed / nb, common, seeds if nb in SHOWS_RUNS else None) for nb in NOTEBOOKS[2:]]
    return steps


def _failed_cell(path: Path) -> str:
    """'cell N (first line ...)' of the first cell with an error output in an executed notebook."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return "an unknown cell"
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        code_index += 1  # numbered as in the source notebook (papermill's injected cell not counted)
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            src = "".join(cell.get("source", "")).strip().splitlines()
            return f"code cell {code_index} ({src[0][:60] if src else 'empty'!r})"
    return "an unknown cell"


#: Image outputs of executed notebooks are kept at screen resolution: at most this wide (px), as a
#: 256-colour PNG (the executed copies of the phantom run are committed; all together under 8 MB).
SCREEN_WIDTH = layout.SCREEN_WIDTH


def compact_png(data: str) -> str:
    """A base64 PNG output at screen resolution: scaled down to SCREEN_WIDTH px wide when wider,
    stored with an adaptive 256-colour palette (grey images keep their 256 levels)."""
    im = Image.open(io.BytesIO(base64.b64decode(data)))
    im = im.convert("RGBA")
    flat = Image.new("RGB", im.size, "white")
    flat.paste(im, mask=im.split()[-1])
    if flat.width > SCREEN_WIDTH:
        flat = flat.resize((SCREEN_WIDTH, round(flat.height * SCREEN_WIDTH / flat.width)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    flat.quantize(256, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


#: A link of a notebook to a file of the repository outside its own folder (``../README.md#glossary``,
#: the banner's "Read it executed" copy; ``../../CITATION.cff`` from a solutions notebook): the path,
#: then the anchor if any.
_REPO_LINK = re.compile(r"\]\(((?:\.\./)+[^)\s#]*)(#[^)\s]*)?\)")


def _relink(text: str, path: Path, notebook: str) -> str:
    """``text`` of ``notebook`` (its path under notebooks/) with its links to the repository's files
    made relative to ``path``'s folder (where the executed copy lies), so that they resolve there
    too; unchanged outside the repository."""
    root = REPO_ROOT.resolve()
    if not Path(path).resolve().is_relative_to(root):
        return text
    here, source = Path(path).resolve().parent, (root / NOTEBOOK_DIR.name / notebook).parent

    def link(m: re.Match) -> str:
        target = (source / m.group(1)).resolve()
        return f"]({os.path.relpath(target, here)}{m.group(2) or ''})" if target.is_relative_to(root) else m.group(0)

    return _REPO_LINK.sub(link, text)


#: The key of an executed copy's notebook metadata under which it records how it was made.
COPY_METADATA = "dae_lib"
#: The first cell's lines that describe the notebook, not its executed copy: a copy drops them and
#: says instead what it was run with (``label_copy``).
_NOTEBOOK_ONLY = (re.compile(r"^\*\*Read it executed\*\*.*\n?", re.M), re.compile(r"\*\*Stored outputs\*\*.*?(?=\n\n|\Z)", re.S))


def copy_record(step: Step) -> dict:
    """How an executed copy is made, taken as it starts: its notebook, profile, data, variant, the
    training seeds of the runs it shows, the device, and the commit (runs.record)."""
    p = step.parameters
    return record(
        notebook=step.notebook, profile=p.get("profile"), data=p.get("data_dir"), variant=p.get("variant"),
        seeds=None if step.seeds is None else list(step.seeds), device=describe(pick_device(p.get("device", default("device")))),
    )


def copy_banner(made: dict) -> str:
    """The executed copy's line that says what it is: what it was run with, where its notebook is."""
    seeds = made.get("seeds")
    if seeds is None:
        trained = "no training"
    elif not seeds:  # the solutions: trainings of their own, each exercise states its seeds
        trained = "the exercises' own trainings where they need any (seeds as each states)"
    else:
        trained = f"training seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}"
    commit = made["commit"]
    when = "unknown commit" if commit == "unknown" else f"commit `{commit[:7]}`" + (" + local changes" if made.get("uncommitted") else "")
    variant = f", variant `{made['variant']}`" if made.get("variant") else ""
    return (
        f"**This copy** was executed headless (papermill) with profile `{made['profile']}`, data `{made['data']}`{variant}, {trained}, "
        f"on {made['device']}, at {when}, {made['utc'][:10]}: its outputs are that run's results. The notebook itself is "
        f"[`notebooks/{made['notebook']}`]({'../' * len(Path(made['notebook']).parts)}notebooks/{made['notebook']}) "
        "(its stored outputs are the smoke profile's, for the tests)."
    )


def label_copy(nb: dict, made: dict) -> None:
    """An executed notebook ``nb`` labelled as the copy it is: its first cell's lines about the
    notebook's own stored outputs replaced by ``copy_banner``, and ``made`` in its metadata."""
    first = next((c for c in nb.get("cells", []) if c.get("cell_type") == "markdown"), None)
    if first is not None:
        text = _NOTEBOOK_ONLY[0].sub("", "".join(first.get("source", [])))
        text, found = _NOTEBOOK_ONLY[1].subn(lambda m: copy_banner(made), text)
        first["source"] = text if found else text.rstrip("\n") + "\n\n" + copy_banner(made)
    nb.setdefault("metadata", {})[COPY_METADATA] = made


#: The output type of a live widget (ipywidgets), which an executed copy leaves out.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_metadata(path: Path, made: dict | None = None) -> None:
    """Drop papermill's per-cell timing metadata, the parameter cell's injected markers' noise and
    live widgets' outputs (each figure's static view stays); image outputs kept at screen
    resolution (``compact_png``); with ``made`` (``copy_record``), labelled as the copy it is
    (``label_copy``)."""
    nb = json.loads(path.read_text())
    if made is not None:
        label_copy(nb, made)
    nb.get("metadata", {}).pop("papermill", None)
    nb.get("metadata", {}).pop("widgets", None)  # a live widget's state: no kernel drives it in a stored copy
    for cell in nb.get("cells", []):
        if "outputs" in cell:  # a widget shows as its repr without a kernel ("VBox(children=..."): the static view before it stays
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET_VIEW not in o.get("data", {})]
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if cell.get("cell_type") == "markdown":  # a notebook's links to executed copies, from where this copy lies
            cell["source"] = _relink("".join(cell.get("source", [])), path, made["notebook"] if made else path.name)
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                output["data"]["image/png"] = compact_png(output["data"]["image/png"])
                output.get("metadata", {}).pop("image/png", None)  # its recorded size is the old one
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _label(step: Step) -> str:
    return step.notebook + (f" (variant {step.parameters['variant']}, seed {step.parameters['seed']})" if step.trains else "")


@contextmanager
def _kernel_environment(parameters: dict):
    """The environment a notebook's kernel inherits: the ENVIRONMENT variables set to the
    parameters injected, so that notebook_setup reads the same values from both, and runs.ROOT_ENV
    to this process's repository root (all restored after)."""
    saved = {name: os.environ.get(name) for name in (*ENVIRONMENT.values(), ROOT_ENV)}
    os.environ.update({name: str(parameters[key]) for key, name in ENVIRONMENT.items() if key in parameters})
    os.environ[ROOT_ENV] = str(REPO_ROOT)  # relative paths in the parameters mean the same folder to the kernel
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_notebook(source: Path, output: Path, parameters: dict, kernel_name=None) -> None:
    """papermill's run of one notebook with ``parameters`` (in its own folder, no progress bar)."""
    with _kernel_environment(parameters):
        pm.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name=kernel_name, cwd=str(source.parent), progress_bar=False
        )


def execute_step(step: Step, notebook_dir: Path, kernel_name=None, threads: int | None = None) -> str | None:
    """Execute one step with papermill (in this process, or in a worker of ``run``'s pool); returns
    None, or the one-line message of its failure naming the notebook and the cell. ``threads``
    caps the CPU threads of the notebook's kernel (OMP_NUM_THREADS, which the kernel inherits),
    so that parallel trainings do not fight over the cores; a value the user set is kept."""
    if threads and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    step.output.parent.mkdir(parents=True, exist_ok=True)
    made = copy_record(step)
    try:
        execute_notebook(Path(notebook_dir) / step.notebook, step.output, step.parameters, kernel_name)
    except pm.PapermillExecutionError as e:
        return f"{_label(step)} failed in {_failed_cell(step.output)}: {e.ename}: {e.evalue} (executed copy: {step.output})"
    strip_metadata(step.output, made)
    return None


def _run_parallel(steps: list[Step], jobs: int, notebook_dir: Path, kernel_name, log) -> None:
    """The training steps, ``jobs`` at a time, each notebook in its own worker process (and
    kernel). A step is handed to the pool only when a worker is free, so nothing waits in the
    pool's queue: after the first failure, or Ctrl-C, no further training starts; the failure is
    raised once the running ones have ended."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    queue, failure = list(steps), None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        t0 = time.perf_counter()
        log(f"running {len(steps)} trainings, {jobs} at a time ({threads} CPU threads each) ...")
        running = {}
        while queue or running:
            while queue and failure is None and len(running) < jobs:
                step = queue.pop(0)
                running[pool.submit(execute_step, step, notebook_dir, kernel_name, threads)] = step
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                step = running.pop(fut)
                crash = fut.exception()  # the worker itself broke (not a cell: that is execute_step's message)
                error = f"{_label(step)} failed: {crash!r}" if crash else fut.result()
                if not error:
                    log(f"  {_label(step)} done {time.perf_counter() - t0:.0f} s after the trainings began -> {step.output}")
                elif failure is None:
                    failure = error
    if failure:
        raise PipelineError(failure)


def reproduce(request: Request, kernel_name=None, jobs: int = 1, log=print, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Execute the pipeline for the variants of the requested families; returns the executed notebooks.

    ``jobs`` > 1 runs that many trainings (notebook 02) at once, each in its own process: on a GPU
    one small model leaves most of the device idle, so several runs share it well; on a CPU with
    few cores it gains nothing. The other notebooks run one after another. The kernel, the settings
    and the data are checked first (``check_kernel``, ``check_data``: an InputError before anything
    runs). Raises PipelineError on a failure."""
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, not {jobs}")
    check_kernel(kernel_name)
    check_data(request)
    check_publishable(request.outputs.root)
    steps = plan(request)
    training = [s for s in steps if s.trains]
    for step in steps:
        if jobs > 1 and step.trains:
            if step is training[0]:
                _run_parallel(training, jobs, notebook_dir, kernel_name, log)
            continue
        t0 = time.perf_counter()
        log(f"running {_label(step)} ...")
        error = execute_step(step, notebook_dir, kernel_name)
        if error:
            raise PipelineError(error)
        log(f"  done in {time.perf_counter() - t0:.0f} s -> {step.output}")
    return [s.output for s in steps]


#: The solutions to the notebooks' exercises (run by nbval like the notebooks), and the provenance
#: record beside their executed copies (``run_solutions``).
SOLUTIONS_DIR = "solutions"
SOLUTIONS_PROVENANCE = "provenance.json"


def store_notebooks(notebook_dir: Path = NOTEBOOK_DIR, log=print) -> None:
    """Refresh the stored notebooks from a smoke run on the phantom.

    The notebooks keep outputs only in their NBVAL_CHECK_OUTPUT cells (small files, nbval's
    reference); the solutions notebooks keep every printed output (the answers a reader looks for;
    nbval checks none of them, each solution asserts its own outcome) except the set-up cell's.
    Execution goes to a temporary folder inside the repository's scratch/, so that no stored output
    names a path of the machine that made it.
    """
    scratch = REPO_ROOT / SCRATCH_DIR
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="store-notebooks-", dir=scratch) as tmp:
        params = dict(profile="smoke", data_dir=PHANTOM, out_root=tmp, publish=True)
        solutions = sorted((notebook_dir / SOLUTIONS_DIR).glob("*.ipynb"))
        for src in [notebook_dir / name for name in NOTEBOOKS] + solutions:
            executed = Path(tmp) / src.name
            log(f"executing {src.name} (smoke) ...")
            execute_notebook(src, executed, params if src.parent == notebook_dir else {k: v for k, v in params.items() if k != "publish"})
            ran = json.loads(executed.read_text())
            stored = json.loads(src.read_text())
            ran_cells = [c for c in ran["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
            for cell, new in zip(stored["cells"], ran_cells):
                if cell["cell_type"] == "code":
                    _store_outputs(cell, new, every=src.parent != notebook_dir)
            src.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n")


def _is_figure(output: dict) -> bool:
    """A displayed image (a figure): kept out of the stored notebooks (the executed copies hold them)."""
    return output.get("output_type") == "display_data" and any(k.startswith("image/") for k in output.get("data", {}))


def _store_outputs(cell: dict, ran: dict, every: bool) -> None:
    """``cell``'s outputs from its executed copy ``ran``, figures left out: those nbval checks, or
    with ``every`` all but the set-up's (``notebook_setup``: it names the output folder) and the
    parameters'."""
    source = "".join(cell["source"])
    checked = "NBVAL_CHECK_OUTPUT" in source
    keep = checked or (every and "notebook_setup(" not in source and "parameters" not in cell.get("metadata", {}).get("tags", []))
    cell["outputs"] = [o for o in ran.get("outputs", []) if not _is_figure(o)] if keep else []
    cell["execution_count"] = ran.get("execution_count") if keep else None  # nbval needs it
    cell.get("metadata", {}).pop("execution", None)


def run_solutions(request: Request, kernel_name=None, notebook_dir: Path = NOTEBOOK_DIR, log=print) -> list[Path]:
    """Execute the solutions notebooks with the request's profile and data into the executed
    copies' folder (``results/executed/<data>-<profile>/solutions/``): the numbers the exercises
    quote, regenerated by one command (``python -m dae_lib solutions``). Their trainings go to
    scratch/exercise-runs/ (``train_changed``), reused when finished."""
    check_kernel(kernel_name)
    check_data(request)
    out = request.outputs
    check_publishable(out.root)
    data = portable(request.data_dir) if request.data_dir else PHANTOM
    params = dict(profile=request.profile, data_dir=data, out_root=portable(out.root))
    done, seconds = [], {}
    for src in sorted((Path(notebook_dir) / SOLUTIONS_DIR).glob("*.ipynb")):
        target = out.executed / SOLUTIONS_DIR / src.name
        t0 = time.perf_counter()
        log(f"running {src.name} ...")
        error = execute_step(Step(f"{SOLUTIONS_DIR}/{src.name}", target, params, ()), notebook_dir, kernel_name)
        if error:
            raise PipelineError(error)
        log(f"  done in {time.perf_counter() - t0:.0f} s -> {portable(target)}")
        done.append(target)
        seconds[src.name] = round(time.perf_counter() - t0, 1)
    if done:  # what made these numbers: the commit, the machine, the device, each notebook's wall time
        device = describe(pick_device(request.device))
        prov = record(profile=request.profile, data=out.data, device=device, wall_seconds=seconds)
        with atomic_path(done[0].parent / SOLUTIONS_PROVENANCE) as tmp:
            tmp.write_text(json.dumps(prov, indent=1) + "\n")
    return done


def record_wall_time(request: Request, seconds: float, jobs: int = 1) -> Path:
    """Append the end-to-end wall time of one pipeline run (``jobs`` trainings at a time) to
    results/wall_times.csv of its output root."""
    out = request.outputs
    row = record(
        profile=request.profile, data=out.data, wall_seconds=round(seconds, 1), device=describe(pick_device(request.device)),
        families="+".join(request.families), jobs=jobs,
    )
    return append_csv(out.results / WALL_TIMES_CSV, pd.DataFrame([row]))


# ------------------------------------------------------------------------------------------------
# The notebooks' set-up
# ------------------------------------------------------------------------------------------------

# ENVIRONMENT (config.py): the environment variables that stand for the notebooks' parameters.


@dataclass(frozen=True)
class NotebookSetup:
    """What a notebook works with, settled once: the profile, the data (None: the phantom; else an
    absolute folder), its output folders, its Config, and where each of the first three came from."""

    profile: str
    data_dir: str | None
    out: Outputs
    cfg: Config
    sources: dict = field(default_factory=dict)

    def __str__(self) -> str:
        said = lambda k: f" ({self.sources[k]})" if k in self.sources else ""  # noqa: E731
        where = "results/ and figures/ (publish = True)" if self.out.publish else "scratch/ (committed results and figures untouched)"
        return (
            f"profile {self.profile}{said('profile')}; data {self.data}{said('data_dir')}; device {self.cfg.device}; "
            f"outputs under {portable(self.out.root)}{said('out_root')}: run folders in runs/, results and figures in {where}"
        )

    @property
    def data(self) -> str:
        """The data as the repository names it: "phantom", or the folder (relative where it can be)."""
        return PHANTOM if self.data_dir is None else portable(self.data_dir)

    def footer(self, seeds=None) -> str:
        """The provenance line of this notebook's saved figures (runs.footer_line): ``seeds`` of the
        runs a figure shows, None for a figure of the data alone."""
        return footer_line(self.data, self.profile, seeds)

    def trained_seeds(self) -> list[int]:
        """The seeds of the finished runs under this set-up's runs folder."""
        return sorted(k for k, folder in seed_folders(self.out.runs).items() if finished_runs(folder)[0])


def notebook_setup(profile: str, data_dir: str, out_root: str, publish: bool = False, needs_runs: bool = False, **settings) -> NotebookSetup:
    """The one set-up of every notebook, called with its parameters cell's values.

    The ENVIRONMENT variables take the place of ``profile``, ``data_dir`` and ``out_root`` where they
    are set (nbval; the pipeline sets them to what it injects). The data folder and the output root
    are made absolute here, once (relative paths from the repository, runs.resolve); "" means the
    repository's own runs/ and (with ``publish``) results/ and figures/; without ``publish`` a
    notebook writes results and figures to scratch/, never over committed ones (runs.Outputs).
    ``needs_runs``: a notebook that shows trained runs stops here, with one line saying what to run
    first (errors.NotReady), when there are none (nothing is written). ``settings`` (seed, device,
    variant, ...) go to the Config with the profile, which checks every one of them."""
    given = dict(profile=profile, data_dir=data_dir, out_root=out_root)
    sources = {}
    for key, name in ENVIRONMENT.items():
        value = os.environ.get(name)
        if value is not None and value != str(given[key]):  # the pipeline sets them to what it injects: no note then
            given[key], sources[key] = value, f"from {name}"
    check_choice("profile", given["profile"], PROFILES)
    data = normalise_data_dir(given["data_dir"])
    cfg = load_config(given["profile"], data_dir=data, **settings)
    out = outputs(given["profile"], data, given["out_root"] or None, publish=bool(publish))
    if out.publish:
        check_publishable(out.root)
    setup = NotebookSetup(given["profile"], data, out, cfg, sources)
    if needs_runs and not setup.trained_seeds():
        raise NotReady(
            f"no trained runs in {portable(out.runs)} yet (profile {setup.profile}, data {setup.data}): run notebook "
            f"02_training for each variant first, or `make reproduce PROFILE={setup.profile}` (DATA=... for a data folder)"
        )
    return setup


def train_family(setup: NotebookSetup, family: str, log=print) -> dict[str, Path]:
    """Every variant of ``family`` trained in turn with the set-up's profile, data, seed and device
    (what ``make reproduce`` runs headless, for readers who stay in Jupyter); a finished run is
    left as it is, a stopped one resumes. Returns {variant: run folder}."""
    done = {}
    for variant in variants(family):
        cfg = load_config(setup.profile, data_dir=setup.data_dir, variant=variant, seed=setup.cfg.seed, device=setup.cfg.device)
        run_dir = setup.out.run(variant, cfg.seed)
        result = fit(cfg, run_dir, profile=setup.profile)
        log(f"{variant}: best epoch {result.best_epoch} of {len(result.history)} -> {portable(run_dir)}")
        done[variant] = run_dir
    return done


#: Where the exercises' trainings with a changed setting go: under scratch/ (never committed), apart
#: from the run folders that Table 1 and the figures read.
EXERCISE_RUNS = "exercise-runs"


def exercise_folder(setup: NotebookSetup, name: str) -> Path:
    """A scratch folder of an exercise: scratch/exercise-runs/<profile>/<data>/<name>."""
    return setup.out.root / SCRATCH_DIR / EXERCISE_RUNS / setup.out.profile / setup.out.data / name


def exercise_run(setup: NotebookSetup, variant: str, seed: int, changes: dict) -> Path:
    """The run folder of ``variant`` with the Config ``changes`` (an exercise), e.g.
    scratch/exercise-runs/quick/phantom/dae,ls=0.0/seed0."""
    tag = ",".join([variant, *(f"{k}={v}" for k, v in sorted(changes.items()))])
    return exercise_folder(setup, tag) / f"seed{seed}"


def train_changed(setup: NotebookSetup, variant: str, seed: int = 0, log=print, **changes) -> tuple[FitResult, pd.DataFrame]:
    """``variant`` trained with the set-up's profile, data and device and the Config ``changes``
    (``augment=False``, ``ls=0.0``, ...) into ``exercise_run``'s folder; a finished run is reused.
    Returns the fit and the per-image test metrics (identity rows included) of its best weights."""
    cfg = load_config(setup.profile, data_dir=setup.data_dir, variant=variant, seed=seed, device=setup.cfg.device, **changes)
    run_dir = exercise_run(setup, variant, seed, changes)
    result = fit(cfg, run_dir, profile=setup.profile, progress=False)
    said = "".join(f", {k} = {v}" for k, v in changes.items())
    log(f"{variant}{said}, seed {seed}: best epoch {result.best_epoch} of {len(result.history)} -> {run_dir.relative_to(setup.out.root).as_posix()}")
    return result, evaluate_run(run_dir, result.data)
