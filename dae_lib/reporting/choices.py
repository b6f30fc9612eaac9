"""What the paper says, and what this implementation chose: one table per notebook.

Each row quotes (or paraphrases, marked so) what the paper states, names the Config fields that hold
our choice, says why, and where in dae_lib it acts. The values are read from a Config when the table
is rendered (``choices_markdown``), never typed here, so the table cannot drift from the code: a
profile or an override that changes a setting changes the table.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..models import REPRODUCED, get_variant


@dataclass(frozen=True)
class Choice:
    topic: str
    paper: str  # the paper's words (quoted) or what it leaves open
    fields: tuple[str, ...]  # the Config fields holding our choice ("" : a choice fixed in code, ``fixed``)
    why: str
    where: str  # the dae_lib function or module where it acts
    notebook: str  # the notebook that shows it: "01", "02", ...
    fixed: str = ""  # a choice that is not a setting (the code's own), said in words
    family: str | None = None  # the model family (models.FAMILIES) whose table has the row; None: every family


#: Every choice the paper leaves open or states loosely, in the order the notebooks meet them.
CHOICES: tuple[Choice, ...] = (
    Choice("pairs and split", '"85% for training and 15% for testing"', ("test_fraction", "val_fraction", "split_seed"),
           "by case ID before any augmentation; a validation part of the training cases picks the best epoch, so the test cases only give the final numbers",
           "split.make_split", "01"),
    Choice("bone mask M", '"subtracting radiographs with soft-tissue images followed by binarization" (no threshold given)',
           ("mask_threshold", "mask_min_threshold"),
           "Otsu's level of X - S per image needs no hand-tuned constant; the floor keeps a bone-free image from a mask of noise",
           "losses.bone_mask", "01"),
    Choice("augmentation", '"rotations, horizontal and vertical shifts, shear, zoom, and horizontal flips" (no ranges)',
           ("rotation_deg", "shift", "shear_deg", "zoom", "hflip_p"),
           "moderate ranges that keep a chest radiograph plausible; applied to X, S and M together",
           "augment.PairedAugment", "01"),
    Choice("encoder", '4 conv layers, max-pooling, "channels doubling", 512 x 512 in, 128 x 128 x 64 out', ("channels", "kernel_size"),
           "the doubling sequence that ends at 64 channels with two poolings (512 -> 128); 3 x 3 kernels, BatchNorm + ReLU: the 2019 default",
           "models.dae.Encoder", "02", family=REPRODUCED),
    Choice("output", "not stated", (), "S_hat must lie in [0, 1], the range every metric and MS-SSIM assume", "models.dae.DAE", "02",
           fixed="sigmoid", family=REPRODUCED),
    Choice("encoder", '4 conv layers, max-pooling, "channels doubling", 512 x 512 in, 128 x 128 x 64 out', ("unet_width", "unet_depth"),
           "not the paper's: a U-Net, two 3 x 3 convs per level, widths doubling up to 8 x unet_width, with skip connections so fine detail skips the bottleneck",
           "models.residual_unet.Encoder", "02", family="residual"),
    Choice("output", "not stated (the paper's decoder outputs S)", (), "the identity S_hat = X is the start (B_hat = 0 at initialisation): the model only learns what the bones add",
           "models.residual_unet.ResidualUNet", "02", fixed="S_hat = clamp(X - B_hat, 0, 1)", family="residual"),
    Choice("loss weights", '"λm and λs are the weight parameters to balance the loss terms" (values not given)', ("lm", "ls"),
           "with images in [0, 1] the MSE of a useful estimate is ~1e-4..1e-3 and the mask BCE ~0.1..0.5: ls keeps the auxiliary term from dominating",
           "losses.total_loss", "02"),
    Choice("MS-SSIM", 'eq. (5)-(6): per pixel j, α = 1, "β1 = 0.0048" (a typo for Wang\'s 0.0448)', ("msssim_form",),
           "the paper's per-pixel form for the reproduced four; Wang's per-image form is the option the R- family was tuned with",
           "msssim.ms_ssim_map, losses.msssim_loss", "02"),
    Choice("optimisation", "not stated (optimizer, learning rate, epochs, batch size)", ("optimizer", "lr", "epochs", "batch_size"),
           "Adam at 1e-3 trains the BatchNorm network stably at small batches; the profiles set epochs and batch (chosen on validation)",
           "train.make_optimizer, train.fit", "02", family=REPRODUCED),
    Choice("optimisation", "not stated (optimizer, learning rate, epochs, batch size)",
           ("optimizer", "lr", "weight_decay", "schedule", "epochs", "batch_size"),
           "AdamW with a warm-up + cosine schedule, lr chosen on the validation part of BSE-JSRT (models.FAMILIES' notes, results/sweep.csv)",
           "train.make_optimizer, train.fit", "02", family="residual"),
    Choice("image size", "512 x 512 input", ("image_size",), "the paper's size in the paper profile; smaller in the quick and smoke profiles to fit a CPU",
           "data.load_data", "02"),
)


def _value(cfg: Config, field: str) -> str:
    v = getattr(cfg, field)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) + ")"
    return str(v)


def ours(choice: Choice, cfg: Config) -> str:
    """Our choice as the code uses it: the Config fields' values, or the fixed choice in words."""
    return ", ".join(f"{f} = {_value(cfg, f)}" for f in choice.fields) if choice.fields else f"{choice.fixed} (fixed in code)"


def choices_markdown(cfg: Config, notebook: str | None = None) -> str:
    """The table "what the paper says / what we chose" (of one notebook's choices, or all), with the
    values of ``cfg`` (the notebook's Config: its profile and overrides) and the rows of its model family."""
    family = get_variant(cfg.variant).family
    rows = [c for c in CHOICES if notebook in (None, c.notebook) and c.family in (None, family)]
    lines = ["| topic | the paper says | we chose | why | where |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {c.topic} | {c.paper} | {ours(c, cfg)} | {c.why} | `{c.where}` |" for c in rows]
    return "\n".join(lines)
