"""Training: logs, checkpoints, weights that load safely, exact resume, seeds that work, learning."""
import csv

import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_config
from dae_lib.reporting.evaluate import IDENTITY, evaluate_run
from dae_lib.errors import RunDirError
from dae_lib.runs import load_model
from dae_lib.train import fit


def _weights(path):
    return load_file(str(path))


def test_run_folder_contents_and_weights_load_safely(tiny_data, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(), out, data=tiny_data, progress=False)
    for name in ("config.json", "split.csv", "log.csv", "checkpoint.pt", "last.safetensors", "best.safetensors", "provenance.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_mse", "train_seg", "val_loss", "val_psnr", "val_ssim", "seconds"} <= set(rows[0])
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)  # no pickle of arbitrary objects
    assert ckpt["epoch"] == 1
    model = load_model(out)
    assert not model.training
    assert set(_weights(out / "best.safetensors")) == set(model.state_dict())


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_data, tmp_path):
    cfg = tiny_config(epochs=3)
    fit(cfg, tmp_path / "straight", data=tiny_data, progress=False)
    fit(cfg, tmp_path / "resumed", data=tiny_data, progress=False, max_epochs=1)
    assert len(list(csv.DictReader(open(tmp_path / "resumed" / "log.csv")))) == 1
    fit(cfg, tmp_path / "resumed", data=tiny_data, progress=False)  # picks up at epoch 2
    a, b = _weights(tmp_path / "straight" / "last.safetensors"), _weights(tmp_path / "resumed" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = list(csv.DictReader(open(tmp_path / "resumed" / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    fit(tiny_config(epochs=4), tmp_path / "resumed", data=tiny_data, progress=False)  # more epochs: continues
    with pytest.raises(RunDirError, match="4 epochs, more than the 2"):
        fit(tiny_config(epochs=2), tmp_path / "resumed", data=tiny_data, progress=False)


def test_same_seed_same_numbers_different_seed_different(tiny_data, tmp_path):
    cfg = tiny_config(epochs=1, variant="ae")
    fit(cfg, tmp_path / "a", data=tiny_data, progress=False)
    fit(cfg, tmp_path / "b", data=tiny_data, progress=False)
    fit(tiny_config(epochs=1, variant="ae", seed=1), tmp_path / "c", data=tiny_data, progress=False)
    wa, wb, wc = (_weights(tmp_path / n / "last.safetensors") for n in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_foreign_or_mismatched_folders_are_left_alone(tiny_data, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("user data")
    with pytest.raises(RunDirError, match="not empty"):
        fit(tiny_config(epochs=1), foreign, data=tiny_data, progress=False)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    fit(tiny_config(epochs=1), tmp_path / "run", data=tiny_data, progress=False)
    before = (tmp_path / "run" / "last.safetensors").read_bytes()
    with pytest.raises(RunDirError, match="different configuration.*variant"):
        fit(tiny_config(epochs=1, variant="ae"), tmp_path / "run", data=tiny_data, progress=False)
    assert (tmp_path / "run" / "last.safetensors").read_bytes() == before


def test_training_reduces_the_loss_and_evaluation_reports_identity(tiny_data, tmp_path):
    cfg = tiny_config(variant="ae", epochs=6, batch_size=2, augment=False, lr=3e-3)
    res = fit(cfg, tmp_path / "run", data=tiny_data, progress=False)
    losses = [r["train_loss"] for r in res.history]
    assert losses[-1] < 0.5 * losses[0]
    df = evaluate_run(tmp_path / "run", tiny_data)
    assert set(df["method"]) == {IDENTITY, "AE"}
    ident = df[df["method"] == IDENTITY]
    assert (ident["bsr"].abs() < 1e-9).all()  # the identity suppresses nothing, by definition
    assert len(ident) == sum(v == "test" for v in res.split.values())


def test_bf16_autocast_path_runs_on_this_cpu(tiny_data, tmp_path):
    from dae_lib.device import bf16_supported, resolve_amp

    dev = torch.device("cpu")
    if not bf16_supported(dev):
        assert resolve_amp("auto", dev) is None
        with pytest.raises(RuntimeError, match="bf16"):
            resolve_amp("bf16", dev)
        pytest.skip("this CPU has no native bf16")
    res = fit(tiny_config(epochs=1, amp="bf16"), tmp_path / "run", data=tiny_data, progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for v in res.history[0].values())


def test_distillation_trains_toward_the_teachers_mean_and_records_them(tiny_data, tmp_path, monkeypatch):
    """Config.teachers / distill (beyond the paper): with w = 1 the target each step is the teachers'
    mean estimate on that very radiograph (captured where the loss receives it), at w = 0.25 a quarter
    of it (losses.distilled_target); a run records its teachers with their weights' hashes; a missing
    teacher is refused before the run folder exists; teachers without a weight are a ConfigError."""
    import json

    import dae_lib.train as train
    from dae_lib.config import ConfigError
    from dae_lib.errors import WeightsError
    from dae_lib.losses import distilled_target
    from helpers import tiny_run_folder

    a, b = tiny_run_folder(tmp_path / "a", seed=1), tiny_run_folder(tmp_path / "b", seed=2)
    inputs = []

    class Recorded(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            inputs.append(x.detach().clone())
            return self.model(x)

    teachers = [Recorded(load_model(a)), load_model(b)]
    targets = []
    real = train.total_loss
    monkeypatch.setattr(train, "total_loss", lambda s_hat, s, *r, **k: (targets.append(s.detach().clone()), real(s_hat, s, *r, **k))[1])
    cfg = tiny_config(variant="ae", teachers=(str(a), str(b)), distill=1.0, augment=False, batch_size=4)
    student = load_model(a)
    student.train()
    train.train_epoch(student, torch.optim.SGD(student.parameters(), lr=0.0), tiny_data, cfg, 0, teachers=teachers)
    assert len(targets) == len(inputs) == 3
    with torch.no_grad():
        for x, t in zip(inputs, targets):
            expected = (teachers[0].model(x)[0] + teachers[1](x)[0]) / 2
            torch.testing.assert_close(t, expected)
    s, mean = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(distilled_target(s, mean, 0.25), 0.75 * s + 0.25 * mean)
    torch.testing.assert_close(distilled_target(s, mean, 0.0), s)

    monkeypatch.setattr(train, "total_loss", real)
    fit(tiny_config(variant="ae", teachers=(str(a), str(b)), distill=0.5, epochs=1), tmp_path / "run", data=tiny_data, progress=False)
    recorded = json.loads((tmp_path / "run" / "provenance.json").read_text())["teachers"]
    assert [len(t["sha256"]) for t in recorded] == [64, 64] and recorded[0]["file"].endswith("a/best.safetensors")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["teachers"] == [str(a), str(b)]
    with pytest.raises(WeightsError, match="nowhere"):
        fit(tiny_config(variant="ae", teachers=(str(tmp_path / "nowhere"),), distill=0.5), tmp_path / "run2", data=tiny_data, progress=False)
    assert not (tmp_path / "run2").exists()
    for bad in (dict(teachers=(str(a),)), dict(distill=0.5), dict(teachers="a", distill=0.5), dict(teachers=(str(a),), distill=1.5)):
        with pytest.raises(ConfigError):
            tiny_config(variant="ae", **bad)


def test_training_progress_in_a_notebook_is_one_line_updated_in_place(monkeypatch):
    """In a kernel, EpochLine shows one text output and updates it (a stored notebook keeps the last
    state, never a bar at 0 % or a widget); outside one it is a tqdm bar and displays nothing."""
    from dae_lib import train as train_module

    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj if raw else repr(obj)))

    def fake_display(obj, raw=False, display_id=False):
        shown.append(("display", obj if raw else repr(obj)))  # IPython shows a str's repr, quotes and all
        return Handle()

    monkeypatch.setattr(train_module, "display", fake_display)
    monkeypatch.setattr(train_module, "get_ipython", lambda: type("Shell", (), {"kernel": object()})())
    line = train_module.EpochLine("dae", 0, 2)
    for k in (1, 2):
        line.update(k, {"epoch": k, "train_loss": 0.5 / k, "val_psnr": 30.0 + k, "seconds": 1.0})
    line.close()
    assert shown[0] == ("display", {"text/plain": "dae: 0/2 epochs"}) and len([s for s in shown if s[0] == "display"]) == 1
    assert shown[-1] == ("update", {"text/plain": "dae: 2/2 epochs; epoch 2: training loss 0.25, validation PSNR 32.00 dB, 1.0 s"})
    monkeypatch.setattr(train_module, "get_ipython", lambda: None)
    shown.clear()
    terminal = train_module.EpochLine("dae", 1, 2, enabled=False)
    terminal.update(2, {"epoch": 2, "train_loss": 0.1, "seconds": 1.0})
    terminal.close()
    assert shown == [] and terminal.handle is None
