"""Bone suppression of your own radiographs: files or folders in, soft-tissue images out.

    python -m dae_lib suppress INPUT... --out DIR [--weights RUN_OR_FILE] [--polarity auto]
                               [--bone DIR] [--overwrite] [--allow-out-in-input] [--device auto]
    dae-suppress INPUT... --out DIR                    (the same, as an installed command)

INPUT: files or folders (recursed; hidden files skipped) of PNG, JPEG, TIFF and DICOM
(radiograph.py says how each is read, and what is refused). Each input gives one output in --out
at the same relative path: a PNG for an image (same size, bit depth, value range and polarity;
a signed 16-bit TIFF gives a signed 16-bit TIFF), for a DICOM a derived DICOM plus a PNG preview.
``--bone DIR`` also writes the removed bone component (a PNG, bone bright, on the input's scale).
Images with an EXIF orientation are read upright, as viewers show them, and written upright.

Output names (``output_names``): the input's relative path with its image suffix replaced
(``a.png`` -> ``a.png``, ``b.tif`` -> ``b.png``, ``c.dcm`` -> ``c.dcm`` + ``c.png``); a name whose
suffix is not an image suffix is kept whole (DICOM ``IMG.001`` -> ``IMG.001.dcm``,
``1.2.840.1.5`` -> ``1.2.840.1.5.dcm``). Inputs that would still share a name (``a.png`` and
``a.tif``; ``a.dcm`` and ``a.png``; names differing only in case) each keep their whole name
(``a.png.png``, ``a.tif.png``); any that still collide get ``~2``, ``~3`` in the sorted order of
their paths. Every name is reserved for one input before anything is written.

Weights: by default the released improved model (runs.DEFAULT_RELEASE, 512 px). ``--weights``
takes any run folder, its best.safetensors / last.safetensors, or its checkpoint.pt (read with
``weights_only=True``: a pickle carrying code is refused), the reproduced four included.

The model works at its training size; the bone it finds there is applied at the input's full
resolution (inference.suppress_full). Polarity: ``auto`` reads DICOM headers and uses an
anatomical rule for other images, which may answer "unsure": that file is then refused with a
hint to pass ``--polarity`` (radiograph.polarity_of); ``clinical`` / ``inverted`` set it. The
polarity decided for each file and its evidence are printed and written to the report.

Safety: an input is never overwritten; --out may not be an input folder or inside one (unless
--allow-out-in-input, and even then no input is replaced), nor the --bone folder; a file that
exists where an output would go is never replaced without --overwrite (an input whose outputs all
exist is skipped, one whose outputs partly exist is refused), also when it appears while the
command runs; a subfolder of --out that is a symbolic link leading out of it is not written
through; every file is written under a temporary name and put in place when complete, and an
input whose later output fails loses the earlier ones it made. Each input is isolated: any error
reading, running or writing it is its one line, and the batch goes on (a full or read-only disk
stops it, the rest listed as not tried). The summary always prints; a report CSV
(``suppress-report-<time>.csv`` in --out: input, status, polarity, evidence, outputs, message)
is written; the exit status is 0 only when every input was done (or its outputs existed), 2 when
any failed, 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import csv
import errno
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm  # a text bar: a notebook widget would be stored as residue

from .atomic import atomic_path
from .config import AMP_MODES, DEFAULT_PROFILE, POLARITIES, check_choice, default, load_config
from .data import PairedImages, find_pairs, load_data, load_phantom
from .device import pick_device
from .errors import DataError, InputError, RunDirError, run_guarded, shown
from .inference import suppress_full
from .phantom import chest_phantom
from .radiograph import (
    DICOM_SUFFIXES, IMAGE_SUFFIXES, Radiograph, clinical_pixels, invert, is_candidate, output_suffix_of, read_radiograph, write_dicom,
    write_png, write_signed_tiff,
)
from .runs import DEFAULT_RELEASE, TrainedModel, load_trained, released_folder, released_names, run_split
from .device import report_seconds, shown_seconds, since

PREVIEW_SUFFIX = ".png"
#: Every suffix an output file may have (soft tissue .png / .dcm / .tif, preview and bone .png).
OUTPUT_SUFFIXES = (".png", ".dcm", ".tif")
REPORT_PREFIX = "suppress-report"
REPORT_COLUMNS = ("input", "status", "polarity", "evidence", "size", "bits", "seconds", "outputs", "message")
#: Write errors after which no other input can be written either: the batch stops there.
FATAL_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@dataclass(frozen=True)
class Settings:
    """How one command reads and writes its files (the command line's --polarity, --amp,
    --overwrite and --allow-out-in-input)."""
    polarity: str = "auto"  # how the inputs are stored: auto | clinical | inverted
    amp: str = "auto"  # bf16 autocast where supported, or "off"
    overwrite: bool = False  # replace outputs that exist (inputs never)
    allow_out_in_input: bool = False  # --out may lie inside an input folder (it is then not scanned)

    def check(self) -> None:
        check_choice("polarity", self.polarity, POLARITIES)
        check_choice("amp", self.amp, AMP_MODES)


@dataclass(frozen=True)
class Destination:
    """Where the outputs go: the soft-tissue folder, and the bone folder when asked for."""
    out: Path
    bone: Path | None = None


@dataclass
class Job:
    """One input file: where it is, the output name reserved for it, and what became of it."""
    source: Path
    rel: Path  # its path relative to the folder it was found in (or its name)
    name: str = ""  # the output name, relative, without suffix (output_names)
    suffix: str = ".png"  # of the soft-tissue output: .png, .dcm (DICOM) or .tif (signed TIFF); see output_suffix
    status: str = "pending"  # "done" | "kept" | "failed" | "not tried"
    message: str = ""
    polarity: str = ""
    evidence: str = ""
    size: str = ""  # "width x height" of the input, px
    bits: int | None = None  # its bit depth as read (8 or 16)
    seconds: float | None = None  # reading, suppressing and writing it
    written: list[Path] = field(default_factory=list)

    def outputs(self, out: Path, bone: Path | None) -> list[Path]:
        """The files this input gives: soft tissue, a PNG preview for a DICOM, the bone."""
        files = [out / (self.name + self.suffix)] + ([out / (self.name + PREVIEW_SUFFIX)] if self.suffix == ".dcm" else [])
        return files + ([bone / (self.name + ".png")] if bone is not None else [])

    def fail(self, message: str) -> None:
        self.status, self.message = "failed", message


@dataclass
class Report:
    jobs: list[Job] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # inputs that do not exist: "path: reason"
    interrupted: bool = False
    path: Path | None = None  # the report CSV, once written

    def of(self, status: str) -> list[str]:
        return [str(j.source) for j in self.jobs if j.status == status]

    @property
    def done(self) -> list[str]:
        return self.of("done")

    @property
    def kept(self) -> list[str]:
        return self.of("kept")

    @property
    def failed(self) -> list[str]:
        """One line per input that failed or does not exist: "file: reason"."""
        return self.missing + [j.message for j in self.jobs if j.status == "failed"]

    @property
    def ok(self) -> bool:
        """Every input done (or its outputs there already), none missing, not interrupted."""
        return not self.interrupted and not self.missing and all(j.status in ("done", "kept") for j in self.jobs)

    def summary(self) -> str:
        """One line: how many done, skipped (outputs exist), failed, not tried."""
        kept = f"skipped {len(self.kept)} whose outputs exist (--overwrite replaces them)" if self.kept else "skipped 0"
        untried = len(self.of("not tried"))
        return f"done {len(self.done)}, {kept}, failed {len(self.failed)}" + (f", not tried {untried}" if untried else "")


def output_name(rel: Path) -> str:
    """The output name of an input at ``rel``: its image suffix dropped, any other suffix kept."""
    return str(rel.with_suffix("")) if rel.suffix.lower() in IMAGE_SUFFIXES + DICOM_SUFFIXES else str(rel)


def output_names(jobs: list[Job]) -> None:
    """Reserve a distinct output name for each job (the rule in the module docstring), compared
    without case so that outputs stay distinct on case-insensitive file systems too."""

    def groups(names):
        by = {}
        for job, name in zip(jobs, names):
            by.setdefault(name.casefold(), []).append(job)
        return by

    names = [output_name(j.rel) for j in jobs]
    clash = {id(j) for group in groups(names).values() if len(group) > 1 for j in group}
    names = [str(j.rel) if id(j) in clash else n for j, n in zip(jobs, names)]
    # The folders other outputs go into (x.png/ for an input x.png/y.png) are taken too: a file
    # x.png (from x.tif) cannot be written where that folder must be.
    folders = {str(parent).casefold() for j in jobs for parent in j.rel.parents if str(parent) != "."}
    clashes = lambda name: name.casefold() in taken or any((name + sfx).casefold() in folders for sfx in OUTPUT_SUFFIXES)  # noqa: E731
    taken: set[str] = set()
    for job, name in sorted(zip(jobs, names), key=lambda jn: str(jn[0].source)):
        final, k = name, 1
        while clashes(final):
            k += 1
            final = f"{name}~{k}"
        taken.add(final.casefold())
        job.name = final


def find_inputs(inputs, out: Path, skip: tuple[Path, ...] = ()) -> tuple[list[Job], list[str]]:
    """The files to process, with their relative paths, and one line for each input that gives
    none (missing, not a regular file, a folder without a usable file). Folders are recursed;
    hidden files and folders are skipped, and so are the output folders when they lie inside an
    input folder, and the outputs an earlier run listed in its report there (--allow-out-in-input
    with --out the input folder: a rerun does not take them for inputs). A file given twice (by
    two spellings, or alone and in its folder) is taken once, first come."""
    jobs, missing, seen = [], [], set()
    outs = tuple(q.resolve() for q in (out, *skip))
    earlier = earlier_outputs(out)

    def add(f: Path, rel: Path) -> bool:
        r = f.resolve()
        if r in seen or r in earlier:
            return False
        seen.add(r)
        jobs.append(Job(f, rel))
        return True

    for item in inputs:
        p = Path(item)
        if p.is_dir():
            root = p.resolve()
            inner = [o for o in outs if o != root and root in o.parents]  # output folders inside this input folder
            found = 0
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if any(part.startswith(".") for part in rel.parts) or not f.is_file() or not is_candidate(f):
                    continue
                r = f.resolve()
                if any(o == r or o in r.parents for o in inner):
                    continue
                found += add(f, rel)
            if not found and not any(r.is_relative_to(root) for r in seen):  # all taken already via another input: not empty
                missing.append(f"{p}: no PNG, JPEG, TIFF or DICOM file in this folder")
        elif p.is_file():
            add(p, Path(p.name))
        elif p.is_symlink() and not p.exists():
            missing.append(f"{p}: a broken symbolic link")
        elif p.exists():
            missing.append(f"{p}: not a regular file or folder")
        else:
            missing.append(f"{p}: no such file or folder")
    return jobs, missing


def earlier_outputs(out: Path) -> set[Path]:
    """The outputs that earlier runs into ``out`` listed in their reports (resolved paths)."""
    found = set()
    for report in sorted(out.glob(f"{REPORT_PREFIX}-*.csv")) if out.is_dir() else ():
        try:
            with open(report, newline="", encoding="utf-8", errors="surrogateescape") as f:
                for row in csv.DictReader(f):
                    found.update(Path(x).resolve() for x in (row.get("outputs") or "").split(";") if x)
        except (OSError, csv.Error, ValueError):
            continue  # not a report of ours after all: it protects nothing
    return found


def check_out_folder(inputs, out: Path, allow_inside: bool, what: str = "--out", escape: str | None = "--allow-out-in-input") -> None:
    """Refuse an output folder that is an input folder or lies inside one (unless allowed; the
    message names the ``escape`` flag where the command has one), and one that is an existing file."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: {what} names an existing file, not a folder")
    o = out.resolve()
    for item in inputs:
        p = Path(item).resolve()
        if p.is_dir() and (o == p or p in o.parents) and not allow_inside:
            raise RunDirError(f"{out}: the {what} folder is (inside) the input folder {item}; choose another" + (f", or pass {escape}" if escape else ""))


