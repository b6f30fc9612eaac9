"""Bone suppression of your own radiographs: files or folders in, soft-tissue images out.

    python -m dae_lib suppress INPUT... --out DIR [--weights RUN_OR_FILE] [--polarity auto]
                               [--bone DIR] [--overwrite] [--allow-out-in-input] [--device auto]
    dae-suppress INPUT... --out DIR                    (the same, as an installed command)

INPUT: files or folders (recursed; hidden files skipped) of PNG, JPEG, TIFF and DICOM
(radiograph.py says how each is read, and what is refused). Each input gives one output in --out
at the same relative path: a PNG for an image (same size, bit depth, value range and polarity),
for a DICOM a derived DICOM plus a PNG preview. ``--bone DIR`` also writes the removed bone
component (a PNG, bone bright, on the input's scale).

Weights: by default the released improved model (inference.DEFAULT_RELEASE, 512 px). ``--weights``
takes any run folder, its best.safetensors / last.safetensors, or its checkpoint.pt (read with
``weights_only=True``: a pickle carrying code is refused), the reproduced four included.

The model works at its training size; the bone it finds there is applied at the input's full
resolution (inference.suppress_full). Polarity: ``auto`` reads DICOM headers and uses an
anatomical rule for other images (radiograph.polarity_of); ``clinical`` / ``inverted`` set it.

Safety: an input is never overwritten; --out may not be an input folder or inside one (unless
--allow-out-in-input, and even then no input is replaced); existing outputs are kept unless
--overwrite; every file is written under a temporary name and renamed. A bad input is reported in
one line naming it and skipped; the others go on; the exit status is 2 when any input failed.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import AMP_MODES, POLARITIES, check_choice
from .errors import InputError, RunDirError, WeightsError
from .radiograph import is_candidate, polarity_of, read_radiograph, write_dicom, write_png

PREVIEW_SUFFIX = ".png"


@dataclass
class Job:
    source: Path
    rel: Path  # relative output path, without suffix

    def outputs(self, out: Path, bone: Path | None, dicom: bool) -> list[Path]:
        main = out / self.rel.with_suffix(".dcm" if dicom else ".png")
        files = [main] + ([out / self.rel.with_suffix(PREVIEW_SUFFIX)] if dicom else [])
        return files + ([bone / self.rel.with_suffix(".png")] if bone else [])


@dataclass
class Report:
    done: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # outputs that existed: not an error
    failed: list[str] = field(default_factory=list)  # bad inputs: "file: reason"

    def summary(self) -> str:
        """One line: how many done, skipped (outputs exist) and failed (each failure is its own line)."""
        kept = f"skipped {len(self.kept)} whose outputs exist (--overwrite replaces them)" if self.kept else "skipped 0"
        return f"done {len(self.done)}, {kept}, failed {len(self.failed)}"


def find_inputs(inputs, out: Path) -> tuple[list[Job], list[str]]:
    """The files to process, with their relative output paths, and the inputs that do not exist.
    Folders are recursed (the output folder itself never is); relative paths are kept."""
    jobs, missing = [], []
    out = out.resolve()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            skip = out if out != p.resolve() else None  # an output folder inside the input is not scanned
            for f in sorted(p.rglob("*")):
                if f.is_file() and is_candidate(f) and (skip is None or skip not in f.resolve().parents):
                    rel = f.relative_to(p)
                    if not any(part.startswith(".") for part in rel.parts):
                        jobs.append(Job(f, rel))
        elif p.is_file():
            jobs.append(Job(p, Path(p.name)))
        else:
            missing.append(f"{p}: no such file or folder")
    return jobs, missing


def check_out_folder(inputs, out: Path, allow_inside: bool) -> None:
    """Refuse an output folder that is an input folder or lies inside one (unless allowed), and
    one that is an existing file."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: --out names an existing file, not a folder")
    o = out.resolve()
    for item in inputs:
        p = Path(item).resolve()
        if p.is_dir() and (o == p or p in o.parents) and not allow_inside:
            raise RunDirError(f"{out}: the output folder is (inside) the input folder {item}; choose another, or pass --allow-out-in-input")


