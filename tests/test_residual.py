"""The improved family: residual U-Net shapes, its residual form, the head off at inference, training settings."""
import pytest
import torch

from dae_lib.config import load_config
from dae_lib.errors import WeightsError
from dae_lib.models import build_model, get_variant, variants
from dae_lib.inference import predict
from dae_lib.runs import load_model
from dae_lib.models.residual_unet import ResidualUNet, level_widths
from dae_lib.train import fit, learning_rate
from helpers import tiny_config


def test_family_is_separately_named_and_has_the_four_way_ablation():
    r = variants("residual")
    assert list(r) == ["r_ae", "r_ae_msssim", "r_dae", "r_dae_msssim"]
    assert [v.label for v in r.values()] == ["R-AE", "R-AE + MS-SSIM", "R-DAE", "R-DAE + MS-SSIM"]
    assert not set(r) & set(variants("reproduced"))
    cfg = load_config("quick", variant="r_dae_msssim")
    assert isinstance(build_model(cfg), ResidualUNet) and cfg.use_seg and cfg.use_msssim
    assert cfg.optimizer == "adamw" and cfg.schedule == "cosine" and cfg.unet_width == 8 and cfg.epochs == 15  # family defaults + profile section
    paper = load_config("quick", variant="dae_msssim")
    assert (paper.optimizer, paper.schedule, paper.lr, paper.ls) == ("adam", "constant", 1e-3, 0.01)  # the paper's untouched


@pytest.mark.parametrize("size", [(64, 64), (50, 70), (192, 192)])
def test_shapes_any_input_size(size):
    m = ResidualUNet(width=4, depth=4, seg_head=True)
    x = torch.rand(2, 1, *size)
    s_hat, logits = m(x)
    assert s_hat.shape == x.shape and logits.shape == x.shape
    assert len(m.encoder(torch.rand(1, 1, 64, 64))) == 5  # four poolings + the bottleneck
    assert level_widths(16, 4) == [16, 32, 64, 128, 128]


def test_output_is_the_radiograph_minus_the_estimated_bone_and_starts_at_identity():
    torch.manual_seed(0)
    m = ResidualUNet(width=4, depth=3).eval()
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(m(x)[0], x)  # zero-initialised last layer: B_hat = 0, S_hat = X
        torch.nn.init.normal_(m.bone_decoder.out.weight, std=0.1)
        s_hat, _ = m(x)
        assert torch.allclose(s_hat, (x - m.bone(x)).clamp(0, 1))
        assert not torch.equal(s_hat, x) and s_hat.min() >= 0 and s_hat.max() <= 1


def test_segmentation_head_runs_in_training_only():
    m = ResidualUNet(width=4, depth=3, seg_head=True)
    calls = []
    m.bone_seg.register_forward_hook(lambda *a: calls.append(1))
    x = torch.rand(1, 1, 32, 32)
    assert m.train()(x)[1] is not None and len(calls) == 1
    assert m.eval()(x)[1] is None and len(calls) == 1
    predict(m, x)
    assert len(calls) == 1
    ae = ResidualUNet(width=4, depth=3)
    assert ae.bone_seg is None and ae.train()(x)[1] is None


def test_cosine_schedule_warms_up_then_decays_and_constant_stays():
    cfg = tiny_config(schedule="cosine", lr=1e-2)
    lrs = [learning_rate(cfg, k, 100) for k in range(100)]
    peak = max(range(100), key=lambda k: lrs[k])
    assert lrs[0] < 0.1 * cfg.lr and lrs[peak] == pytest.approx(cfg.lr) and 3 <= peak <= 6
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :])) and lrs[-1] < 0.02 * cfg.lr
    assert {learning_rate(tiny_config(), k, 100) for k in range(100)} == {tiny_config().lr}