def check_writable(folder: Path, flag: str) -> None:
    """Make ``folder`` (and its parents) and check a file can be written there, before any input
    is read: a RunDirError naming it otherwise (a file in its path, a read-only disk, no permission)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RunDirError(f"{folder}: {flag} cannot be written ({e.strerror or e})") from None


def reserve_outputs(jobs: list[Job], out: Path, bone: Path | None) -> None:
    """Before anything is written: fail each job whose output would replace an input, share a path
    with another job's output (say --bone inside --out), or go through a symbolic link out of its
    folder. The kind of each input (so its output suffix) is read from its header here."""
    protected = {j.source.resolve() for j in jobs}
    owner: dict[Path, Job] = {}
    for job in jobs:
        job.suffix = output_suffix_of(job.source)
        paths = [(out if k < 1 + (job.suffix == ".dcm") else bone, Path(os.path.abspath(p))) for k, p in enumerate(job.outputs(out, bone))]
        problem = None
        for root, p in paths:
            if p.resolve() in protected:
                problem = f"its output {p} would replace an input; skipped"
            elif p in owner and owner[p] is not job:
                problem = f"its output {p} is also the output of {owner[p].source}; skipped"
            elif root.resolve() not in p.parent.resolve().parents and root.resolve() != p.parent.resolve():
                problem = f"its output folder {p.parent} leads out of {root} (a symbolic link); skipped"
            elif os.path.lexists(p) and not p.is_file():
                what = "a broken symbolic link" if p.is_symlink() and not p.exists() else "a folder" if p.is_dir() else "not a regular file"
                problem = f"{p}, where its output goes, is {what}; skipped (remove it, or choose another --out)"
            if problem:
                break
        if problem:
            job.fail(f"{job.source}: {problem}")
            continue
        for _, p in paths:
            owner[p] = job


def load_suppression_model(weights: str | None, device) -> TrainedModel:
    """The model for --weights (None: the release), in eval mode, from the one loader
    (runs.load_trained), its weights in the layout the inputs get on ``device``
    (inference.predict: channels-last, 1.8x on a CPU)."""
    return load_trained(weights, device, fastest_layout=True)


@dataclass
class Suppressed:
    """One radiograph suppressed: clinical-polarity float32 arrays in [0, 1] at the input's resolution."""
    x: np.ndarray  # the radiograph
    s: np.ndarray  # soft tissue
    b: np.ndarray  # removed bone, x - s
    polarity: str  # how the file stores it: "clinical" | "inverted"
    polarity_rule: str  # the evidence that decided it