def load_suppression_model(weights: str | None, device) -> tuple[torch.nn.Module, int, str]:
    """(model in eval mode, its image size, a description) for --weights (None: the release)."""
    from .device import fastest
    from .inference import DEFAULT_RELEASE, RELEASED_DIR, check_fingerprint, config_from_run, load_state, load_weights
    from .families import build_model

    if weights is None:
        folder, file = RELEASED_DIR / DEFAULT_RELEASE, RELEASED_DIR / DEFAULT_RELEASE / "best.safetensors"
    else:
        p = Path(weights)
        if not p.exists():
            raise WeightsError(f"{p}: no such weights file or run folder")
        folder, file = (p, p / "best.safetensors") if p.is_dir() else (p.parent, p)
    cfg = config_from_run(folder)
    model = build_model(cfg)
    if file.suffix in (".pt", ".pth"):
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # weights_only refuses any pickle that would run code
            raise WeightsError(f"{file}: refused: not a plain weights file that loads with weights_only=True ({type(e).__name__})") from None
        state = state.get("model", state) if isinstance(state, dict) else state
        if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise WeightsError(f"{file}: holds no model weights (a dict of tensors, or a checkpoint with one under 'model')")
        load_state(model, state, file, what=f"variant {cfg.variant}")
    else:
        load_weights(model, file, what=f"variant {cfg.variant}")
        check_fingerprint(file, cfg)
    model = model.to(device).eval()
    if fastest(device)["channels_last"]:  # weights in the layout the inputs get (inference.predict): 1.8x on a CPU
        model = model.to(memory_format=torch.channels_last)
    return model, cfg.image_size, f"{cfg.variant} from {file}"


@dataclass
class Suppressed:
    """One radiograph suppressed: clinical-polarity arrays in [0, 1] at the input's resolution."""

    x: np.ndarray  # the radiograph
    s: np.ndarray  # soft tissue
    b: np.ndarray  # removed bone, x - s
    polarity: str  # how the file stores it: "clinical" | "inverted"
    polarity_rule: str


def suppress_radiograph(model, image_size: int, r, polarity: str = "auto", amp: str = "auto") -> Suppressed:
    """Suppress the bones of one read radiograph (radiograph.Radiograph) at its full resolution."""
    from .inference import suppress_full

    stored, how = polarity_of(r, polarity)
    x = torch.from_numpy(r.pixels.astype(np.float32))
    x = 1 - x if stored == "inverted" else x
    s, b = suppress_full(model, x[None, None], image_size, amp)
    return Suppressed(x.numpy().astype(np.float64), s[0, 0].numpy().astype(np.float64), b[0, 0].numpy().astype(np.float64), stored, how)


def suppress_one(model, image_size: int, job: Job, out: Path, bone: Path | None, polarity: str, amp: str, overwrite: bool,
                 protected: set[Path], description: str) -> str:  # fmt: skip
    """Suppress one file into its outputs; returns "done" or "kept". InputError for a bad input."""
    r = read_radiograph(job.source)
    targets = job.outputs(out, bone, r.kind == "dicom")
    for t in targets:
        if t.resolve() in protected:
            raise RunDirError(f"{job.source}: its output {t} would replace an input; skipped")
    if not overwrite and all(t.exists() for t in targets):
        return "kept"
    res = suppress_radiograph(model, image_size, r, polarity, amp)
    s_stored = 1 - res.s if res.polarity == "inverted" else res.s
    if r.kind == "dicom":
        write_dicom(targets[0], r, s_stored, description)
        write_png(targets[1], res.s, 8)  # preview as displayed: clinical polarity
    else:
        write_png(targets[0], s_stored, r.bits, r.png_scale)
    if bone is not None:
        write_png(targets[-1], np.clip(res.b, 0, 1), r.bits, r.png_scale)
    return "done"