def test_cosine_resume_is_exact_and_init_from_starts_from_given_weights(tiny_data, tmp_path):
    cfg = tiny_config(variant="r_dae", unet_width=4, epochs=3, schedule="cosine", optimizer="adamw")
    a = fit(cfg, tmp_path / "straight", data=tiny_data, progress=False)
    fit(cfg, tmp_path / "resumed", data=tiny_data, progress=False, max_epochs=1)
    b = fit(cfg, tmp_path / "resumed", data=tiny_data, progress=False)
    wa, wb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # a 2nd stage (e.g. 512 px) starts from the first stage's best weights
    stage2 = tiny_config(variant="r_dae", unet_width=4, epochs=1, lr=1e-12, init_from=str(tmp_path / "straight"))
    res = fit(stage2, tmp_path / "stage2", data=tiny_data, progress=False)
    start = load_model(tmp_path / "straight")
    assert all(torch.allclose(res.model.state_dict()[k].float(), v.float(), atol=1e-4) for k, v in start.state_dict().items() if v.is_floating_point() and "running" not in k)
    import json

    assert json.loads((tmp_path / "stage2" / "provenance.json").read_text())["init_from"]["sha256"]
    with pytest.raises(WeightsError, match="do not fit"):  # another family's weights
        fit(tiny_config(variant="dae", epochs=1, init_from=str(tmp_path / "straight")), tmp_path / "x", data=tiny_data, progress=False)


def test_the_improved_family_learns_to_beat_doing_nothing_on_the_phantom(tiny_data, tmp_path):
    from dae_lib import metrics
    from dae_lib.reporting.evaluate import run_part

    cfg = tiny_config(variant="r_ae", unet_width=8, epochs=12, batch_size=2, lr=3e-3, augment=False)
    res = fit(cfg, tmp_path / "run", data=tiny_data, progress=False)
    val = run_part(tiny_data, tmp_path / "run", "val")
    identity = float(metrics.psnr(val.x, val.s).mean())
    assert res.history[-1]["val_psnr"] > identity + 3.0  # it removes bone, not just copies X
    assert get_variant(cfg.variant).family == "residual"


def test_release_folder_loads_reproduces_its_card_and_holds_no_machine_path(tiny_data, tmp_path, monkeypatch):
    import json

    from dae_lib import runs

    from dae_lib.studies import release
    from dae_lib.reporting.evaluate import IDENTITY, evaluate_run, summarize

    run = tmp_path / "run"
    fit(tiny_config(variant="r_dae", unet_width=4, epochs=1, init_from=None), run, data=tiny_data, progress=False)
    out = release.write_release(run, tmp_path / "released" / "r_dae-phantom", tiny_data, log=lambda *a: None)
    assert sorted(p.name for p in out.iterdir()) == ["best.safetensors", "config.json", "data.json", "model_card.json", "model_card.md", "split.csv"]
    for p in out.iterdir():
        if p.suffix != ".safetensors":
            assert str(tmp_path) not in p.read_text() and "/root/" not in p.read_text(), p.name
    card = json.loads((out / "model_card.json").read_text())
    monkeypatch.setattr(runs, "RELEASED_DIR", out.parent)
    model = runs.load_released("r_dae-phantom")
    assert not model.training and model.bone_seg is not None
    # the card's test numbers are what the weights give on the split it names
    (tmp_path / "again").mkdir()
    for name in ("config.json", "split.csv", "best.safetensors"):
        (tmp_path / "again" / name).write_bytes((out / name).read_bytes())
    again = summarize(evaluate_run(tmp_path / "again", tiny_data))
    assert again.loc["R-DAE", "psnr_mean"] == pytest.approx(card["test_metrics"]["R-DAE"]["psnr"]["mean"], abs=1e-9)
    assert again.loc[IDENTITY, "bsr_mean"] == 0
    assert "not for diagnosis" in (out / "model_card.md").read_text().lower() or "not a medical device" in (out / "model_card.md").read_text().lower()
    with pytest.raises(WeightsError, match="no released model 'nope'"):
        runs.load_released("nope")


def test_init_from_released_names_the_released_weights_and_a_mismatched_network_is_refused(tiny_data, tmp_path):
    from dae_lib.runs import released_folder
    from dae_lib.train import RELEASED, initial_weights_file

    cfg = tiny_config(variant="r_ae", unet_width=4, epochs=1, init_from=RELEASED)
    assert initial_weights_file(cfg) == released_folder() / "best.safetensors" and initial_weights_file(cfg).is_file()
    with pytest.raises(WeightsError, match="r_ae_msssim"):  # another variant, width 4: not the released network
        fit(cfg, tmp_path / "tune", data=tiny_data, progress=False)