def suppress_radiograph(trained: TrainedModel, r: Radiograph, polarity: str = "auto", amp: str = "auto", in_place: bool = False) -> Suppressed:
    """Suppress the bones of one read radiograph at its full resolution, with a model of
    ``load_suppression_model``. ``in_place``: turn ``r.pixels`` itself to clinical polarity rather
    than a copy (the command does, to hold one full-size image less in memory)."""
    px, stored, how = clinical_pixels(r, polarity, in_place)
    x = torch.from_numpy(px)
    s, b = suppress_full(trained.model, x[None, None], trained.image_size, amp)
    return Suppressed(px, s[0, 0].numpy(), b[0, 0].numpy(), stored, how)


def _rollback(job: Job) -> None:
    """Remove the outputs this input made in this run (its later output failed)."""
    for p in job.written:
        p.unlink(missing_ok=True)
    job.written = []


def suppress_one(trained: TrainedModel, job: Job, where: Destination, settings: Settings) -> str:
    """Suppress one file into its outputs; sets and returns the job's status ("done" or "kept").
    InputError for a bad input (nothing written), OSError when writing fails (its outputs of this
    run removed)."""
    t0 = time.perf_counter()
    r = read_radiograph(job.source)
    job.size, job.bits = f"{r.pixels.shape[1]} x {r.pixels.shape[0]}", r.bits
    if r.output_suffix != job.suffix:  # the file changed since its name was reserved
        raise DataError(f"{job.source}: changed while the command ran (now gives a {r.output_suffix} output, not {job.suffix}); skipped")
    targets = job.outputs(where.out, where.bone)
    there = [t for t in targets if os.path.lexists(t)]
    odd = [t for t in there if not t.is_file()]
    if odd:
        raise RunDirError(f"{job.source}: {odd[0]}, where its output goes, is not a regular file; nothing written for it")
    if there and not settings.overwrite:
        if len(there) == len(targets):
            job.status = "kept"
            return job.status
        raise RunDirError(f"{job.source}: {', '.join(map(str, there))} exist(s) already and would be replaced (--overwrite replaces them); nothing written for it")
    res = suppress_radiograph(trained, r, settings.polarity, settings.amp, in_place=True)
    job.polarity, job.evidence = res.polarity, res.polarity_rule + (f"; {r.oriented}" if r.oriented else "")
    r.pixels = res.x = None  # the command needs only S and B from here on: one full-size image less
    b = np.clip(res.b, 0, 1, out=res.b) if where.bone is not None else None
    s = res.s
    replace = settings.overwrite
    try:
        if r.kind == "dicom":
            job.written.append(write_png(targets[1], s, 8, replace=replace))  # preview as displayed: clinical polarity
        stored = invert(s, out=s) if res.polarity == "inverted" else s
        if r.kind == "dicom":
            job.written.insert(0, write_dicom(targets[0], r, stored, f"Bone suppressed by dae_lib ({trained.description})", replace=replace))
        elif r.is_signed:
            job.written.append(write_signed_tiff(targets[0], stored, r.scale, replace=replace))
        else:
            job.written.append(write_png(targets[0], stored, r.bits, r.png_scale, replace=replace))
        if b is not None:
            job.written.append(write_png(targets[-1], b, r.bits, r.png_scale, replace=replace))
    except BaseException:
        _rollback(job)
        raise
    job.status, job.seconds = "done", report_seconds(since(t0))
    return job.status


