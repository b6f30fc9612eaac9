"""The fast paths give the same answers as the plain ones (speed itself is measured by
``python -m dae_lib.studies.bench``, never asserted here)."""
import pytest
import torch

from helpers import tiny_config
from dae_lib.studies import bench
from dae_lib.data import load_data
from dae_lib.inference import predict
from dae_lib.models.dae import DAE


def test_data_cache_returns_identical_tensors_and_notices_changed_files(tmp_path, monkeypatch, pair_folder):
    monkeypatch.setattr("dae_lib.data.CACHE_DIR", tmp_path / "cache")
    root, ids = pair_folder
    cfg = tiny_config(data_dir=str(root), image_size=48)
    first = load_data(cfg)
    assert len(list((tmp_path / "cache").glob("pairs-*.pt"))) == 1
    second = load_data(cfg)
    assert torch.equal(first.x, second.x) and torch.equal(first.m, second.m) and first.ids == second.ids
    assert str(second.polarity) == str(first.polarity) and second.files == first.files
    # a changed file gets a new cache entry, never the stale tensors
    from PIL import Image

    path = root / "JSRT" / f"{ids[0]}.png"
    Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path)
    third = load_data(cfg)
    assert not torch.equal(third.x[0], first.x[0])
    assert len(list((tmp_path / "cache").glob("pairs-*.pt"))) == 2


def test_channels_last_bf16_inference_matches_fp32_within_bf16_precision():
    torch.manual_seed(0)
    model = DAE((16, 32, 64, 64), 3, seg_branch=True).eval()
    x = torch.rand(2, 1, 64, 64)
    ref = predict(model, x, "off", channels_last=False)
    fast = predict(model, x, "auto", channels_last=True)
    assert (ref - fast).abs().max() < 0.02  # bf16 keeps 8 bits of mantissa (where the CPU has it)
    assert torch.allclose(ref, predict(model, x, "off", channels_last=True), atol=1e-5)


def test_benchmark_measures_each_configuration():
    from dae_lib.device import bf16_supported

    cpu_bf16 = bf16_supported(torch.device("cpu"))
    for kind, configs in (("train", bench.TRAIN_CONFIGS), ("infer", bench.INFER_CONFIGS)):
        for config in configs:
            if config == "+bf16" and not cpu_bf16:
                continue
            row = bench.measure(kind, config, size=192, batch=2, steps=1, variant="dae_msssim", device_name="cpu")
            assert row["images_per_s"] > 0 and row["peak_mem_mib"] > 0 and row["config"] == config
            assert row["device_name"].startswith("cpu") and "cuda" in row


def test_auto_precision_follows_the_device_rule():
    from dae_lib.device import FASTEST, bf16_supported, fastest, resolve_amp

    cpu = torch.device("cpu")
    assert fastest(cpu)["amp"] == ("bf16" if bf16_supported(cpu) else "off")
    assert resolve_amp("auto", cpu) == (torch.bfloat16 if bf16_supported(cpu) else None)
    assert resolve_amp("off", cpu) is None  # an explicit setting overrides the rule
    assert FASTEST["cuda"]["amp"] == "off"  # measured: bf16 slower than fp32 channels-last on an H200


def test_prediction_does_not_depend_on_the_batch_size():
    """The device's inference batch (device.FASTEST) changes speed, never the numbers beyond rounding."""
    from dae_lib.models import build_model

    cfg = tiny_config(variant="r_dae")
    model = build_model(cfg).eval()
    x = torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    one, auto, three = (predict(model, x, "off", b) for b in (1, None, 3))
    assert torch.allclose(one, three, atol=1e-6) and torch.allclose(one, auto, atol=1e-6)


def _fake_cuda_bench(monkeypatch, failing):
    monkeypatch.setattr(bench, "pick_device", lambda name="auto": torch.device("cuda"))  # no GPU used: measure is faked
    monkeypatch.setattr(bench, "bf16_supported", lambda d: True)

    def fake_measure(kind, config, size, batch, **kw):
        if config == failing:
            raise RuntimeError("inductor says no\nsecond line")
        return {"kind": kind, "config": config, "size": size, "batch": batch, "images_per_s": 1.0, "ms_per_image": 1.0, "peak_mem_mib": 1.0}

    monkeypatch.setattr(bench, "measure", fake_measure)


def test_a_failing_cuda_only_configuration_is_reported_and_skipped(monkeypatch):
    _fake_cuda_bench(monkeypatch, failing="+compile_step")
    log = []
    rows = bench.run_all(sizes=(192,), kinds=("train",), log=log.append)
    assert [r["config"] for r in rows] == [*bench.TRAIN_CONFIGS, "+fused_adam", "+compile"]
    assert any("+compile_step" in line and "failed, skipped: RuntimeError: inductor says no" in line for line in log)


def test_a_failing_core_configuration_stops_the_benchmark(monkeypatch):
    _fake_cuda_bench(monkeypatch, failing="optimized")
    with pytest.raises(RuntimeError, match="inductor says no"):
        bench.run_all(sizes=(192,), kinds=("train",), log=lambda *a: None)
