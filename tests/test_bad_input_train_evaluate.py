"""train / evaluate used carelessly or with hostile input: one line, exit 2, nothing of the user's touched.

By subject: the split is pinned to the run; a run folder is ours or left alone; one-line errors
instead of tracebacks; settings checked before any I/O; wrong data refused or handled; lock, file
modes, full disk, weights fingerprint.
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from dae_lib import train as train_mod
from dae_lib.cli import main as cli
from dae_lib.data import find_pairs, load_folder
from dae_lib.errors import DataError, RunDirError, WeightsError
from dae_lib.reporting.evaluate import evaluate_run
from dae_lib.runs import load_model, run_lock
from dae_lib.split import read_split_csv
from dae_lib.train import fit
from helpers import bomb_png, tiny_config, write_pair_folder

TINY = ["--profile", "smoke", "--image-size", "64", "--epochs", "2", "--amp", "off", "--quiet", "--set", "n_phantom=8"]


def _snapshot(folder):
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def _one_error_line(err):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith(("error:", "interrupted:")), err
    assert "Traceback" not in err, err
    return lines[-1]


@pytest.fixture
def folder8(tmp_path):
    root, ids = write_pair_folder(tmp_path / "data", n=8, size=64)
    return root


def _train_cli(out, *extra, data=None):
    args = ["train", "--variant", "ae", *TINY, "--out", str(out), *extra]
    return cli(args + (["--data", str(data)] if data else []))


# ---------------------------------------------------------------------------------------------
# the split is pinned to the run
# ---------------------------------------------------------------------------------------------


def test_grown_folder_new_cases_never_scored_and_resume_keeps_the_split(folder8, tmp_path):
    run = tmp_path / "run"
    assert _train_cli(run, "--max-epochs", "1", data=folder8) == 0
    split_before = (run / "split.csv").read_bytes()
    test_cases = {c for c, part in read_split_csv(run / "split.csv").items() if part == "test"}
    extra = tmp_path / "extra"
    _, new_ids = write_pair_folder(extra, n=4, size=64, seed=50)
    for sub in ("JSRT", "BSE_JSRT"):
        for f in (extra / sub).glob("*.png"):
            shutil.copy(f, folder8 / sub / f.name.replace("JPC", "NEW"))
    scored = set(evaluate_run(run)["case_id"])
    assert scored == test_cases  # only the run's own test cases
    assert _train_cli(run, data=folder8) == 0  # resume: uses split.csv, new cases unused
    assert (run / "split.csv").read_bytes() == split_before


def test_changed_or_missing_files_are_refused_by_name(tmp_path, capsys):
    data, _ = write_pair_folder(tmp_path / "data", n=8, size=64)
    run = tmp_path / "run"
    assert _train_cli(run, "--max-epochs", "1", data=data) == 0
    split = read_split_csv(run / "split.csv")
    test_case = sorted(c for c, p in split.items() if p == "test")[0]
    train_case = sorted(c for c, p in split.items() if p == "train")[0]
    before = _snapshot(run)
    img = data / "JSRT" / f"{train_case}.png"
    a = np.asarray(Image.open(img)).copy()
    a[0, 0] ^= 1
    Image.fromarray(a).save(img)
    assert _train_cli(run, data=data) == 2  # resume refused, naming the case
    assert train_case in _one_error_line(capsys.readouterr().err)
    assert _snapshot(run) == before
    (data / "BSE_JSRT" / f"{test_case}.png").unlink()
    (data / "JSRT" / f"{test_case}.png").unlink()
    with pytest.raises(DataError, match=test_case):
        evaluate_run(run)


# ---------------------------------------------------------------------------------------------
# a run folder is recognised by our marker; a refusal changes nothing
# ---------------------------------------------------------------------------------------------


def test_a_users_folder_with_a_config_json_is_not_touched(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "config.json").write_text('{"my_app": 1}')
    (d / "log.csv").write_text("data\n")
    before = _snapshot(d)
    assert _train_cli(d) == 2
    assert "no run of ours" in _one_error_line(capsys.readouterr().err)
    assert _snapshot(d) == before


def test_refused_resume_changes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train_cli(run) == 0
    before = _snapshot(run)
    assert cli(["train", "--variant", "ae", *TINY, "--out", str(run), "--epochs", "1"]) == 2
    assert "more than the 1 asked" in _one_error_line(capsys.readouterr().err)
    assert cli(["train", "--variant", "ae", *TINY, "--out", str(run), "--set", "lr=0.5"]) == 2
    assert "different configuration (lr)" in _one_error_line(capsys.readouterr().err)
    assert _snapshot(run) == before


# ---------------------------------------------------------------------------------------------
# one line, exit 2, for each case that gave a traceback
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(tmp_path, capsys):
    assert _train_cli(tmp_path / "run", "--device", "cuda") == 2
    assert "no CUDA" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ae"
    assert _train_cli(run) == 0
    return run


def _copy_run(run, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


def test_evaluate_missing_folder(tmp_path, capsys):
    assert cli(["evaluate", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_evaluate_without_or_with_truncated_weights(finished_run, tmp_path, capsys, damage):
    run = _copy_run(finished_run, tmp_path)
    w = run / "best.safetensors"
    if damage == "missing":
        w.unlink()
    else:
        w.write_bytes(w.read_bytes()[:100])
    assert cli(["evaluate", str(run)]) == 2
    assert "best.safetensors" in _one_error_line(capsys.readouterr().err)


def test_evaluate_a_run_trained_on_cuda_on_this_machine(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    cfg["device"] = "cuda"
    (run / "config.json").write_text(json.dumps(cfg))
    assert cli(["evaluate", str(run)]) == 0  # runs where it can: --device auto
    if not torch.cuda.is_available():
        assert cli(["evaluate", str(run), "--device", "cuda"]) == 2
        assert "no CUDA" in _one_error_line(capsys.readouterr().err)


def test_out_naming_an_existing_file(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    assert _train_cli(f) == 2
    assert "existing file" in _one_error_line(capsys.readouterr().err)
    assert f.read_text() == "mine"


def test_decompression_bomb_in_the_data(folder8, tmp_path, capsys):
    victim = sorted((folder8 / "JSRT").glob("*.png"))[0]
    bomb_png(victim)
    assert _train_cli(tmp_path / "run", data=folder8) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert victim.name in line and "decompression-bomb" in line
    assert not (tmp_path / "run").exists()


def test_unreadable_data_folder(folder8, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    real = Path.iterdir

    def deny(self):
        if self.name == "JSRT":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", deny)
    assert _train_cli(tmp_path / "run", data=folder8) == 2
    assert "Permission denied" in _one_error_line(capsys.readouterr().err)


def test_weights_of_another_architecture(finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    cfg["variant"] = "dae"  # the same weights, now claimed to have a segmentation head
    (run / "config.json").write_text(json.dumps(cfg))
    assert cli(["evaluate", str(run)]) == 2
    assert "do not fit" in _one_error_line(capsys.readouterr().err)


def test_ctrl_c_says_where_to_resume_and_resume_is_exact(tmp_path, monkeypatch, capsys):
    ref = tmp_path / "ref"
    assert cli(["train", "--variant", "ae", *TINY, "--epochs", "3", "--out", str(ref)]) == 0
    real = train_mod.train_epoch

    def interrupt_at_2(model, opt, data, cfg, epoch, *a, **k):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(model, opt, data, cfg, epoch, *a, **k)

    run = tmp_path / "run"
    monkeypatch.setattr(train_mod, "train_epoch", interrupt_at_2)
    assert cli(["train", "--variant", "ae", *TINY, "--epochs", "3", "--out", str(run)]) == 130
    line = _one_error_line(capsys.readouterr().err)
    assert str(run) in line and "1 of 3 epochs are saved" in line and "resume" in line
    monkeypatch.setattr(train_mod, "train_epoch", real)
    assert cli(["train", "--variant", "ae", *TINY, "--epochs", "3", "--out", str(run)]) == 0
    from safetensors.torch import load_file

    a, b = load_file(str(ref / "last.safetensors")), load_file(str(run / "last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# every setting checked before anything is read or written
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--epochs", "-3"], "epochs must be at least 1"),
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--image-size", "0"], "image_size must be at least 32"),
        (["--set", "batch_size=0"], "batch_size must be at least 1"),
        (["--set", "augment=treu"], "augment"),
        (["--polarity", "inverted"], "phantom"),
        (["--set", "lr=-1"], "lr must be above 0"),
    ],
)
def test_bad_settings_fail_before_any_io(tmp_path, monkeypatch, capsys, extra, words):
    monkeypatch.setattr("dae_lib.train.load_data", lambda *a, **k: pytest.fail("data read before the settings were checked"))
    assert cli(["train", "--variant", "ae", *TINY, "--out", str(tmp_path / "run"), *extra]) == 2
    assert words in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# wrong data: refused by name, or handled with a note
# ---------------------------------------------------------------------------------------------


def test_twelve_bit_values_in_sixteen_bit_files_use_the_full_range(tmp_path, caplog):
    root, _ = write_pair_folder(tmp_path / "d", n=4, size=64, bits=16)
    for f in root.rglob("*.png"):  # rewrite as the JSRT originals are: 12-bit values
        a = np.asarray(Image.open(f)).astype(np.float64)
        Image.fromarray(np.rint(a / 65535 * 4095).astype(np.uint16)).save(f)
    import logging

    with caplog.at_level(logging.INFO):
        d = load_folder(root, 64)
    assert float(d.x.max()) > 0.5  # not squeezed into [0, 0.0625]
    assert "12 bits" in caplog.text


def test_identical_pair_and_constant_image_are_refused_by_name(tmp_path):
    root, ids = write_pair_folder(tmp_path / "d", n=4, size=64)
    shutil.copy(root / "JSRT" / f"{ids[0]}.png", root / "BSE_JSRT" / f"{ids[0]}.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(root / "JSRT" / f"{ids[1]}.png")
    with pytest.raises(DataError) as e:
        load_folder(root, 64)
    assert f"{ids[0]}.png" in str(e.value) and "identical" in str(e.value)
    assert f"{ids[1]}.png" in str(e.value) and "constant" in str(e.value)


def test_hidden_macos_files_are_skipped(tmp_path):
    root, ids = write_pair_folder(tmp_path / "d", n=4, size=64)
    (root / "JSRT" / f"._{ids[0]}.png").write_bytes(b"\0\5\26\7")
    assert [p.case_id for p in find_pairs(root)] == sorted(ids)


def test_an_empty_kaggle_folder_does_not_hide_a_flat_layout(tmp_path):
    root, ids = write_pair_folder(tmp_path / "d", n=4, size=64)
    (root / "JSRT" / "JSRT").mkdir()
    (root / "BSE_JSRT" / "BSE_JSRT").mkdir()
    assert [p.case_id for p in find_pairs(root)] == sorted(ids)


# ---------------------------------------------------------------------------------------------
# lock, file modes, full disk, fingerprint
# ---------------------------------------------------------------------------------------------


def test_two_trainings_into_one_folder(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        with pytest.raises(RunDirError, match="another training"):
            fit(tiny_config(variant="ae", n_phantom=8), run, progress=False)


def test_written_files_have_the_usual_mode(tmp_path):
    from dae_lib.atomic import write_json_atomic

    old = os.umask(0o022)
    try:
        p = write_json_atomic(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644


def test_full_disk_is_one_line_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    real = train_mod.save_weights
    calls = {"n": 0}

    def fill_up(model, path, cfg=None):
        calls["n"] += 1
        if calls["n"] > 2:  # best + last of epoch 1 written, then the disk is full
            raise OSError(28, "No space left on device")
        return real(model, path, cfg)

    monkeypatch.setattr(train_mod, "save_weights", fill_up)
    run = tmp_path / "run"
    assert _train_cli(run) == 2
    assert "No space left on device" in _one_error_line(capsys.readouterr().err)
    assert (run / "checkpoint.pt").is_file()
    monkeypatch.setattr(train_mod, "save_weights", real)
    assert _train_cli(run) == 0


def test_config_edited_to_another_loss_does_not_relabel_the_weights(finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    cfg["variant"] = "ae_msssim"  # same architecture, another loss: only the fingerprint tells
    cfg["image_size"] = 192
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="ae_msssim"):
        load_model(run)


def test_float_images_outside_unit_range_are_refused_not_rescaled_one_by_one(tmp_path):
    """Each would be stretched by its own range, so X and S of a pair would no longer compare."""
    root, ids = write_pair_folder(tmp_path / "d", n=4, size=64)
    a = np.asarray(Image.open(root / "JSRT" / f"{ids[0]}.png"), dtype=np.float32) * 4.0
    (root / "JSRT" / f"{ids[0]}.png").unlink()
    Image.fromarray(a, mode="F").save(root / "JSRT" / f"{ids[0]}.tif")
    with pytest.raises(DataError, match=f"{ids[0]}.tif"):
        load_folder(root, 64)