def example_radiograph(data_dir=None, index: int = 0):
    """A radiograph to try the released model on (notebook 06): with a BSE-JSRT folder, a test
    case of the released model's own split (never one it trained on), else a phantom case."""
    if data_dir:
        test = [c for c, part in run_split(released_folder()).items() if part == "test"]
        pairs = {p.case_id: p for p in find_pairs(data_dir)}
        have = [c for c in sorted(test) if c in pairs]
        if have:
            return read_radiograph(pairs[have[index % len(have)]].x_path)
    x = chest_phantom(512, seed=index)[0].numpy().astype(np.float32)
    return Radiograph(Path(f"phantom-{index}"), x, "image", 8, (0.0, 255.0))


def example_pairs(size: int, data_dir=None, n: int = 4) -> PairedImages:
    """Pairs with their soft tissue to score the released model on (notebook 06's exercises), at
    ``size`` px: with a BSE-JSRT folder, up to ``n`` test cases of the released model's own split
    (never one it trained on), else ``n`` phantom cases."""
    if data_dir:
        test = {c for c, part in run_split(released_folder()).items() if part == "test"}
        data = load_data(load_config(DEFAULT_PROFILE, data_dir=str(data_dir), image_size=size))
        have = [i for i, c in enumerate(data.ids) if c in test][:n]
        if have:
            return data.subset(have)
    return load_phantom(n, size, default("phantom_seed"))


