"""The released model: the best improved variant trained at 512 px on BSE-JSRT, with its model card.

    python -m dae_lib.studies.release --data ../shared/data/bse-jsrt-512 [--variant r_ae_msssim] [--device auto]

Two stages, each an ordinary resumable ``fit`` run under runs/release/ (stop it any time, run the
same command again to go on; a GPU is used where torch sees one, the CPU otherwise):

1. ``STAGES[0]``: the variant at 256 px from scratch (cheap on a CPU: most of the learning);
2. ``STAGES[1]``: the same network at 512 px, starting from stage 1's best weights (the network is
   fully convolutional, so the weights carry over; the fine-tuning adapts them to twice the detail).

Then the test cases of the run's split are scored once (fp32, with the identity row), and the
release folder ``dae_lib/released/<variant>-<data>/`` is written: best.safetensors, config.json,
data.json, split.csv (case IDs and file hashes, no paths), model_card.json and model_card.md. It
lives inside the package, so ``runs.load_released()`` works after a plain ``pip install``.
The variant, the learning rate and the loss weights were chosen on the validation part
(results/sweep.csv and the validation PSNR of the quick-profile runs); the stage lengths and the
stage-2 learning rate were set by the CPU budget (about 30 minutes on 2 cores), not tuned, and each
stage keeps its best epoch by validation loss. The test cases only give the card's numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
from safetensors.torch import load_file, save_file

from ..atomic import write_json_atomic
from ..config import load_config
from ..data import load_data
from ..errors import run_guarded
from ..metrics import TABLE1, registered
from ..models import get_variant
from ..reporting.evaluate import IDENTITY, evaluate_run, summarize
from ..runs import (
    BEST_WEIGHTS, CONFIG_FILE, DATA_FILE, DEFAULT_RELEASE, PROVENANCE_FILE, RELEASED_DIR, REPO_ROOT, SPLIT_FILE,
    TEST_METRICS, data_tag, git_commit, normalise_data_dir, portable, resolve, sha256_file,
)
from ..train import fit

#: The two training stages: overrides of the paper profile (which sets the width) and the family defaults.
STAGES = (
    dict(image_size=256, epochs=60, batch_size=4),
    dict(image_size=512, epochs=30, batch_size=4, lr=5e-4),
)

INTENDED_USE = (
    "Research and teaching: removing ribs and clavicles from frontal chest radiographs to study bone "
    "suppression. Not a medical device and not for diagnosis or any clinical decision."
)
LIMITS = (
    "Trained on 98 JSRT radiographs (one Japanese source, 1990s film digitised, 8-bit 512 px copy) with "
    "BSE-JSRT soft-tissue targets, which suppress ribs and clavicles inside the lung fields only (the spine "
    "is left). Other scanners, paediatric images, lateral views, devices and lines, and other polarities or "
    "bit depths are untested. Metrics are on 19 held-out JSRT cases only."
)


def stage_configs(variant: str, data_dir: str, device: str = "auto", stage1_dir: Path | None = None) -> list:
    cfgs = [load_config("paper", variant=variant, data_dir=data_dir, device=device, **STAGES[0])]
    cfgs.append(load_config("paper", variant=variant, data_dir=data_dir, device=device, init_from=str(stage1_dir), **STAGES[1]))
    return cfgs


def train_release(variant: str, data_dir: str, device: str = "auto", runs_root: Path | None = None, log=print):
    """Both stages (resuming where they stopped); returns the stage-2 FitResult."""
    runs_root = runs_root or REPO_ROOT / "runs" / "release"
    s1, s2 = runs_root / f"{variant}-256", runs_root / f"{variant}-512"
    cfg1, cfg2 = stage_configs(variant, data_dir, device, s1)
    log(f"stage 1: {variant} at 256 px, {cfg1.epochs} epochs -> {s1}")
    fit(cfg1, s1, data=load_data(cfg1), profile="release-256")
    log(f"stage 2: {variant} at 512 px, {cfg2.epochs} epochs from stage 1 -> {s2}")
    return fit(cfg2, s2, data=load_data(cfg2), profile="release-512")


def stage_chain(run_dir: Path) -> list[dict]:
    """The training stages that led to a run, first to last: the run, the run its ``init_from``
    names, and so on (each: image size, epochs, best epoch, seconds, device, and the learning rate
    of the stages after the first)."""
    chain, folder = [], Path(run_dir)
    while folder is not None and (folder / CONFIG_FILE).is_file():
        cfg = json.loads((folder / CONFIG_FILE).read_text())
        prov = json.loads((folder / PROVENANCE_FILE).read_text()) if (folder / PROVENANCE_FILE).is_file() else {}
        chain.append({"image_size": cfg["image_size"], "epochs": prov.get("epochs_done"), "best_epoch": prov.get("best_epoch"),
                      "train_seconds": prov.get("train_seconds_total"), "device": prov.get("device"), "lr": cfg.get("lr")})  # fmt: skip
        folder = resolve(cfg["init_from"]) if cfg.get("init_from") else None
    chain.reverse()
    for st in chain[:1]:
        st.pop("lr")  # the first stage's rate is the family's (the card says where it was chosen)
    return chain


def write_release(run_dir: Path, out_dir: Path, data=None, log=print, notes: dict | None = None, compare: dict | None = None) -> Path:
    """Write the release folder of a trained run: its weights in float16 (half the size; the card's
    numbers are those of these very weights), records, and the model card from scoring the
    released folder itself on the run's test cases. ``compare``: {label: folder} of other releases
    scored on the same test cases for the card's table (v1 beside v2); ``notes``: further card
    entries (a later release's recipe, its validation and shifted-validation numbers: studies/v2.py)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    cfg = json.loads((run_dir / CONFIG_FILE).read_text())
    prov = json.loads((run_dir / PROVENANCE_FILE).read_text())
    variant = get_variant(cfg["variant"])
    split_rows = pd.read_csv(run_dir / SPLIT_FILE)[["case_id", "split", "x_sha256", "s_sha256"]]
    split_text = split_rows.to_csv(index=False)

    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = load_file(str(run_dir / BEST_WEIGHTS))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(tmp / BEST_WEIGHTS))
    write_json_atomic(tmp / CONFIG_FILE, {**cfg, "data_dir": portable(cfg["data_dir"]), "init_from": None})
    data_rec = json.loads((run_dir / DATA_FILE).read_text())
    write_json_atomic(tmp / DATA_FILE, {**data_rec, "source": data_tag(cfg["data_dir"])})
    (tmp / SPLIT_FILE).write_text(split_text)
    label = (notes or {}).get("model", variant.label)  # a later release's own name ("... v2") in its table too
    scored = [evaluate_run(tmp, data).replace({"method": {variant.label: label}})]
    (tmp / TEST_METRICS).unlink()  # evaluate_run's by-product; the card holds the numbers
    for other_label, folder in (compare or {}).items():
        other = evaluate_run(folder, data)
        (Path(folder) / TEST_METRICS).unlink(missing_ok=True)
        if set(other["case_id"]) != set(scored[0]["case_id"]):
            raise ValueError(f"{folder}: its test cases are not this release's ({run_dir}); the card compares on the same cases only")
        scored.append(other[other["method"] != IDENTITY].assign(method=other_label))
    summary = summarize(pd.concat(scored, ignore_index=True))
    metrics = card_metrics(summary, (IDENTITY, label, *(compare or {})))
    card = {
        "model": variant.label, "variant": variant.name, "family": variant.family,
        "architecture": f"residual U-Net (dae_lib/models/residual_unet.py), width {cfg['unet_width']}, depth {cfg['unet_depth']}",
        "data": data_tag(cfg["data_dir"]), "split_sha256": hashlib.sha256(split_text.encode()).hexdigest(),
        "cases": {p: int((split_rows["split"] == p).sum()) for p in ("train", "val", "test")},
        "image_size": cfg["image_size"], "polarity": data_rec["stored_polarity"],
        "stages": stage_chain(run_dir),
        "seed": cfg["seed"], "commit": prov["commit"], "evaluated_at_commit": git_commit(), "torch": prov["torch"], "utc": prov["utc"],
        "test_metrics": metrics, "n_test": int(summary.loc[IDENTITY, "n"]),
        "weights": f"float16 safetensors (trained in float32{' with bf16 autocast' if 'bfloat16' in str(prov.get('autocast')) else ''}; loaded into a float32 model)",
        "weights_sha256": sha256_file(tmp / BEST_WEIGHTS),
        "intended_use": INTENDED_USE, "limits": LIMITS,
        "load": f"from dae_lib.runs import load_released; model = load_released({out_dir.name!r})",
        **(notes or {}),
    }  # fmt: skip
    write_json_atomic(tmp / "model_card.json", card)
    (tmp / "model_card.md").write_text(model_card_markdown(card))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    log(f"released: {out_dir}")
    return out_dir


