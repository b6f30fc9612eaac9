"""Run folders and every other output: where they go, what their files are called, what they
record, how they are found again, and the one way to load a trained model out of one.

Where outputs go, from (profile, data, output root): one rule for notebooks and the command line
(``outputs``).

    <root>/runs/<profile>/<data>/<variant>/           training runs, seed 0 (not committed)
    <root>/runs/<profile>/<data>/seed<k>/<variant>/   the same with seed k (``seed_folder``)
    <root>/results/table1.csv, table1.md              Table 1, one block per (data, profile)
    <root>/results/executed/<data>-<profile>/         executed notebooks (not committed)
    <root>/figures/                                   figures of phantom runs (committed)
    <root>/figures/<data>/                            figures of real-data runs (never committed:
                                                      they show the radiographs)

<root> is the repository root unless an output root is given (tests and nbval use a temporary one
so they never overwrite the committed results); <data> is "phantom" or the data folder's name.
Relative paths given to the library are taken from the repository root (``resolve``), never from
the current folder: papermill and nbval start kernels in different working directories.

A run folder (written by ``train.fit``; a released model, ``dae_lib/released/<name>/``, is laid out
as one plus its model card):

    .dae-run            MARKER: the folder is a run of ours (written first)
    .lock               LOCK_FILE: held while a training writes (``run_lock``); the empty file stays
                        afterwards (deleting it would let two trainings lock two different files)
    config.json         CONFIG_FILE: the run's Config (``config_from_run``)
    data.json           DATA_FILE: the data it learnt from, as inference must prepare new images
                        (``run_data``): image size, how the training files stored polarity
    split.csv           SPLIT_FILE: train / val / test by case ID, with file hashes (``run_split``)
    log.csv             LOG_FILE: one row per epoch
    checkpoint.pt       CHECKPOINT: the resume point (read with weights_only=True)
    best.safetensors    BEST_WEIGHTS, LAST_WEIGHTS: float32 weights (no pickle, so no code in them),
    last.safetensors    with the settings they were trained with in their metadata (``check_fingerprint``)
    test_metrics.csv    TEST_METRICS: per-image test metrics (reporting.evaluate)
    provenance.json     PROVENANCE_FILE: data, profile, device, seed, commit, times (``record``)

    trained = load_trained(run_dir_or_weights_file)     # None: the released model
    trained.model, trained.image_size, trained.description
    model = load_model(run_dir)  /  load_released()     # the model alone, eval mode
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .atomic import write_json_atomic
from .config import FINGERPRINT_ADDED_LATER, PHANTOM, Config, config_from_file, fingerprint, is_phantom, read_record
from .device import fastest
from .errors import PublishError, RunDirError, WeightsError
from .models import REPRODUCED, build_model, get_variant, variants
from .split import read_split_csv, write_split_csv

# ------------------------------------------------------------------------------------------------
# The repository and paths given to the library
# ------------------------------------------------------------------------------------------------


#: The environment variable naming the repository root outright: the pipeline sets it for the
#: notebooks' kernels, whose working folder is notebooks/, so that an installed package (no
#: pyproject.toml above it: the root is the working folder) resolves paths as the command did.
ROOT_ENV = "DAE_ROOT"


def _find_root() -> Path:
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    here = Path(__file__).resolve().parent
    for p in (here.parent, *here.parents):
        if (p / "pyproject.toml").is_file() and (p / "dae_lib").is_dir():
            return p
    return Path.cwd()


#: The folder holding ``pyproject.toml`` above this package: relative paths are taken from here.
REPO_ROOT = _find_root()
RESULTS_DIR = REPO_ROOT / "results"
#: The wall time of each `make reproduce`, in a results folder (pipeline writes it, reporting.facts quotes it).
WALL_TIMES_CSV = "wall_times.csv"
FIGURES_DIR = REPO_ROOT / "figures"


def resolve(path: str | Path | None) -> Path | None:
    """An absolute path: relative paths are taken from the repository root; ~ is expanded."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def portable(path) -> str | None:
    """A path as committed results may show it: relative to the repository (the shared data read as
    ../shared/...), never an absolute path of the machine that made them. Anything that is not an
    absolute path (None, "phantom(seed=...)", a relative path) is returned as it is."""
    if path is None or not Path(str(path)).is_absolute():
        return path
    # The path as given first (a data folder reached through a symbolic link, say ../shared linked
    # elsewhere, keeps its short form), then resolved (the checkout itself reached through a link):
    # the shorter relative path wins, so no machine-specific folder leaks in.
    ways = [os.path.relpath(os.path.abspath(path), REPO_ROOT), os.path.relpath(Path(path).resolve(), REPO_ROOT)]
    return min(ways, key=lambda rel: (rel.count(".."), len(rel)))