def _file_error(job: Job, e: BaseException) -> str:
    """One line for an error while processing ``job`` that is not an InputError."""
    if isinstance(e, FileExistsError):
        return f"{job.source}: its output {e.filename} appeared meanwhile and was not replaced (--overwrite replaces it); nothing written for it"
    if isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        return f"{job.source}: cannot write{where} ({e.strerror or e}); nothing written for it"
    if isinstance(e, MemoryError):
        return f"{job.source}: not enough memory to process it"
    return f"{job.source}: unexpected error ({type(e).__name__}: {e}); a bug: please report it (DAE_TRACEBACK=1 shows where)"


def process(report: Report, trained: TrainedModel, where: Destination, settings: Settings, progress: bool = True, log=print) -> None:
    """Each of the report's jobs in turn, isolated: its errors are its line (Job.message), the batch
    goes on; a full or read-only disk, or Ctrl-C, stops it (the rest "not tried")."""
    jobs = report.jobs
    todo = [j for j in jobs if j.status == "pending"]
    bar = tqdm(todo, desc="suppress", unit="image", disable=not progress or len(todo) < 2)
    say = bar.write if not bar.disable else log
    stop = None
    for job in bar:
        if stop:
            job.status, job.message = "not tried", f"{job.source}: not tried ({stop})"
            continue
        try:
            suppress_one(trained, job, where, settings)
        except InputError as e:
            job.fail(str(e))
        except KeyboardInterrupt:
            job.status, job.message = "not tried", f"{job.source}: not tried (interrupted)"
            report.interrupted, stop = True, "interrupted"
        except Exception as e:
            if os.environ.get("DAE_TRACEBACK") and not isinstance(e, OSError):
                raise
            job.fail(_file_error(job, e))
            if isinstance(e, OSError) and e.errno in FATAL_WRITE_ERRNOS:
                stop = f"stopped after {job.source}: {e.strerror}"
        if job.status == "done":
            say(shown(f"{job.source}: {job.size} px, {job.bits}-bit, stored {job.polarity} ({job.evidence}), {shown_seconds(job.seconds)} -> {', '.join(map(str, job.written))}"))
    bar.close()


