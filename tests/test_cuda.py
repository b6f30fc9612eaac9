"""What needs a GPU: training, resuming and inference on CUDA (skipped where torch sees none).

Run them with the rest of the device checks: scripts/device_check.sh.
"""
import pytest
import torch

from dae_lib.inference import predict
from dae_lib.runs import load_model
from dae_lib.train import fit
from helpers import tiny_config

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_fit_on_cuda_learns(tmp_path):
    res = fit(tiny_config(variant="dae", device="cuda", epochs=3, amp="auto"), tmp_path / "run", progress=False)
    assert res.device.type == "cuda"
    losses = [r["train_loss"] for r in res.history]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_resume_on_cuda_continues_the_run(tmp_path):
    cfg = tiny_config(variant="ae", device="cuda", epochs=3)
    fit(cfg, tmp_path / "run", progress=False, max_epochs=1)
    res = fit(cfg, tmp_path / "run", progress=False)
    assert [r["epoch"] for r in res.history] == [1, 2, 3]


def test_inference_on_cuda_equals_cpu(tmp_path):
    res = fit(tiny_config(variant="r_ae", epochs=1, device="cpu"), tmp_path / "run", progress=False)
    x = res.data.x[:4]
    cpu = predict(load_model(tmp_path / "run", device="cpu"), x, amp="off")
    gpu = predict(load_model(tmp_path / "run", device="cuda"), x, amp="off")
    assert (cpu - gpu).abs().max() < 1e-3  # fp32 on both; convolution algorithms differ


def test_validation_on_cuda_equals_cpu(tmp_path):
    from dae_lib.split import split_indices
    from dae_lib.train import validate

    cfg = tiny_config(variant="dae_msssim", image_size=192, epochs=1, device="cpu")
    res = fit(cfg, tmp_path / "run", progress=False)
    val = res.data.subset(split_indices(res.data.ids, res.split)["val"])
    cpu = validate(load_model(tmp_path / "run", device="cpu"), cfg, val)
    gpu = validate(load_model(tmp_path / "run", device="cuda"), cfg, val.to("cuda"))  # as fit does: scored on the GPU
    assert cpu.keys() == gpu.keys() and all(abs(cpu[k] - gpu[k]) < 1e-3 * max(1.0, abs(cpu[k])) for k in cpu)