def data_tag(data_dir) -> str:
    """The <data> part of output paths: "phantom" or the data folder's name."""
    return PHANTOM if is_phantom(data_dir) else Path(data_dir).name


def normalise_data_dir(data_dir) -> str | None:
    """None for the phantom, else an absolute path (relative paths from the repository root)."""
    if is_phantom(data_dir):
        return None
    return str(resolve(data_dir))


# ------------------------------------------------------------------------------------------------
# Where outputs go
# ------------------------------------------------------------------------------------------------

#: The folder of seed k's runs (k > 0) inside a folder of runs: seed<k>/.
SEED_PREFIX = "seed"


def seed_folder(runs_dir: str | Path, seed: int) -> Path:
    """The folder of one seed's runs: ``runs_dir`` itself for seed 0, ``runs_dir/seed<k>`` for seed k."""
    runs_dir = Path(runs_dir)
    return runs_dir if seed == 0 else runs_dir / f"{SEED_PREFIX}{seed}"


#: Where results and figures of a notebook run by hand go (under the output root) unless it opts in
#: to publishing them (``publish``): never over the committed results/ and figures/.
SCRATCH_DIR = "scratch"


@dataclass(frozen=True)
class Outputs:
    """The output folders of one (output root, profile, data). ``publish``: results and figures go
    to the root's results/ and figures/ (the pipeline, the command line); otherwise to scratch/
    (a notebook run by hand), so that committed files are never replaced by accident. Run folders
    are the same either way."""

    root: Path
    profile: str
    data: str  # data tag
    publish: bool = True

    @property
    def _published(self) -> Path:
        return self.root if self.publish else self.root / SCRATCH_DIR

    @property
    def runs(self) -> Path:
        return self.root / "runs" / self.profile / self.data

    def run(self, variant: str, seed: int = 0) -> Path:
        """A variant's run folder: runs/<profile>/<data>/<variant> for seed 0, .../seed<k>/<variant> else."""
        return seed_folder(self.runs, seed) / variant

    @property
    def results(self) -> Path:
        return self._published / "results"

    @property
    def executed(self) -> Path:
        return self.results / "executed" / f"{self.data}-{self.profile}"

    @property
    def figures(self) -> Path:
        base = self._published / "figures"
        return base if self.data == PHANTOM else base / self.data


def outputs(profile: str, data_dir=None, out_root=None, publish: bool = True) -> Outputs:
    """Where a pipeline of ``profile`` on ``data_dir`` writes, under ``out_root`` (default: the
    repository); with ``publish=False`` results and figures go to scratch/ (Outputs)."""
    root = resolve(out_root) if out_root else REPO_ROOT
    return Outputs(Path(root), profile, data_tag(data_dir), publish)


# ------------------------------------------------------------------------------------------------
# A run folder's files, its marker and its lock
# ------------------------------------------------------------------------------------------------

#: The file that marks a folder as a run folder of ours (written first when a run starts). Folders
#: without it are only taken for runs made before it existed: config.json naming a variant, and
#: split.csv and checkpoint.pt beside it.
MARKER = ".dae-run"
LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
SPLIT_FILE = "split.csv"
LOG_FILE = "log.csv"
CHECKPOINT = "checkpoint.pt"
BEST_WEIGHTS = "best.safetensors"
LAST_WEIGHTS = "last.safetensors"
TEST_METRICS = "test_metrics.csv"
PROVENANCE_FILE = "provenance.json"
#: The weights a run keeps, by name: the epoch with the lowest validation loss, and the last one.
WEIGHTS = {"best": BEST_WEIGHTS, "last": LAST_WEIGHTS}