def write_report(report: Report, out: Path) -> Path | None:
    """The report CSV in ``out`` under a name of its own (never replacing a file); None when
    nothing was tried or it cannot be written (said in the summary instead)."""
    if not report.jobs:
        return None
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(REPORT_COLUMNS)
    for line in report.missing:  # inputs that gave no file: "path: reason"
        w.writerow([line.rsplit(": ", 1)[0], "failed", "", "", "", "", "", "", line])
    for j in report.jobs:
        w.writerow([j.source, j.status, j.polarity, j.evidence, j.size, j.bits or "", "" if j.seconds is None else j.seconds, ";".join(map(str, j.written)), j.message])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 100):
        path = out / f"{REPORT_PREFIX}-{stamp}{'' if k == 1 else f'-{k}'}.csv"
        try:
            with atomic_path(path, replace=False) as tmp:  # file names as the file system has them, even not UTF-8
                tmp.write_text(buf.getvalue(), encoding="utf-8", errors="surrogateescape")
            return path
        except FileExistsError:
            continue
    return None


def suppress_inputs(inputs, out, weights=None, bone=None, device="auto", settings: Settings = Settings(), progress=True, log=print) -> Report:
    """Process ``inputs`` into ``out`` (and the bone images into ``bone``); the report of what was
    done, kept, failed and not tried. An unusable setting (output folders, weights, no input at
    all) raises an InputError before anything is written."""
    settings.check()
    if not str(out).strip():
        raise RunDirError("--out is empty: name a folder")
    out, bone = Path(out), (Path(bone) if bone else None)
    check_out_folder(inputs, out, settings.allow_out_in_input)
    if bone is not None:
        check_out_folder(inputs, bone, settings.allow_out_in_input, "--bone")
        if bone.resolve() == out.resolve():
            raise RunDirError(f"{bone}: --bone is the --out folder; the bone images would replace the soft-tissue ones: choose another folder")
    jobs, missing = find_inputs(inputs, out, (bone,) if bone is not None else ())
    if not jobs:
        why = "; ".join(missing) if missing else f"no PNG, JPEG, TIFF or DICOM file in {', '.join(map(str, inputs))}"
        raise DataError(f"nothing to suppress: {why}")
    trained = load_suppression_model(weights, pick_device(device))
    for folder, flag in ((out, "--out"), (bone, "--bone")):
        if folder is not None:
            check_writable(folder, flag)
    report = Report(jobs=jobs, missing=list(missing))
    output_names(jobs)
    reserve_outputs(jobs, out, bone)
    log(shown(f"{len(jobs)} radiograph(s) -> {out} with {trained.description}"))
    try:
        process(report, trained, Destination(out, bone), settings, progress, log)
    finally:
        try:
            report.path = write_report(report, out)
        except (OSError, UnicodeError):
            report.path = None
    return report


