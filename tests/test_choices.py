"""The table "what the paper says / what we chose": its values come from the Config, never typed."""
import dataclasses

import pytest

from dae_lib.config import Config, load_config
from dae_lib.reporting import choices


def test_every_choice_names_real_config_fields_or_says_its_fixed_choice():
    fields = {f.name for f in dataclasses.fields(Config)}
    for c in choices.CHOICES:
        assert set(c.fields) <= fields, c.topic
        assert c.fields or c.fixed, c.topic
        assert c.notebook in {"01", "02", "03", "04", "05", "06"}


def test_the_table_reads_its_values_from_the_config():
    paper = choices.choices_markdown(load_config("paper", variant="dae_msssim"))
    assert "lm = 1, ls = 0.01" in paper and "image_size = 512" in paper and "channels = (16, 32, 64, 64)" in paper
    changed = choices.choices_markdown(load_config("paper", variant="dae_msssim", ls=0.1, channels=(8, 16, 32, 32)))
    assert "ls = 0.1" in changed and "channels = (8, 16, 32, 32)" in changed and "ls = 0.01" not in changed
    assert "image_size = 192" in choices.choices_markdown(load_config("smoke", variant="ae"))  # the profile's value


def test_a_changed_config_default_changes_the_table():
    """A Config whose default differs (a subclass changing one default, nothing else edited) gives
    a table with the new value."""

    @dataclasses.dataclass
    class Changed(Config):
        lm: float = 3.0

    assert "lm = 1, ls = 0.01" in choices.choices_markdown(Config(), notebook="02")
    assert "lm = 3, ls = 0.01" in choices.choices_markdown(Changed(), notebook="02")


@pytest.mark.parametrize("notebook, topics", [("01", {"pairs and split", "bone mask M", "augmentation"}), ("02", {"encoder", "loss weights", "MS-SSIM"})])
def test_each_notebook_gets_its_own_rows(notebook, topics):
    table = choices.choices_markdown(Config(), notebook)
    assert all(f"| {t} |" in table for t in topics)
    assert table.count("\n") == 1 + sum(c.notebook == notebook and c.family in (None, "reproduced") for c in choices.CHOICES)


def test_each_family_gets_its_own_rows():
    """The R- table names the U-Net and AdamW, never the DAE's encoder, channels, sigmoid or Adam at
    1e-3; the reproduced table the reverse."""
    residual = choices.choices_markdown(load_config("quick", variant="r_dae_msssim"), "02")
    reproduced = choices.choices_markdown(load_config("quick", variant="dae_msssim"), "02")
    assert "optimizer = adamw" in residual and "models.residual_unet.Encoder" in residual and "clamp(X - B_hat, 0, 1)" in residual
    assert "unet_width = 8" in residual and "schedule = cosine" in residual
    for dae_only in ("models.dae.Encoder", "channels = (16, 32, 64, 64)", "sigmoid", "Adam at 1e-3", "optimizer = adam,"):
        assert dae_only not in residual, dae_only
        assert dae_only in reproduced, dae_only
    for unet_only in ("models.residual_unet", "AdamW", "unet_width", "clamp(X - B_hat"):
        assert unet_only not in reproduced, unet_only