def weights_file(run_dir: str | Path, which: str = "best") -> Path:
    """The file of a run's ``which`` weights ("best" or "last")."""
    if which not in WEIGHTS:
        raise ValueError(f"which weights: one of {tuple(WEIGHTS)}, not {which!r}")
    return Path(run_dir) / WEIGHTS[which]


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run of ours (the marker, or a run from before the marker)."""
    if (folder / MARKER).is_file():
        return True
    try:
        recorded = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and "variant" in recorded and (folder / SPLIT_FILE).is_file() and (folder / CHECKPOINT).is_file()


@contextmanager
def run_lock(out_dir: Path):
    """Hold an exclusive lock on the run folder: a second training into it is refused."""
    import fcntl  # POSIX only: imported here so that everything else works where it is missing

    out_dir.mkdir(parents=True, exist_ok=True)
    f = open(out_dir / LOCK_FILE, "a")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"{out_dir}: another training is writing to this run folder (locked); wait for it or choose another folder") from None
        yield
    finally:
        f.close()


def data_record(data) -> dict:
    """What ``data.json`` holds for the training data ``data`` (a ``data.PairedImages``)."""
    pol = data.polarity
    return {
        "image_size": int(data.size),
        "stored_polarity": pol.stored if pol else "clinical",
        "polarity": dataclasses.asdict(pol) if pol else None,
        "source": data.source,
        "n_cases": len(data),
    }


def start_run_folder(out_dir: Path, cfg: Config, data, split: dict[str, str], hashes) -> None:
    """Write the records of a run that starts: the marker first, then split.csv (``split`` with the
    files and their ``hashes``, data.file_hashes), config.json and data.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / MARKER, {"what": "a dae_lib run folder", "variant": cfg.variant})
    write_split_csv(out_dir / SPLIT_FILE, data.ids, split, data.files, hashes)
    write_json_atomic(out_dir / CONFIG_FILE, cfg.to_dict())
    write_json_atomic(out_dir / DATA_FILE, data_record(data))


# ------------------------------------------------------------------------------------------------
# Reading a run
# ------------------------------------------------------------------------------------------------


def config_from_run(run_dir: str | Path) -> Config:
    """The configuration a run was trained with (its config.json); a RunDirError naming the file
    when it is damaged (not JSON, another shape, unknown keys, values the Config refuses)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    return config_from_file(path)


def run_data(run_dir: str | Path) -> dict:
    """A run's ``data.json``: image_size, stored_polarity ("clinical" | "inverted"), polarity (how it
    was decided), source, n_cases."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: no {DATA_FILE} (a run from before it was recorded: see its {PROVENANCE_FILE})")
    return read_record(path)


def run_split_file(run_dir: str | Path) -> Path:
    """A run's split.csv; a RunDirError when it has none."""
    path = Path(run_dir) / SPLIT_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir}: no {SPLIT_FILE} (not a finished run folder)")
    return path


def run_split(run_dir: str | Path) -> dict[str, str]:
    """A run's split: {case ID: "train" | "val" | "test"}."""
    return read_split_csv(run_split_file(run_dir))


# ------------------------------------------------------------------------------------------------
# Finding runs
# ------------------------------------------------------------------------------------------------


def find_runs(runs_dir: str | Path) -> dict[str, Path]:
    """The run folders directly under ``runs_dir`` (those with a config.json), by variant, in the
    order of the variants table (models.variants)."""
    runs_dir = Path(runs_dir)
    found: dict[str, Path] = {}
    for d in sorted(p for p in runs_dir.iterdir() if (p / CONFIG_FILE).is_file()) if runs_dir.is_dir() else []:
        variant = json.loads((d / CONFIG_FILE).read_text()).get("variant")
        if variant in found:
            raise RunDirError(f"{d} and {found[variant]}: two runs of variant {variant} in one table; move one away")
        found[variant] = d
    order = list(variants())
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def finished_runs(runs_dir: str | Path) -> tuple[dict[str, Path], list[str]]:
    """({variant: run folder} of the runs with best weights, the variants still missing): missing
    are the four-way ablation members of each family present (the paper's when none is) that have
    no weights yet."""
    runs = find_runs(runs_dir)
    done = {v: d for v, d in runs.items() if (d / BEST_WEIGHTS).is_file()}
    families = dict.fromkeys(get_variant(v).family for v in runs) or {REPRODUCED: None}
    missing = [v for f in families for v in variants(f) if v not in done]
    return done, missing