def build_parser(prog: str = "dae-suppress") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Bone suppression of chest radiographs (PNG, JPEG, TIFF, DICOM).",
                                epilog=_NAMES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(p)
    return p


_NAMES_HELP = """output names: the input's path relative to the folder given, its image suffix replaced
(a.png -> a.png, b.tif -> b.png, c.dcm -> c.dcm + preview c.png); other suffixes are kept
(IMG.001 -> IMG.001.dcm). Inputs that would share a name (a.png and a.tif, a.dcm and a.png)
keep their whole name (a.png.png, a.tif.png); any still colliding get ~2, ~3 in sorted order.
JPEG/TIFF orientation tags are applied on reading: outputs are written upright, without one.
A report CSV (suppress-report-<time>.csv in --out) lists each input's status, the polarity
decided and its evidence. Exit status: 0 all done, 2 any input failed, 130 interrupted."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="radiograph files or folders (recursed)")
    p.add_argument("--out", required=True, help="output folder (same relative paths as the inputs)")
    p.add_argument("--weights", default=None, help=f"a run folder, its best.safetensors or checkpoint.pt, or a released model's name ({', '.join(released_names())}; default {DEFAULT_RELEASE})")
    p.add_argument("--polarity", choices=POLARITIES, default="auto", help="how the inputs are stored (default: auto; auto refuses a file it is unsure of)")
    p.add_argument("--bone", default=None, metavar="DIR", help="also write the removed bone component here (not the --out folder)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=AMP_MODES, default="auto", help="bf16 autocast where supported (auto) or float32 (off)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (inputs are never replaced)")
    p.add_argument("--allow-out-in-input", action="store_true", help="allow --out inside an input folder (it is then not scanned)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd(args) -> int:
    t0 = time.perf_counter()
    settings = Settings(args.polarity, args.amp, args.overwrite, args.allow_out_in_input)
    report = suppress_inputs(args.inputs, args.out, args.weights, args.bone, args.device, settings, progress=not args.quiet)
    for line in report.failed:
        print(shown(f"error: {line}"), file=sys.stderr)
    where = f"; report {report.path}" if report.path else ("; the report could not be written" if report.jobs else "")
    print(shown(report.summary() + f" in {shown_seconds(since(t0))} -> {args.out}{where}"))
    if report.interrupted:
        print("interrupted: the inputs not tried are listed in the report; run the same command again to do them", file=sys.stderr)
        return 130
    return 0 if report.ok else 2


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(cmd, args)


if __name__ == "__main__":
    sys.exit(main())