def example_radiograph(data_dir=None, index: int = 0):
    """A radiograph to try the released model on (notebook 05): with a BSE-JSRT folder, a test
    case of the released model's own split (never one it trained on), else a phantom case."""
    from .data import find_pairs
    from .inference import DEFAULT_RELEASE, RELEASED_DIR
    from .phantom import chest_phantom
    from .radiograph import Radiograph
    from .split import read_split_csv

    if data_dir:
        test = [c for c, part in read_split_csv(RELEASED_DIR / DEFAULT_RELEASE / "split.csv").items() if part == "test"]
        pairs = {p.case_id: p for p in find_pairs(data_dir)}
        have = [c for c in sorted(test) if c in pairs]
        if have:
            return read_radiograph(pairs[have[index % len(have)]].x_path)
    x = chest_phantom(512, seed=index)[0].numpy().astype(np.float64)
    return Radiograph(Path(f"phantom-{index}"), x, "image", 8, (0.0, 255.0))


def run(inputs, out, weights=None, bone=None, polarity="auto", device="auto", amp="auto", overwrite=False,
        allow_out_in_input=False, progress=True, log=print) -> Report:  # fmt: skip
    """Process ``inputs`` into ``out``; the report of what was done, kept and failed. An unusable
    setting (output folder, weights) raises an InputError before anything is written."""
    from tqdm.auto import tqdm

    from .device import pick_device

    check_choice("polarity", polarity, POLARITIES)
    out, bone = Path(out), (Path(bone) if bone else None)
    check_out_folder(inputs, out, allow_out_in_input)
    if bone is not None:
        check_out_folder(inputs, bone, allow_out_in_input)
    model, size, what = load_suppression_model(weights, pick_device(device))
    jobs, missing = find_inputs(inputs, out)
    report = Report(failed=list(missing))
    protected = {j.source.resolve() for j in jobs}
    seen: dict[Path, Path] = {}
    description = f"Bone suppressed by dae_lib ({what})"
    log(f"{len(jobs)} radiograph(s) -> {out} with {what}")
    for job in tqdm(jobs, desc="suppress", unit="image", disable=not progress or len(jobs) < 2):
        key = job.rel.with_suffix("")
        if key in seen:
            report.failed.append(f"{job.source}: same output name as {seen[key]}; skipped")
            continue
        seen[key] = job.source
        try:
            what_happened = suppress_one(model, size, job, out, bone, polarity, amp, overwrite, protected, description)
        except InputError as e:
            report.failed.append(str(e))
            continue
        (report.done if what_happened == "done" else report.kept).append(str(job.source))
    return report


def build_parser(prog: str = "dae-suppress") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Bone suppression of chest radiographs (PNG, JPEG, TIFF, DICOM).")
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="radiograph files or folders (recursed)")
    p.add_argument("--out", required=True, help="output folder (same relative paths as the inputs)")
    p.add_argument("--weights", default=None, help="a run folder, its best.safetensors or checkpoint.pt (default: the released model)")
    p.add_argument("--polarity", choices=POLARITIES, default="auto", help="how the inputs are stored (default: auto)")
    p.add_argument("--bone", default=None, metavar="DIR", help="also write the removed bone component here")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=AMP_MODES, default="auto", help="bf16 autocast where supported (auto) or float32 (off)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (inputs are never replaced)")
    p.add_argument("--allow-out-in-input", action="store_true", help="allow --out inside an input folder (it is then not scanned)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd(args) -> int:
    t0 = time.time()
    report = run(args.inputs, args.out, args.weights, args.bone, args.polarity, args.device, args.amp, args.overwrite,
                 args.allow_out_in_input, progress=not args.quiet)  # fmt: skip
    for line in report.failed:
        print(f"error: {line}", file=sys.stderr)
    print(report.summary() + f" in {time.time() - t0:.1f} s -> {args.out}")
    return 2 if report.failed else 0


def main(argv=None) -> int:
    from .cli import run_guarded

    args = build_parser().parse_args(argv)
    return run_guarded(cmd, args)


if __name__ == "__main__":
    sys.exit(main())