def seed_folders(runs_dir: str | Path) -> dict[int, Path]:
    """The folders holding one seed's runs each: ``runs_dir`` itself (seed 0) and its seed<k>/."""
    runs_dir = Path(runs_dir)
    out = {0: runs_dir}
    for d in sorted(runs_dir.glob(f"{SEED_PREFIX}*")) if runs_dir.is_dir() else []:
        k = d.name[len(SEED_PREFIX) :]
        if d.is_dir() and k.isdigit():
            out[int(k)] = d
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------------------
# Weights files
# ------------------------------------------------------------------------------------------------

METADATA_KEY = "dae_lib.fingerprint"


def weights_metadata(cfg: Config) -> dict[str, str]:
    """What a weights file records about itself (safetensors metadata): config.fingerprint."""
    return {METADATA_KEY: json.dumps(fingerprint(cfg), sort_keys=True)}


def check_fingerprint(path: str | Path, cfg: Config) -> None:
    """A WeightsError when the weights at ``path`` record another architecture, loss or image size
    than ``cfg``, the config.json beside them (for example one edited from ae to ae_msssim). Files
    without the record (made before it, or elsewhere) are not checked, nor records on the fields
    added to the fingerprint after them (config.FINGERPRINT_ADDED_LATER) when they lack those."""
    with safe_open(str(path), framework="pt") as f:
        recorded = (f.metadata() or {}).get(METADATA_KEY)
    if recorded is None:
        return
    try:
        was = json.loads(recorded)
    except ValueError:
        was = None
    if not isinstance(was, dict):
        raise WeightsError(f"{path}: its recorded settings ({METADATA_KEY}) are damaged")
    now = fingerprint(cfg)
    checked = [k for k in now if k in was or k not in FINGERPRINT_ADDED_LATER]
    diff = [f"{k} {was.get(k)!r} ({CONFIG_FILE}: {now[k]!r})" for k in checked if json.dumps(was.get(k)) != json.dumps(now[k])]
    if diff:
        raise WeightsError(f"{path}: these weights were trained with other settings than {Path(path).parent / CONFIG_FILE} says: {'; '.join(diff)}")


def load_weights(model: torch.nn.Module, path: str | Path, what: str = "") -> torch.nn.Module:
    """Load safetensors weights into ``model``; a WeightsError, not a traceback, when the file is
    missing or damaged or holds weights of another architecture."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: cannot read weights ({e})") from None
    return load_state(model, state, path, what)


def load_state(model: torch.nn.Module, state: dict, source, what: str = "") -> torch.nn.Module:
    """Load a state dict read from ``source`` into ``model``; a WeightsError naming the keys when it
    holds weights of another architecture."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    resized = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or resized:
        detail = "; ".join(
            f"{name} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes", resized))
            if keys
        )
        raise WeightsError(f"{source}: these weights do not fit {what or type(model).__name__} ({detail}); trained for another architecture or variant?")
    model.load_state_dict(state)
    return model


def checkpoint_state(path: Path) -> dict:
    """The model weights in a torch file (a run's checkpoint.pt, or a plain state dict), read with
    ``weights_only=True``: a pickle that would run code is refused, one line, never run."""
    try:
        with warnings.catch_warnings():  # torch adds a warning of its own to a refusal: the one line says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses any pickle that would run code
        raise WeightsError(f"{path}: refused: not a plain weights file that loads with weights_only=True ({type(e).__name__})") from None
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: holds no model weights (a dict of tensors, or a checkpoint with one under 'model')")
    return state