def card_metrics(summary, labels) -> dict:
    """The card's test metrics: {label: {metric: {"mean", "sd"}}} of each Table 1 metric
    (metrics.REGISTRY), for the rows ``labels`` of a ``summarize`` result."""
    names = [m.name for m in registered(TABLE1)]
    return {
        label: {k: {"mean": float(summary.loc[label, f"{k}_mean"]), "sd": float(summary.loc[label, f"{k}_std"])} for k in names}
        for label in labels
    }


def metrics_table(test_metrics: dict) -> list[str]:
    """The card's Markdown table of ``card_metrics``: one row per method, mean +- sd of each Table 1
    metric (metrics.REGISTRY's headers and formats; "n/a" for a metric the card lacks)."""
    columns = registered(TABLE1)
    lines = ["| method | " + " | ".join(m.label for m in columns) + " |", "|" + " --- |" * (1 + len(columns))]
    for label, values in test_metrics.items():
        cells = [m.mean_sd((values.get(m.name) or {}).get("mean"), (values.get(m.name) or {}).get("sd")) for m in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def model_card_markdown(card: dict) -> str:
    """model_card.md from the card (model_card.json)."""
    st = card["stages"]
    lines = [
        f"# Model card: {card['model']} ({card['data']}, {card['image_size']} px)",
        "",
        f"**What**: bone suppression for frontal chest radiographs; {card['architecture']}. Input: a radiograph in "
        f"clinical polarity (bone bright), [0, 1], {card['image_size']} x {card['image_size']}; output: the soft-tissue "
        "image S_hat = X - B_hat. "
        + ("The bone-segmentation head was used in training only and is not run." if card["variant"].split("_", 1)[-1].startswith("dae") else "It has no segmentation head."),
        "",
        f"**Load**: `{card['load']}`, then `dae_lib.inference.predict(model, x)`.",
        "",
        f"**Data**: {card['data']} ({card['cases']['train']} training, {card['cases']['val']} validation, "
        f"{card['cases']['test']} test cases; split sha256 `{card['split_sha256'][:16]}...`, the split is `split.csv` here), "
        f"stored polarity {card['polarity']}.",
        "",
        f"**Training**: {_stages_text(st)}; seed {card['seed']}; trained at commit {card['commit']}, "
        f"scored at {card.get('evaluated_at_commit', card['commit'])}; "
        f"torch {card['torch']}; {card['utc']}. "
        + card.get("recipe", "Variant, learning rate and loss weights chosen on the validation part; stage lengths set by a CPU budget; "
                   "no setting chosen on the test cases.")
        + f" Regenerate: `{card.get('regenerate', 'python -m dae_lib.studies.release --data ../shared/data/bse-jsrt-512')}`.",
        "",
        f"**Test metrics** ({card['n_test']} held-out cases, mean +- sd over images, fp32):",
        "",
        *metrics_table(card["test_metrics"]),
        "",
        *_extra_sections(card),
        f"**Intended use**: {card['intended_use']}",
        "",
        f"**Limits**: {card['limits']}",
        "",
        f"Weights: {card.get('weights', 'float32 safetensors')}, sha256 `{card['weights_sha256']}`.",
        "",
    ]
    return "\n".join(lines)


def _stages_text(stages: list[dict]) -> str:
    """The card's words for its training stages ("stage 1 at 256 px, 60 epochs (best 59, ...); stage 2 ...")."""
    parts = []
    for k, st in enumerate(stages, 1):
        start = "" if k == 1 else f" from stage {k - 1}" + (f" at learning rate {st['lr']:g}" if st.get("lr") is not None else "")
        parts.append(f"stage {k} at {st['image_size']} px{start}, {st['epochs']} epochs (best {st['best_epoch']}, {st['train_seconds']} s, {st['device']})")
    return "; ".join(parts)


def _extra_sections(card: dict) -> list[str]:
    """A later release's further card sections (studies/v2.py writes them): validation and shifted
    validation against doing nothing and the earlier release, and the CPU inference time."""
    lines = []
    for key, title in (("validation", "Validation"), ("shifted_validation", "Shifted validation")):
        if card.get(key):
            sec = card[key]
            lines += [f"**{title}** ({sec['what']}):", "", *sec["table"], ""]
    if card.get("cpu_inference"):
        lines += [f"**CPU inference**: {card['cpu_inference']}", ""]
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dae_lib.studies.release", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="BSE-JSRT folder")
    p.add_argument("--variant", default=DEFAULT_RELEASE.split("-")[0], help="default: the released one (runs.DEFAULT_RELEASE)")
    p.add_argument("--device", default="auto")
    p.add_argument("--train-only", action="store_true", help="train (or resume) without writing the release")
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    def go():
        data_dir = normalise_data_dir(args.data)
        result = train_release(args.variant, data_dir, args.device)
        if not args.train_only:
            write_release(result.out_dir, RELEASED_DIR / f"{args.variant}-{data_tag(data_dir)}", result.data)
        print(f"wall time {time.perf_counter() - t0:.0f} s")
        return 0

    return run_guarded(go)


if __name__ == "__main__":
    sys.exit(main())
