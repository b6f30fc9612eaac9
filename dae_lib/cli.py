"""Command line: train, evaluate and reproduce from a terminal.

    python -m dae_lib train --variant dae_msssim [--profile quick] [--data DIR] [--out DIR]
    python -m dae_lib evaluate RUN_DIR
    python -m dae_lib reproduce [--profile quick] [--data DIR] [--family all] [--seeds 1] [--jobs 1] [--kernel NAME]   # the notebooks
    python -m dae_lib phantom-figure [--out figures/phantom_sample.png]
    python -m dae_lib facts [--check]            # the numbers README.md and docs/ quote, from results/
    python -m dae_lib suppress INPUT... --out DIR [--weights RUN] [--bone DIR]   # your own radiographs (suppress.py)
    python -m dae_lib score X_DIR S_DIR --out DIR [--register]                     # score it on your own pairs (scoring/)

Without --data (or with --data phantom) everything runs on the synthetic chest phantom. Errors in
the input (data, settings, run folders, weights: errors.InputError) end the program with a one-line
message naming the file or setting, and exit status 2; any other error is a bug and shows its traceback.

A subcommand's own modules are imported when it runs, not here: ``python -m dae_lib suppress`` and
``--help`` start in about 2 s, where importing training, evaluation and the pipeline up front
(kornia, pandas, matplotlib, papermill) takes about 6 s (``python -X importtime``, 2-core CPU).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

from . import suppress
from .config import AMP_MODES, DEFAULT_PROFILE, POLARITIES, PROFILES, is_phantom, load_config
from .errors import ConfigError, run_guarded
from .models import FAMILIES, variants
from .runs import DEFAULT_RELEASE, REPO_ROOT, WALL_TIMES_CSV, outputs, released_names


def _data_arg(value: str | None) -> str | None:
    if is_phantom(value):
        return None
    return _path_arg(value)


def _path_arg(value: str | None) -> str | None:
    """A path the user typed, absolute: a relative one is taken from the current folder (the
    library itself takes relative paths from the repository: runs.resolve)."""
    return None if value is None else str(Path(value).expanduser().resolve())


def default_run_dir(profile: str, data_dir: str | None, variant: str) -> Path:
    return outputs(profile, data_dir).run(variant)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE, help=f"parameter profile (default: {DEFAULT_PROFILE})")
    p.add_argument("--data", default=None, help="BSE-JSRT folder (JSRT/ + BSE_JSRT/, or the Kaggle layout); default: phantom")
    p.add_argument("--polarity", choices=POLARITIES, default=None, help="override polarity detection")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help='"auto" (default), "cpu", "cuda", ...')
    p.add_argument("--amp", choices=AMP_MODES, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any Config field, e.g. --set lr=3e-3")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_sets(items) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:  # also tags such as !!python/object, which safe_load refuses
            reason = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"--set {key.strip()}: cannot read {value!r} as a value ({reason})") from None
    return out


def _config(args, variant, **more):
    explicit = dict(
        **more,
        variant=variant,
        data_dir=_data_arg(args.data),
        polarity=args.polarity,
        epochs=args.epochs,
        image_size=args.image_size,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
    )
    overrides = _parse_sets(args.set)
    overrides.update({k: v for k, v in explicit.items() if v is not None})
    return load_config(args.profile, **overrides)


def cmd_train(args) -> int:
    from .reporting.evaluate import evaluate_run, format_table, summarize
    from .train import RELEASED, fit

    init = args.init_from if args.init_from in (None, RELEASED) else _path_arg(args.init_from)
    cfg = _config(args, args.variant, init_from=init)
    out = Path(args.out).resolve() if args.out else default_run_dir(args.profile, cfg.data_dir, cfg.variant)
    res = fit(cfg, out, progress=not args.quiet, profile=args.profile, max_epochs=args.max_epochs)
    print(f"run folder: {out}  (best epoch {res.best_epoch} of {len(res.history)})")
    if len(res.history) == cfg.epochs:
        print(format_table(summarize(evaluate_run(out, res.data))))
    else:
        print(f"stopped after epoch {len(res.history)} of {cfg.epochs}; run the same command again to resume")
    return 0


def cmd_evaluate(args) -> int:
    from .reporting.evaluate import evaluate_run, format_table, summarize

    print(format_table(summarize(evaluate_run(Path(args.run_dir).resolve(), which=args.which, device=args.device))))
    return 0


def cmd_reproduce(args) -> int:
    from . import pipeline

    t0 = time.perf_counter()
    given = dict(seed=args.seed, device=args.device)
    request = pipeline.Request(
        args.profile, _data_arg(args.data), _path_arg(args.out_root),  # relative to where the user typed them
        seeds=args.seeds, families=tuple(FAMILIES) if args.family == "all" else (args.family,),
        **{k: v for k, v in given.items() if v is not None},
    )
    try:
        pipeline.reproduce(request, kernel_name=args.kernel, jobs=args.jobs)
    except pipeline.PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t0
    pipeline.record_wall_time(request, wall, args.jobs)
    out = request.outputs
    md = (out.results / "table1.md").read_text()
    block = md[md.index(f"## {out.data}, profile {args.profile}") :].split("\n## ")[0]
    print("\n" + block)
    print(f"Table 1: {out.results / 'table1.md'}; figures: {out.figures}; notebooks: {out.executed}")
    print(f"wall time {wall:.0f} s (recorded in {out.results / WALL_TIMES_CSV})")
    if out.root.resolve() == REPO_ROOT.resolve():
        from .reporting.facts import stale

        for line in stale():
            print(f"stale: {line} (`python -m dae_lib facts` rewrites it)")
    return 0


def cmd_facts(args) -> int:
    from .reporting.facts import rewrite, stale

    if args.check:
        lines = stale()
        for line in lines:
            print(line)
        print(f"{len(lines)} stale fact(s)" if lines else "every quoted number agrees with results/")
        return 1 if lines else 0
    changed = rewrite()
    print("rewritten: " + ", ".join(str(p.relative_to(REPO_ROOT)) for p in changed) if changed else "every quoted number already agrees with results/")
    return 0


def _score_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("x_dir", help="folder of radiographs (or, without S_DIR, a folder with X/ + S/, JSRT/ + BSE_JSRT/ or the Kaggle layout)")
    p.add_argument("s_dir", nargs="?", default=None, help="folder of soft-tissue images, matched to the radiographs by file name")
    p.add_argument("--out", required=True, help="folder for scores.csv, scores.md and montage/ (never an input folder; nothing replaced)")
    p.add_argument("--weights", default=None, help=f"a run folder, a .safetensors file or a released model's name ({', '.join(released_names())}; default {DEFAULT_RELEASE})")
    p.add_argument("--polarity", choices=POLARITIES, default="auto", help="how the files store the images (auto: decided per file, as suppress does)")
    p.add_argument("--register", action="store_true", help="resample S onto X where they are off by more than --tolerance")
    p.add_argument("--tolerance", type=float, default=None, help="pixels of misalignment that count as misaligned, 0 or more (default: scoring.score.TOLERANCE_PX, 1 px); exit status 2 also when a pair was skipped")
    p.add_argument("--lungs", default=None, help="folder of lung-field masks drawn on the radiographs (same file names, lungs bright): score inside them only")
    p.add_argument("--device", default="auto")


def cmd_score(args) -> int:
    from .scoring import score

    return score.cmd(args)


def cmd_adapt(args) -> int:
    from .scoring import adapt

    return adapt.cmd(args)


def cmd_solutions(args) -> int:
    from . import pipeline

    request = pipeline.Request(args.profile, _data_arg(args.data), _path_arg(args.out_root))
    try:
        done = pipeline.run_solutions(request, kernel_name=args.kernel)
    except pipeline.PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"executed solutions: {done[0].parent if done else 'none found'}")
    return 0


def cmd_store_notebooks(args) -> int:
    from .pipeline import store_notebooks

    store_notebooks()
    return 0


def cmd_phantom_figure(args) -> int:
    from .reporting.figures import phantom_sample_figure

    print(phantom_sample_figure(args.out, size=args.size, seed=args.seed))
    return 0


def _adapt_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tune", help="pairs to fine-tune on (X/ + S/ or a BSE-JSRT layout)")
    p.add_argument("validation", help="pairs that choose the learning rate (fitted PSNR)")
    p.add_argument("held_out", help="pairs scored once, before and after (never used for a choice)")
    p.add_argument("--out", required=True, help="folder for runs/, scores/, adapt.csv and adapt.md (never an input folder)")
    p.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE, help="its adapt section: epochs and candidate learning rates")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lrs", type=float, nargs="+", default=None, help="candidate learning rates")
    p.add_argument("--polarity", choices=POLARITIES, default="auto")
    p.add_argument("--device", default="auto")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dae_lib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train one variant")
    p.add_argument("--variant", choices=list(variants()), required=True)
    p.add_argument("--out", default=None, help="run folder (default: runs/<profile>/<data>/<variant>)")
    p.add_argument("--max-epochs", type=int, default=None, help="stop after this many epochs in this call (resumable)")
    p.add_argument("--init-from", default=None, help='start from these weights: a run folder, a .safetensors file, or "released" (fine-tune the released model on your pairs)')
    _common(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="test metrics of a trained run, with the identity baseline")
    p.add_argument("run_dir")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--device", default="auto", help='where to run the model: "auto" (default: CUDA if present), "cpu", "cuda", ...')
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("reproduce", help="run the notebooks with papermill: data, 4 trainings per family, Table 1, figures, the released model on a radiograph")
    p.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE)
    p.add_argument("--data", default=None, help="BSE-JSRT folder; default: the phantom")
    p.add_argument("--family", choices=("all", *FAMILIES), default="all", help="model families to train (default: all)")
    p.add_argument("--seeds", type=int, default=1, help="train every variant with this many seeds (--seed, --seed + 1, ...); Table 1 then reports mean +- sd over seeds")
    p.add_argument("--jobs", type=int, default=1, help="trainings at once, each its own process (default 1; on a GPU several share it well)")
    p.add_argument("--kernel", default=None, help="Jupyter kernel name for papermill (default: the notebooks' python3)")
    p.add_argument("--out-root", default=None, help="write runs/, results/, figures/ here instead of the repository (relative to the current folder)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_reproduce)
    p = sub.add_parser("suppress", help="bone-suppress your own radiographs (PNG, JPEG, TIFF, DICOM files or folders)")
    suppress.add_arguments(p)
    p.set_defaults(func=suppress.cmd)
    p = sub.add_parser("score", help="score bone suppression against your own soft-tissue images (dual-energy or BSE pairs)")
    _score_arguments(p)
    p.set_defaults(func=cmd_score)
    p = sub.add_parser("adapt", help="fine-tune the released model on your pairs: learning rate chosen on validation pairs, scored on held-out ones")
    _adapt_arguments(p)
    p.set_defaults(func=cmd_adapt)
    p = sub.add_parser("solutions", help="run the exercises' solutions notebooks (the numbers the exercises quote) into the executed copies' folder")
    p.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE)
    p.add_argument("--data", default=None, help="BSE-JSRT folder; default: the phantom")
    p.add_argument("--kernel", default=None, help="Jupyter kernel name for papermill (default: the notebooks' python3)")
    p.add_argument("--out-root", default=None, help="write there instead of the repository (relative to the current folder)")
    p.set_defaults(func=cmd_solutions)
    p = sub.add_parser("store-notebooks", help="(maintainers) refresh the stored notebooks' checked outputs from a smoke run")
    p.set_defaults(func=cmd_store_notebooks)
    p = sub.add_parser("facts", help="rewrite the numbers README.md and docs/ quote from results/ (marked <!-- fact: ... -->)")
    p.add_argument("--check", action="store_true", help="only list the stale ones (exit status 1 if any)")
    p.set_defaults(func=cmd_facts)
    p = sub.add_parser("phantom-figure", help="draw one phantom case beside its S, B and M")
    p.add_argument("--out", default=None)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_phantom_figure)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_guarded(args.func, args)
