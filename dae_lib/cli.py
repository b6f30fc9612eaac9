"""Command line: train, evaluate and reproduce from a terminal.

    python -m dae_lib train --variant dae_msssim [--profile quick] [--data DIR] [--out DIR]
    python -m dae_lib evaluate RUN_DIR
    python -m dae_lib reproduce [--profile quick] [--data DIR]   # all four variants + the table
    python -m dae_lib phantom-figure [--out figures/phantom_sample.png]

Without --data (or with --data phantom) everything runs on the synthetic chest phantom. Errors in
the input data end the program with a one-line message naming the file and exit status 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .config import PROFILES, VARIANTS, load_config
from .data import DataError
from .paths import RUNS_DIR
from .train import RunDirError


def _data_arg(value: str | None) -> str | None:
    if value in (None, "", "phantom"):
        return None
    return str(Path(value).expanduser().resolve())  # relative to where the user typed it


def data_tag(data_dir: str | None) -> str:
    return "phantom" if data_dir is None else Path(data_dir).name


def default_run_dir(profile: str, data_dir: str | None, variant: str) -> Path:
    return RUNS_DIR / profile / data_tag(data_dir) / variant


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default="quick", help="parameter profile (default: quick)")
    p.add_argument("--data", default=None, help="BSE-JSRT folder (JSRT/ + BSE_JSRT/, or the Kaggle layout); default: phantom")
    p.add_argument("--polarity", choices=("auto", "clinical", "inverted"), default=None, help="override polarity detection")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help='"auto" (default), "cpu", "cuda", ...')
    p.add_argument("--amp", choices=("auto", "bf16", "off"), default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _config(args, variant):
    return load_config(
        args.profile,
        variant=variant,
        data_dir=_data_arg(args.data),
        polarity=args.polarity,
        epochs=args.epochs,
        image_size=args.image_size,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
    )


def cmd_train(args) -> int:
    from .evaluate import evaluate_run, format_table, summarize
    from .train import fit

    cfg = _config(args, args.variant)
    out = Path(args.out).resolve() if args.out else default_run_dir(args.profile, cfg.data_dir, cfg.variant)
    res = fit(cfg, out, progress=not args.quiet, profile=args.profile, max_epochs=args.max_epochs)
    print(f"run folder: {out}  (best epoch {res.best_epoch} of {len(res.history)})")
    if len(res.history) == cfg.epochs:
        print(format_table(summarize(evaluate_run(out, res.data))))
    else:
        print(f"stopped after epoch {len(res.history)} of {cfg.epochs}; run the same command again to resume")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_run, format_table, summarize

    print(format_table(summarize(evaluate_run(Path(args.run_dir).resolve(), which=args.which))))
    return 0


def cmd_reproduce(args) -> int:
    import pandas as pd

    from .data import load_data
    from .evaluate import evaluate_run, format_table, summarize
    from .train import fit

    t0 = time.time()
    frames = []
    data = None
    for variant in VARIANTS:
        cfg = _config(args, variant)
        data = data if data is not None else load_data(cfg)
        out = default_run_dir(args.profile, cfg.data_dir, variant)
        fit(cfg, out, data=data, progress=not args.quiet, profile=args.profile)
        df = evaluate_run(out, data)
        frames.append(df if not frames else df[df["method"] != df["method"].iloc[0]])
    table = summarize(pd.concat(frames, ignore_index=True))
    print(f"\nTest cases: {table['n'].iloc[0]} of {len(data)} ({data.source}, {cfg.image_size} px, profile {args.profile})")
    print(format_table(table))
    print(f"wall time {time.time() - t0:.0f} s")
    return 0


def cmd_phantom_figure(args) -> int:
    from .figures import phantom_sample_figure

    print(phantom_sample_figure(args.out, size=args.size, seed=args.seed))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dae_lib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train one variant")
    p.add_argument("--variant", choices=list(VARIANTS), required=True)
    p.add_argument("--out", default=None, help="run folder (default: runs/<profile>/<data>/<variant>)")
    p.add_argument("--max-epochs", type=int, default=None, help="stop after this many epochs in this call (resumable)")
    _common(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="test metrics of a trained run, with the identity baseline")
    p.add_argument("run_dir")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("reproduce", help="train and evaluate all four variants, print the table")
    _common(p)
    p.set_defaults(func=cmd_reproduce)
    p = sub.add_parser("phantom-figure", help="draw one phantom case beside its S, B and M")
    p.add_argument("--out", default=None)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_phantom_figure)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except (DataError, RunDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # configuration errors
        print(f"error: {e}", file=sys.stderr)
        return 2