# ------------------------------------------------------------------------------------------------
# Trained models: the one loader
# ------------------------------------------------------------------------------------------------

#: Released models live inside the package (so they install with it), one folder each, laid out as
#: a run folder plus model_card.md / model_card.json (studies/release.py).
RELEASED_DIR = Path(__file__).parent / "released"
#: The release the suppression command and ``load_released()`` use by default: the improved
#: variant with the best validation PSNR at the quick profile on BSE-JSRT (R-AE + MS-SSIM 43.75 dB,
#: R-DAE + MS-SSIM 43.70, R-DAE 43.42, R-AE 43.31; identity 37.95), trained at 512 px by release.py.
DEFAULT_RELEASE = "r_ae_msssim-bse-jsrt-512"


def released_folder(name: str = DEFAULT_RELEASE) -> Path:
    """The folder of a released model (``dae_lib/released/<name>/``); a WeightsError naming those
    there are when there is no such release."""
    folder = RELEASED_DIR / name
    if not folder.is_dir():
        raise WeightsError(f"no released model {name!r} in {RELEASED_DIR} (released: {released_names() or 'none'})")
    return folder


def released_names() -> list[str]:
    """The names of the released models (dae_lib/released/<name>/), for ``load_released`` and --weights."""
    return sorted(p.name for p in RELEASED_DIR.iterdir() if p.is_dir()) if RELEASED_DIR.is_dir() else []


@dataclass(frozen=True)
class TrainedModel:
    """A trained model (eval mode, float32), the Config of its run and the weights file it holds."""

    model: torch.nn.Module
    config: Config
    weights: Path

    @property
    def image_size(self) -> int:
        """The size the model works at (it was trained at): inputs are resized to it."""
        return self.config.image_size

    @property
    def description(self) -> str:
        """What was loaded, in words: "<variant> from <weights file>" (relative to the repository
        where it lies inside it)."""
        return f"{self.config.variant} from {portable(self.weights)}"


def _locate(weights, which: str) -> tuple[Path, Path]:
    """(run folder, weights file) for ``load_trained``'s ``weights``."""
    if weights is None:
        folder = released_folder()
        return folder, weights_file(folder, "best")
    p = Path(weights)
    if not p.exists() and p.name == str(weights) and (RELEASED_DIR / p.name).is_dir():  # a released model's name
        folder = released_folder(p.name)
        return folder, weights_file(folder, "best")
    if not p.exists():
        raise WeightsError(f"{p}: no such weights file, run folder or released model (released: {', '.join(released_names()) or 'none'})")
    return (p, weights_file(p, which)) if p.is_dir() else (p.parent, p)


