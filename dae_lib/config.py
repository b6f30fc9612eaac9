"""All configuration in one place: the paper's protocol, the choices it leaves open, and profiles.

`Config` holds every knob with the paper-protocol default. A *profile* (``smoke``, ``quick``,
``paper``) is a small YAML file of overrides in ``dae_lib/profiles/``; ``load_config`` applies a
profile and then any explicit overrides.

Choices the paper leaves open, decided here (and only here):

- Encoder channels (16, 32, 64, 64): four 3x3 conv layers, channels doubling at each layer but the
  last, max-pooling after the first two, so 512x512x1 -> 128x128x64 as the paper states.
- 3x3 kernels, BatchNorm + ReLU after every hidden conv/deconv: the common autoencoder default of
  2019; BatchNorm lets the plain network train at lr 1e-3 with small batches.
- Output activation: sigmoid, so the estimate lies in [0, 1], the data range every metric and the
  MS-SSIM loss assume (MS-SSIM of values outside its data range is not meaningful).
- Loss weights lm = 1.0 and ls = 0.01: with images in [0, 1] the MSE of a useful estimate is
  ~1e-4..1e-3 and the mask BCE ~0.1..0.5; ls = 0.01 keeps the auxiliary segmentation term from
  dominating the shared encoder. Change them here (or per run) and choose on the validation part.
- Bone mask threshold: Otsu's threshold of B = X - S per image, floored at 2/255 (see masks.py).
- Split: 15 % test (the paper's 85/15), and a validation part of 10 % of the *training* cases for
  model selection (best epoch); the test part is only used for the final numbers.
- Augmentation ranges: rotation +-10 deg, shifts +-5 % of the size, shear +-5 deg, zoom 0.9..1.1,
  horizontal flip p = 0.5 (the paper lists the operations, not the ranges).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILES = ("smoke", "quick", "paper")

#: The four reproduced variants: name -> (uses the MS-SSIM loss, uses the segmentation branch).
VARIANTS = {
    "ae": (False, False),
    "ae_msssim": (True, False),
    "dae": (False, True),
    "dae_msssim": (True, True),
}
VARIANT_LABELS = {
    "ae": "AE",
    "ae_msssim": "AE + MS-SSIM",
    "dae": "DAE",
    "dae_msssim": "DAE + MS-SSIM",
}

#: MS-SSIM exponents (Wang, Simoncelli & Bovik 2003). The DAE paper prints 0.0048 for the first
#: one, a typo for 0.0448.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass
class Config:
    # --- data -----------------------------------------------------------------------------
    data_dir: str | None = None  # None: the synthetic chest phantom
    image_size: int = 512
    polarity: str = "auto"  # "auto" | "clinical" | "inverted" (how the files are stored)
    n_phantom: int = 128  # phantom cases when no data_dir is given
    phantom_seed: int = 1234
    cache_data: bool = True  # keep decoded, resized tensors in .cache/ (see data.load_data)
    mask_threshold: str | float = "otsu"  # "otsu" or a fixed value of X - S in [0, 1]
    mask_min_threshold: float = 2 / 255
    test_fraction: float = 0.15
    val_fraction: float = 0.10  # of the training cases
    split_seed: int = 0
    # --- augmentation (training part only) ----------------------------------------------
    augment: bool = True
    rotation_deg: float = 10.0
    shift: float = 0.05  # fraction of width / height
    shear_deg: float = 5.0
    zoom: tuple[float, float] = (0.9, 1.1)
    hflip_p: float = 0.5
    # --- model ----------------------------------------------------------------------------
    variant: str = "dae_msssim"
    channels: tuple[int, int, int, int] = (16, 32, 64, 64)
    kernel_size: int = 3
    # --- loss (eq. 7): L = L_MS-SSIM + lm * L_MSE + ls * L_seg ---------------------------
    lm: float = 1.0
    ls: float = 0.01
    # --- optimisation ---------------------------------------------------------------------
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    amp: str = "auto"  # "auto" (bf16 where supported) | "bf16" | "off"
    channels_last: bool = True
    eval_batch_size: int = 8

    def __post_init__(self):
        self.zoom = tuple(self.zoom)
        self.channels = tuple(self.channels)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {sorted(VARIANTS)}")
        if self.polarity not in ("auto", "clinical", "inverted"):
            raise ValueError(f"polarity must be auto, clinical or inverted, not {self.polarity!r}")
        if self.image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4 (two 2x poolings), got {self.image_size}")
        if not 0 < self.test_fraction < 1 or not 0 <= self.val_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1) and val_fraction in [0, 1)")
        if self.use_msssim and self.image_size < MS_SSIM_MIN_SIZE:
            raise ValueError(
                f"variant {self.variant} uses MS-SSIM, which needs images of at least "
                f"{MS_SSIM_MIN_SIZE} px (5 scales, 11 px window); image_size is {self.image_size}"
            )

    @property
    def use_msssim(self) -> bool:
        return VARIANTS[self.variant][0]

    @property
    def use_seg(self) -> bool:
        return VARIANTS[self.variant][1]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["zoom"] = list(self.zoom)
        d["channels"] = list(self.channels)
        return d


#: torchmetrics needs (kernel_size - 1) * 16 < size for 5 scales with an 11-px window.
MS_SSIM_MIN_SIZE = 176

_FIELDS = {f.name for f in dataclasses.fields(Config)}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}


def profile_overrides(profile: str) -> dict:
    """The overrides a profile makes to the paper-protocol defaults."""
    path = PROFILE_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    return yaml.safe_load(path.read_text()) or {}


def load_config(profile: str = "paper", **overrides) -> Config:
    """Defaults, then the profile's YAML, then ``overrides`` (keys equal to None are ignored)."""
    values = profile_overrides(profile)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown configuration keys: {unknown}")
    return Config(**{k: _coerce(k, v) for k, v in values.items()})


def _coerce(key: str, value):
    """Numbers given as text (YAML reads "1e-3" as a string) become the field's type."""
    default = _DEFAULTS[key]
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if isinstance(default, float) and isinstance(value, (str, int)):
            return float(value)
        if isinstance(default, int) and isinstance(value, str):
            return int(value)
    except ValueError:
        raise ValueError(f"configuration key {key}: cannot read {value!r} as {type(default).__name__}") from None
    return value
