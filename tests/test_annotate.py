"""The code beside each equation (notebook 02): every check holds, and a wrong implementation fails it."""
import torch
import torch.nn.functional as F

from dae_lib import losses
from dae_lib.config import load_config
from dae_lib.data import load_phantom
from dae_lib.reporting import annotate


def _pair():
    d = load_phantom(3, 192, seed=1234)
    return d.x[:1], d.s[:1], d.m[:1]


def test_every_equation_check_holds_on_a_phantom_pair():
    checks = annotate.equation_checks(*_pair(), load_config("smoke", variant="dae_msssim"))
    assert [c.equation for c in checks] == ["(1)", "(2)", "(3)-(4)", "(5)", "(6)", "(7)", "(1)"]
    assert all(c.holds for c in checks), [str(c) for c in checks if not c.holds]


def test_a_wrong_mse_fails_its_check(monkeypatch):
    monkeypatch.setattr(losses, "mse_loss", lambda p, t: F.mse_loss(p.float(), t.float(), reduction="sum"))  # a sum, not eq. (2)'s mean
    checks = {c.equation + c.claim[:12]: c for c in annotate.equation_checks(*_pair(), load_config("smoke", variant="dae_msssim"))}
    failing = [str(c) for c in checks.values() if not c.holds]
    assert any(s.startswith("eq. (2)") and s.endswith("FAILS") for s in failing)


def test_the_source_shown_is_the_functions_own():
    text = annotate.source(losses.seg_loss)
    assert text.startswith("```python\ndef seg_loss(") and "binary_cross_entropy_with_logits" in text and text.endswith("```")


def test_the_msssim_map_figure_has_a_colour_bar():
    from dae_lib.reporting import figures

    x, s, _ = _pair()
    fig = figures.msssim_map_figure(x, s, footer="x")
    assert any("MS-SSIM(j)" in ax.get_ylabel() for ax in fig.axes) and torch.is_tensor(x)