def load_trained(weights: str | Path | None = None, device="cpu", which: str = "best", fastest_layout: bool = False) -> TrainedModel:
    """The one way to a trained model, in eval mode on ``device``, float32.

    ``weights``: a run folder (its ``which`` weights: "best" or "last"), a weights file in one (a
    .safetensors file, or a torch file such as checkpoint.pt, read with ``weights_only=True``), a
    released model's name (``released_names``; a path of that name comes first), or None for the
    default release (DEFAULT_RELEASE). The architecture comes from the config.json
    beside the weights; safetensors weights that record other settings than it are refused
    (``check_fingerprint``). Every problem is a WeightsError or RunDirError of one line.
    ``fastest_layout``: the weights in the memory layout that device.fastest gives this device's
    inputs (channels-last: 1.8x on a CPU; the suppression command's); otherwise as built.
    """
    folder, file = _locate(weights, which)
    cfg = config_from_run(folder)
    model = build_model(cfg)
    if file.suffix in (".pt", ".pth"):
        load_state(model, checkpoint_state(file), file, what=f"variant {cfg.variant}")
    else:
        load_weights(model, file, what=f"variant {cfg.variant}")
        check_fingerprint(file, cfg)
    model = model.to(device).eval()
    if fastest_layout and fastest(torch.device(device))["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    return TrainedModel(model, cfg, file)


def load_model(run_dir: str | Path, which: str = "best", device="cpu") -> torch.nn.Module:
    """The trained model of a run folder, in eval mode on ``device`` (``which``: best or last)."""
    return load_trained(run_dir, device, which).model


def load_released(name: str = DEFAULT_RELEASE, device="cpu") -> torch.nn.Module:
    """A released model (``dae_lib/released/<name>/``, its model card beside the weights), eval mode."""
    return load_trained(released_folder(name), device).model


# ------------------------------------------------------------------------------------------------
# What a run or a number records: provenance
# ------------------------------------------------------------------------------------------------

#: Folders of outputs: the pipeline itself rewrites them, so their changes do not make code dirty.
OUTPUT_DIRS = ("results/", "figures/", "runs/")


def _own_checkout() -> bool:
    """Whether the repository root is the top of a git checkout (not a copy of the package lying
    inside some other repository, whose commit would say nothing about this code)."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return False
    return top.returncode == 0 and Path(top.stdout.strip()).resolve() == REPO_ROOT.resolve()


def dirty_files() -> list[str]:
    """Tracked files outside the output folders with uncommitted changes (what "-dirty" means)."""
    if not _own_checkout():
        return []
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout
    except OSError:
        return []
    files = [line[3:] for line in out.splitlines() if line.strip()]
    return [f for f in files if not f.startswith(OUTPUT_DIRS)]


def git_commit() -> str:
    """The checked-out commit, with "-dirty" when tracked files have uncommitted changes; "unknown"
    when the code is not in its own git checkout."""
    if not _own_checkout():
        return "unknown"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty_files() else "")


#: The environment variable that lets a development tree with uncommitted changes write the
#: repository's own results/ and figures/ anyway (``check_publishable``): for development only; what
#: it writes says "+ local changes", and the test of the committed outputs fails on it.
ALLOW_DIRTY_ENV = "DAE_PUBLISH_DIRTY"


def check_publishable(root) -> None:
    """Refuse (PublishError) to write the repository's own, committed results/ and figures/ from a
    tree whose tracked files have uncommitted changes (``dirty_files``): every committed output must
    name the one commit that made it. Another output root (a test's, a user's) is never refused, nor
    a copy of the package outside its git checkout; ALLOW_DIRTY_ENV=1 overrides for development."""
    if Path(root).resolve() != REPO_ROOT.resolve() or os.environ.get(ALLOW_DIRTY_ENV) == "1":
        return
    dirty = dirty_files()
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise PublishError(
            f"{portable(root) or '.'}: not writing the committed results/ and figures/ from a tree with uncommitted changes "
            f"to tracked files ({shown}): commit them first, so that every output names the commit that made it "
            f"(or write elsewhere: --out-root DIR, publish = False; for development only, {ALLOW_DIRTY_ENV}=1 writes "
            f"anyway and the outputs say \"+ local changes\")"
        )


def footer_line(data: str, profile: str | None, seeds=None, commit: str | None = None) -> str:
    """The provenance line every saved figure carries: the data, the profile, the training seeds of
    the runs it shows (a seed, a list, or None for a figure of the data alone) and the commit (by
    default the checked-out one; a committed result's own otherwise)."""
    if seeds is None:
        trained = "no training"
    else:
        seeds = sorted({seeds} if isinstance(seeds, int) else set(seeds))
        trained = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"
    commit = commit or git_commit()
    short = "unknown" if commit == "unknown" else commit[:7] + (" + local changes" if commit.endswith("-dirty") else "")
    parts = [f"data {data}", *([f"profile {profile}"] if profile else []), trained, f"commit {short}"]
    return " | ".join(parts)


def sha256_file(path) -> str:
    """The sha256 of a file's bytes (data files, weights, split records)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def machine() -> str:
    """This machine in a few words: name, architecture, CPU count."""
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus"


def record(**fields) -> dict:
    """A provenance record: the given fields plus commit, torch version, machine and UTC time."""
    return {
        **fields,
        "commit": git_commit(),
        "uncommitted": dirty_files(),
        "torch": torch.__version__,
        "machine": machine(),
        "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
