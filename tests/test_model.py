"""Architecture: the paper's shapes, the branch used only in training, AE without it."""
import torch

from dae_lib.inference import predict
from dae_lib.config import Config
from dae_lib.models.dae import DAE


def n_parameters(model):
    return sum(p.numel() for p in model.parameters())


def paper_dae(seg_branch=True):
    """The paper's network at the paper-protocol settings (Config's channels and kernel size)."""
    cfg = Config()
    return DAE(cfg.channels, cfg.kernel_size, seg_branch)


def test_encoder_maps_512_to_128x128x64():
    m = paper_dae()
    x = torch.rand(1, 1, 512, 512)
    with torch.no_grad():
        f = m.encoder(x)
        s_hat, logits = m(x)
    assert f.shape == (1, 64, 128, 128)
    assert s_hat.shape == (1, 1, 512, 512) and logits.shape == (1, 1, 512, 512)


def test_channels_double_except_last_and_four_convs():
    m = paper_dae()
    convs = [c for c in m.encoder.modules() if isinstance(c, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64]
    assert sum(isinstance(c, torch.nn.MaxPool2d) for c in m.encoder.modules()) == 2


def test_estimator_uses_deconvolutions_and_outputs_in_unit_range():
    m = paper_dae(seg_branch=False)
    assert sum(isinstance(c, torch.nn.ConvTranspose2d) for c in m.soft_tissue.modules()) == 4
    with torch.no_grad():
        s_hat, logits = m(torch.rand(2, 1, 64, 96))
    assert s_hat.shape == (2, 1, 64, 96) and logits is None
    assert s_hat.min() >= 0 and s_hat.max() <= 1


def test_segmentation_branch_is_not_run_in_eval_mode():
    m = paper_dae()
    calls = []
    m.bone_seg.register_forward_hook(lambda *a: calls.append(1))
    x = torch.rand(1, 1, 64, 64)
    m.train()
    m(x)
    assert len(calls) == 1
    m.eval()
    with torch.no_grad():
        s_hat, logits = m(x)
    assert logits is None and len(calls) == 1
    m.train()
    predict(m, x, amp="auto")  # inference switches to eval mode itself ...
    assert len(calls) == 1 and m.training  # ... and gives the model back as it was


def test_ae_is_the_same_network_without_the_branch():
    ae, dae = paper_dae(seg_branch=False), paper_dae()
    assert ae.bone_seg is None
    assert n_parameters(dae) - n_parameters(ae) == n_parameters(dae.bone_seg)
    assert n_parameters(ae.encoder) == n_parameters(dae.encoder)


def test_inference_is_deterministic_no_random_flips():
    m = paper_dae().eval()
    x = torch.rand(2, 1, 64, 64)
    assert torch.equal(predict(m, x, amp="auto"), predict(m, x, amp="auto"))


def test_inference_fast_path_matches_fp32_eval_within_bf16_precision_and_leaves_the_model_alone():
    torch.manual_seed(0)
    m = paper_dae().eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        ref = m(x)[0]
    assert torch.allclose(predict(m, x, amp="off"), ref, atol=1e-5)
    assert (predict(m, x, amp="auto") - ref).abs().max() < 0.02
    assert all(p.is_contiguous() for p in m.parameters())  # not silently turned channels-last
