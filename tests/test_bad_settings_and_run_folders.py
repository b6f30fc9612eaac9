"""Settings, run folders and data that used to end in a traceback or a misleading answer: each is
one line, ``error: ...`` naming the setting or file, exit status 2, nothing written; too few test
cases are "too few to judge", never "holds". By subject: damaged config.json, --kernel, --set,
too few cases, --out-root and image_size bounds.
"""
import dataclasses
import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from dae_lib import config as config_mod
from dae_lib import pipeline
from dae_lib.reporting import table1
from dae_lib.cli import main as cli
from dae_lib.config import MAX_IMAGE_SIZE, Config, fingerprint, load_config
from dae_lib.errors import ConfigError, DataError, RunDirError, WeightsError
from dae_lib.reporting.evaluate import IDENTITY
from dae_lib.runs import METADATA_KEY, REPO_ROOT, config_from_run, load_model, load_released
from dae_lib.split import checked_split, part_sizes
from dae_lib.reporting.stats import MIN_TEST_CASES
from helpers import tiny_config, tiny_run_folder, write_pair_folder

TINY = ["--profile", "smoke", "--image-size", "64", "--epochs", "1", "--amp", "off", "--quiet", "--set", "n_phantom=8"]


def _one_error_line(err: str) -> str:
    """The single ``error:`` line of a refusal (and no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def no_notebooks(monkeypatch):
    """Any notebook the pipeline would run fails the test: refusals come before the first."""
    monkeypatch.setattr(pipeline, "execute_step", lambda *a, **k: pytest.fail("a notebook ran"))


@pytest.fixture
def no_data_read(monkeypatch):
    """Reading the images fails the test: settings are refused before."""
    monkeypatch.setattr("dae_lib.train.load_data", lambda *a, **k: pytest.fail("data read before the settings were checked"))


# ---------------------------------------------------------------------------------------------
# a damaged config.json in a run / weights folder: one line naming the file
# ---------------------------------------------------------------------------------------------

DAMAGED = {
    "not JSON": ("variant: ae\n", "damaged, not JSON"),
    "truncated": ('{"variant": "ae", "image_si', "damaged, not JSON"),
    "not UTF-8": (b"\xff\xfe{}", "damaged, not JSON"),
    "a list": ("[1, 2, 3]", "holds an array (JSON), not an object of settings"),
    "a string": ('"ae"', "holds a string (JSON), not an object of settings"),
    "unknown field": ('{"variant": "ae", "colour": "blue"}', "unknown configuration keys: ['colour']"),
    "wrong type": ('{"variant": "ae", "image_size": "big"}', "image_size must be an integer, not 'big'"),
    "wrong type, a list": ('{"variant": "ae", "channels": "16,32,64,64"}', "channels must be 4 integers"),
    "non-finite": ('{"variant": "ae", "lr": Infinity}', "lr must be a finite number, not inf"),
    "NaN": ('{"variant": "ae", "ls": NaN}', "ls must be a finite number, not nan"),
    "unknown variant": ('{"variant": "vae"}', "vae"),
}


def _damage(run, text):
    path = run / "config.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_config_json_is_one_line_naming_the_file(tmp_path, capsys, case):
    text, words = DAMAGED[case]
    run = tiny_run_folder(tmp_path / "run")
    path = _damage(run, text)
    before = _snapshot(run)
    with pytest.raises(RunDirError, match="config.json"):
        config_from_run(run)
    assert cli(["evaluate", str(run)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {path}: ") and words in line
    assert _snapshot(run) == before  # no test_metrics.csv, nothing changed


def test_damaged_config_json_of_suppress_weights_is_one_line(tmp_path, capsys):
    run = tiny_run_folder(tmp_path / "run")
    path = _damage(run, '{"variant": "ae", "image_size": 1e6}')
    img = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "out"
    assert cli(["suppress", str(img), "--out", str(out), "--weights", str(run), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and f"image_size must be at least 32 and at most {MAX_IMAGE_SIZE}" in line
    assert not out.exists() or not any(out.rglob("*"))


def test_resume_into_a_run_folder_with_damaged_config_json_is_one_line(tmp_path, capsys, no_data_read):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".dae-run").write_text("{}")
    (run / "config.json").write_text('{"variant": "ae", ')
    before = _snapshot(run)
    assert cli(["train", "--variant", "ae", *TINY, "--out", str(run)]) == 2
    assert f"{run / 'config.json'}: damaged, not JSON" in _one_error_line(capsys.readouterr().err)
    assert _snapshot(run) == before


# ---------------------------------------------------------------------------------------------
# --kernel: an installed kernel's well-formed name, or refused before anything runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kernel, words",
    [
        ("no-such-kernel", "--kernel 'no-such-kernel': no such Jupyter kernel on this machine (installed: "),
        ("x; rm -rf /", "--kernel 'x; rm -rf /': not a kernel name (letters, digits, '.', '_' and '-' only)"),
        ("python3\n", "--kernel 'python3\\n': not a kernel name"),
        ("../python3", "--kernel '../python3': not a kernel name"),
        ("", "--kernel '': not a kernel name"),
    ],
)
def test_unknown_or_shell_like_kernel_is_refused_before_anything_runs(tmp_path, capsys, no_notebooks, kernel, words):
    out = tmp_path / "out"
    assert cli(["reproduce", "--profile", "smoke", "--kernel", kernel, "--out-root", str(out)]) == 2
    assert words in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_an_installed_kernel_passes_the_check():
    from jupyter_client.kernelspec import KernelSpecManager

    name = sorted(KernelSpecManager().find_kernel_specs())[0]
    pipeline.check_kernel(name)
    pipeline.check_kernel(name.upper())  # jupyter_client finds kernels case-insensitively
    pipeline.check_kernel(None)  # the notebooks' own kernel


# ---------------------------------------------------------------------------------------------
# --set: nonsense refused by the Config's own checks, in one line, before any I/O
# ---------------------------------------------------------------------------------------------

BAD_SETS = [
    ("channels=foo", "error: channels must be 4 integers from 1 to 1024 (the paper network's four conv layers), not 'foo'"),
    ("channels=[16,32]", "error: channels must be 4 integers from 1 to 1024 (the paper network's four conv layers), not [16, 32]"),
    ("channels=[0,0,0,0]", "error: channels must be 4 integers from 1 to 1024 (the paper network's four conv layers), not [0, 0, 0, 0]"),
    ("channels=[16,32,64,1e9]", "error: channels must be 4 integers from 1 to 1024"),
    ("channels=[16,32,64,64.5]", "error: channels must be 4 integers from 1 to 1024"),
    ("unet_width=1e6", "error: unet_width must be at least 1 and at most 128 (its widest level is 8 x unet_width channels), not 1000000"),
    ("unet_width=1000000", "error: unet_width must be at least 1 and at most 128"),
    ("seed=1e20", "error: seed must be at least 0 and at most 4294967295, not 100000000000000000000"),
    ("seed=4294967296", "error: seed must be at least 0 and at most 4294967295"),
    ("split_seed=-1", "error: split_seed must be at least 0 and at most 4294967295, not -1"),
    ("--image-size 6144", f"error: image_size must be at least 32 and at most {MAX_IMAGE_SIZE} (px), not 6144"),
    ("--epochs 1000000000", "error: epochs must be at least 1 and at most 10000, not 1000000000"),
    ("batch_size=100000", "error: batch_size must be at least 1 and at most 1024, not 100000"),
    ("eval_batch_size=100000", "error: eval_batch_size must be 0 (the device's choice) or up to 1024, not 100000"),
    ("n_phantom=1000000", "error: n_phantom must be at least 3 and at most 1024 (cases), not 1000000"),
    ("kernel_size=99", "error: kernel_size must be an odd number from 1 to 15, not 99"),
    ("lr=.inf", "error: lr must be a finite number, not inf"),
    ("lr=inf", "error: lr must be a finite number, not inf"),
    ("lr=-.inf", "error: lr must be a finite number, not -inf"),
    ("lr=.nan", "error: lr must be a finite number, not nan"),
    ("lr=5", "error: lr must be above 0 and at most 1, not 5.0"),
    ("zoom=[.inf,.inf]", "error: zoom must be 2 numbers from 0 to 10 (low and high factors), not [inf, inf]"),
    ("zoom=[a,b]", "error: zoom must be 2 numbers from 0 to 10 (low and high factors), not ['a', 'b']"),
    ("batch_size=.inf", "error: batch_size must be an integer, not inf"),
    ("init_from=5", "error: init_from must be text (a path) or null, not 5"),
    (
        'lr=!!python/object/apply:os.system ["echo hi"]',
        "error: --set lr: cannot read '!!python/object/apply:os.system [\"echo hi\"]' as a value (could not determine a constructor",
    ),
    ("lr=[1, 2", "error: --set lr: cannot read '[1, 2' as a value ("),
]


@pytest.mark.parametrize("item, line", BAD_SETS, ids=[b[0] for b in BAD_SETS])
def test_nonsense_settings_are_one_line_before_any_io(tmp_path, capsys, no_data_read, item, line):
    out = tmp_path / "run"
    given = item.split() if item.startswith("--") else ["--set", item]  # after TINY: these override it
    assert cli(["train", "--variant", "r_ae", *TINY, "--out", str(out), *given]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(line)
    assert not out.exists()


FLOAT_FIELDS = [f.name for f in dataclasses.fields(Config) if isinstance(f.default, float)]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_setting_refuses_non_finite_numbers(name, value):
    assert {"lr", "lm", "ls", "weight_decay", "test_fraction"} <= set(FLOAT_FIELDS)
    with pytest.raises(ConfigError, match=f"^{name} must be a finite number"):
        load_config("smoke", **{name: value})


def test_a_hand_edited_config_json_is_checked_as_the_command_line_is(tmp_path):
    run = tiny_run_folder(tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    for key, value, words in [("unet_width", 10**6, "unet_width must be at least 1 and at most 128"), ("seed", 1e20, "seed must be at least 0 and at most"),
                              ("channels", [0, 0, 0, 0], "channels must be 4 integers"), ("zoom", [1, "x"], "zoom must be 2 numbers")]:  # fmt: skip
        (run / "config.json").write_text(json.dumps({**cfg, key: value}))
        with pytest.raises(RunDirError, match=words):
            config_from_run(run)


def test_integers_in_float_notation_are_read_and_sizes_at_their_bounds_accepted():
    cfg = load_config("smoke", variant="r_ae", epochs="1e1", seed="2.0", unet_width=config_mod.MAX_UNET_WIDTH, image_size=MAX_IMAGE_SIZE)
    assert (cfg.epochs, cfg.seed, cfg.unet_width, cfg.image_size) == (10, 2, 128, MAX_IMAGE_SIZE)
    assert load_config("smoke", seed=config_mod.MAX_SEED, channels=[1024, 1024, 1024, 1024]).channels == (1024,) * 4


# ---------------------------------------------------------------------------------------------
# too few cases: refused before anything runs; too few test cases: "too few to judge"
# ---------------------------------------------------------------------------------------------


def test_reproduce_on_two_pairs_is_refused_before_any_notebook(tmp_path, capsys, no_notebooks):
    data, _ = write_pair_folder(tmp_path / "two", n=2, size=64)
    out = tmp_path / "out"
    assert cli(["reproduce", "--profile", "smoke", "--data", str(data), "--out-root", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: {data}: 2 case(s) give 1 training, 0 validation and 1 test case(s); at least one training, "
        "one validation and one test case are needed: add cases (or change test_fraction / val_fraction)"
    )
    assert not out.exists()


def test_train_on_two_pairs_is_refused_before_anything_is_read_or_written(tmp_path, capsys, no_data_read):
    data, _ = write_pair_folder(tmp_path / "two", n=2, size=64)
    out = tmp_path / "run"
    assert cli(["train", "--variant", "ae", *TINY, "--data", str(data), "--out", str(out)]) == 2
    assert f"error: {data}: 2 case(s) give 1 training, 0 validation and 1 test case(s)" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_the_phantom_with_a_split_that_leaves_no_training_case_is_refused(tmp_path, capsys, no_data_read):
    out = tmp_path / "run"
    assert cli(["train", "--variant", "ae", *TINY, "--set", "n_phantom=3", "--set", "test_fraction=0.9", "--out", str(out)]) == 2
    assert "error: the phantom (n_phantom=3): 3 case(s) give 1 training, 0 validation and 2 test case(s)" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_three_pairs_give_one_case_to_each_part_and_pass_the_check(tmp_path):
    data, ids = write_pair_folder(tmp_path / "three", n=3, size=64)
    assert part_sizes(checked_split(ids, 0.15, 0.10, 0, data)) == {"train": 1, "val": 1, "test": 1}
    pipeline.check_data(pipeline.Request("smoke", str(data)))  # reproduce runs on them: its claims then say too few (below)
    with pytest.raises(DataError, match="0 validation"):
        checked_split(ids[:2], 0.15, 0.10, 0, data)
    assert part_sizes(checked_split(ids[:2], 0.15, 0.0, 0, data)) == {"train": 1, "val": 0, "test": 1}  # none asked for


def _claims_table(n_cases, gain=1.0, seeds=(0,)):
    """Per-image PSNR and SSIM where DAE beats AE by ``gain`` dB on each of ``n_cases`` test cases."""
    rows = []
    for seed in seeds:
        for i in range(n_cases):
            for method, d in ((IDENTITY, -3.0), ("AE", 0.0), ("DAE", gain + 0.01 * (i % 3))):
                rows.append({"case_id": f"C{i}", "seed": seed, "method": method, "psnr": 30 + 0.1 * i + d, "ssim": 0.9 + 0.001 * d + 0.0001 * (i % 2)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_cases", [1, 3, MIN_TEST_CASES - 1])
def test_claims_on_fewer_test_cases_than_the_minimum_are_too_few_to_judge(n_cases):
    lines = table1.claims(_claims_table(n_cases))
    assert lines and all("too few test cases to judge" in c for c in lines), lines
    assert not any(word in c for c in lines for word in (": holds", "does not hold", "contradicted", "is not shown"))
    improves = [c for c in lines if "improves the AE" in c][0]
    assert f"too few test cases to judge ({n_cases} test case{'s' if n_cases > 1 else ''}, at least {MIN_TEST_CASES} needed) here (DAE vs AE" in improves
    assert "better on" in improves  # the numbers are still shown


def test_one_test_image_has_an_infinite_interval_and_is_not_judged_even_over_seeds():
    r = table1.paired_difference(_claims_table(1), "DAE", "AE", "psnr")
    assert r["n"] == 1 and r["cases"] == 1 and math.isinf(r["half"])
    over_seeds = table1.claims(_claims_table(1, seeds=(0, 1, 2)))  # finite interval over 3 seeds, still 1 image
    assert all("too few test cases to judge (1 test case," in c for c in over_seeds)


def test_claims_on_the_minimum_number_of_test_cases_are_judged():
    lines = table1.claims(_claims_table(MIN_TEST_CASES))
    assert "improves the AE: holds here (DAE vs AE" in [c for c in lines if "improves the AE" in c][0]
    assert "beats doing nothing (identity, 27.25 dB): holds here." in [c for c in lines if "beats doing nothing" in c][0]
    assert not any("too few" in c for c in lines)


def test_when_both_layouts_hold_images_the_choice_is_logged(tmp_path, caplog):
    from dae_lib.data import find_pairs

    root, flat_ids = write_pair_folder(tmp_path / "d", n=3, size=64, layout="flat")
    _, kaggle_ids = write_pair_folder(root, n=4, size=64, layout="kaggle", seed=10)
    with caplog.at_level(logging.INFO, logger="dae_lib.data"):
        pairs = find_pairs(root)
    assert len(pairs) == 4 and all("JSRT/JSRT" in str(p.x_path) for p in pairs)  # the Kaggle layout is read
    warning = [r for r in caplog.records if "both data layouts" in r.getMessage()]
    assert len(warning) == 1 and warning[0].levelno == logging.WARNING
    msg = warning[0].getMessage()
    assert f"using the kaggle one ({root / 'JSRT' / 'JSRT'}, {root / 'BSE_JSRT' / 'BSE_JSRT'})" in msg
    assert f"ignoring the flat one ({root / 'JSRT'}, {root / 'BSE_JSRT'})" in msg
    caplog.clear()
    write_pair_folder(tmp_path / "only_flat", n=3, size=64)
    with caplog.at_level(logging.INFO, logger="dae_lib.data"):
        find_pairs(tmp_path / "only_flat")
    assert "both data layouts" not in caplog.text


# ---------------------------------------------------------------------------------------------
# --out-root relative to the current folder; image_size bounded and in the fingerprint
# ---------------------------------------------------------------------------------------------


def test_out_root_is_taken_from_the_current_folder_not_the_repository(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_reproduce(request, **kw):
        seen["out_root"] = request.out_root
        raise pipeline.PipelineError("stopped by the test")  # nothing trains

    monkeypatch.setattr(pipeline, "reproduce", fake_reproduce)
    monkeypatch.chdir(tmp_path)
    assert cli(["reproduce", "--profile", "smoke", "--out-root", "rel"]) == 1
    assert seen["out_root"] == str(tmp_path / "rel")
    assert not (REPO_ROOT / "rel").exists()
    assert "stopped by the test" in capsys.readouterr().err


def test_image_size_beyond_the_bound_in_config_json_is_refused_when_loaded(tmp_path, capsys):
    run = tiny_run_folder(tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "image_size": 6144}))
    before = _snapshot(run)
    assert cli(["evaluate", str(run)]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {run / 'config.json'}: image_size must be at least 32 and at most {MAX_IMAGE_SIZE} (px), not 6144"
    )
    assert _snapshot(run) == before


def _with_fingerprint(run, cfg, drop=()):
    """Re-save the run's weights with ``cfg``'s fingerprint in their metadata (less the ``drop`` fields)."""
    path = run / "best.safetensors"
    record = {k: v for k, v in fingerprint(cfg).items() if k not in drop}
    save_file(load_file(str(path)), str(path), metadata={METADATA_KEY: json.dumps(record, sort_keys=True)})


def test_image_size_is_in_the_fingerprint_so_an_edited_config_json_cannot_change_it(tmp_path):
    run = tiny_run_folder(tmp_path / "run", image_size=64)
    _with_fingerprint(run, tiny_config(variant="ae", image_size=64))
    load_model(run)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "image_size": 1024}))
    with pytest.raises(WeightsError, match=r"image_size 64 \(config.json: 1024\)"):
        load_model(run)


def test_weights_recorded_before_image_size_was_fingerprinted_still_load(tmp_path):
    run = tiny_run_folder(tmp_path / "run", image_size=64)
    _with_fingerprint(run, tiny_config(variant="ae", image_size=64), drop=("image_size",))
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "image_size": 128}))
    assert isinstance(load_model(run), torch.nn.Module)  # unchecked on image_size; bounded by its range
    (run / "config.json").write_text(json.dumps({**cfg, "variant": "ae_msssim", "image_size": 192}))
    with pytest.raises(WeightsError, match="variant 'ae'"):  # the fields it records are still checked
        load_model(run)
    assert load_released() is not None  # the released weights (recorded without a fingerprint) load


@pytest.mark.parametrize("text", ["false", "no", "0", "true"])
def test_config_itself_refuses_text_for_a_true_or_false_setting(text):
    """Config's own type check, not only the command line's: a hand-edited config.json or a
    direct Config(augment="false") would otherwise read as True."""
    from dae_lib.config import Config, config_from_dict

    with pytest.raises(ConfigError, match="augment must be true or false"):
        Config(augment=text)
    with pytest.raises(ConfigError, match="augment must be true or false"):
        config_from_dict({**Config().to_dict(), "augment": text})
