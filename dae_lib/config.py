"""All configuration in one place: the paper's protocol, the choices it leaves open, and profiles.

`Config` holds every knob with the paper-protocol default. A *profile* (``smoke``, ``quick``,
``paper``) is a small YAML file of overrides in ``dae_lib/profiles/``; ``load_config`` applies a
profile and then any explicit overrides.

The variants (model family x the paper's four-way ablation) are the table in ``families.py``;
``variant`` names one of them.

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
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ConfigError
from .families import FAMILIES, get_variant

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILES = ("smoke", "quick", "paper")

#: Fields that may differ when a run is resumed: they change how fast it runs or how long, never
#: what it learns from. Every other field must match the run's config.json (see ``resume_conflicts``).
MAY_CHANGE_ON_RESUME = ("epochs", "device", "amp", "channels_last", "eval_batch_size", "cache_data")

#: How image files may store the radiograph ("auto": detect), and the precision modes (device.py).
POLARITIES = ("auto", "clinical", "inverted")
AMP_MODES = ("auto", "bf16", "off")

#: What ``data_dir`` says for "no folder: the synthetic chest phantom".
PHANTOM = "phantom"


def check_choice(name: str, value, choices) -> None:
    """A ConfigError naming the setting and its choices when ``value`` is not one of them."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def is_phantom(data_dir) -> bool:
    """Whether a data setting means the synthetic phantom (None, "" or "phantom")."""
    return data_dir in (None, "", PHANTOM)


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
    variant: str = "dae_msssim"  # a name from families.variants(): family and ablation
    channels: tuple[int, int, int, int] = (16, 32, 64, 64)  # the paper family (model.py)
    kernel_size: int = 3
    unet_width: int = 32  # the residual family (residual.py): channels of the first level
    unet_depth: int = 4  # its 2x poolings
    init_from: str | None = None  # start from these weights (a .safetensors file or a run folder's best)
    # --- loss (eq. 1): L = L_MS-SSIM + lm * L_MSE + ls * L_seg ---------------------------
    lm: float = 1.0
    ls: float = 0.01
    msssim_form: str = "paper"  # "paper" (eq. 5 per pixel) | "wang" (per image, as torchmetrics): msssim.py
    # --- optimisation ---------------------------------------------------------------------
    epochs: int = 100
    batch_size: int = 8
    optimizer: str = "adam"  # "adam" | "adamw"
    lr: float = 1e-3
    schedule: str = "constant"  # "constant" | "cosine" (warm-up, then half a cosine: train.learning_rate)
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    amp: str = "auto"  # "auto" (bf16 where supported) | "bf16" | "off"
    channels_last: bool = True
    eval_batch_size: int = 0  # images per inference batch; 0: the device's fastest (device.FASTEST)

    def __post_init__(self):
        self._check_types()
        self.zoom = tuple(self.zoom)
        self.channels = tuple(self.channels)
        get_variant(self.variant)  # a ConfigError naming the known variants
        check_choice("polarity", self.polarity, POLARITIES)
        if self.polarity != "auto" and is_phantom(self.data_dir):
            raise ConfigError(f"polarity {self.polarity!r} applies to a data folder; the phantom is drawn in clinical polarity (no --data given)")
        for name, ok, rule in _RANGES:
            if not ok(getattr(self, name)):
                raise ConfigError(f"{name} must be {rule}, not {getattr(self, name)!r}")
        if len(self.zoom) != 2 or not 0 < self.zoom[0] <= self.zoom[1]:
            raise ConfigError(f"zoom must be two factors 0 < low <= high, not {list(self.zoom)!r}")
        check_choice("amp", self.amp, AMP_MODES)
        if not (self.mask_threshold == "otsu" or (isinstance(self.mask_threshold, (int, float)) and 0 < self.mask_threshold < 1)):
            raise ConfigError(f"mask_threshold must be 'otsu' or a number in (0, 1), not {self.mask_threshold!r}")
        if self.image_size % 4:
            raise ConfigError(f"image_size must be a multiple of 4 (two 2x poolings), got {self.image_size}")
        if get_variant(self.variant).family == "residual" and self.image_size % 2**self.unet_depth:
            raise ConfigError(f"image_size must be a multiple of {2**self.unet_depth} for the residual family ({self.unet_depth} poolings), got {self.image_size}")
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"optimizer must be adam or adamw, not {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"schedule must be constant or cosine, not {self.schedule!r}")
        if not 0 < self.test_fraction < 1 or not 0 <= self.val_fraction < 1:
            raise ConfigError("test_fraction must be in (0, 1) and val_fraction in [0, 1)")
        from .msssim import FORMS, MIN_SIZE

        if self.msssim_form not in FORMS:
            raise ConfigError(f"msssim_form must be one of {FORMS}, not {self.msssim_form!r}")
        if self.use_msssim:

            if self.image_size < MIN_SIZE:
                raise ConfigError(
                    f"variant {self.variant} uses MS-SSIM, which needs images of at least "
                    f"{MIN_SIZE} px (5 scales, 11 px window); image_size is {self.image_size}"
                )

    def _check_types(self) -> None:
        """Every field holds its type (a bool a bool: "treu" is not silently False)."""
        for f in dataclasses.fields(self):
            v, default = getattr(self, f.name), f.default
            if isinstance(default, bool):
                if not isinstance(v, bool):
                    raise ConfigError(f"{f.name} must be true or false, not {v!r}")
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(default, int) and not isinstance(default, float) and not float(v).is_integer()):
                    raise ConfigError(f"{f.name} must be {'an integer' if isinstance(default, int) else 'a number'}, not {v!r}")
                if isinstance(default, int):
                    setattr(self, f.name, int(v))
            elif isinstance(default, str) and f.name not in ("mask_threshold",) and not isinstance(v, str):
                raise ConfigError(f"{f.name} must be text, not {v!r}")

    @property
    def use_msssim(self) -> bool:
        """Whether the loss has the L_MS-SSIM term (see families.ABLATION)."""
        return get_variant(self.variant).msssim

    @property
    def use_seg(self) -> bool:
        """Whether the model has the segmentation head and the loss its L_seg term."""
        return get_variant(self.variant).seg_head

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["zoom"] = list(self.zoom)
        d["channels"] = list(self.channels)
        return d


#: Ranges of the numeric settings, checked when a Config is made (before anything is read or written).
_RANGES = (
    ("image_size", lambda v: v >= 32, "at least 32 (px)"),
    ("n_phantom", lambda v: v >= 3, "at least 3 (cases)"),
    ("epochs", lambda v: v >= 1, "at least 1"),
    ("batch_size", lambda v: v >= 1, "at least 1"),
    ("eval_batch_size", lambda v: v >= 0, "0 (the device's choice) or more"),
    ("lr", lambda v: v > 0, "above 0"),
    ("weight_decay", lambda v: v >= 0, "0 or more"),
    ("lm", lambda v: v >= 0, "0 or more"),
    ("ls", lambda v: v >= 0, "0 or more"),
    ("rotation_deg", lambda v: 0 <= v <= 180, "in [0, 180]"),
    ("shift", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("shear_deg", lambda v: 0 <= v < 90, "in [0, 90)"),
    ("hflip_p", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("mask_min_threshold", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("kernel_size", lambda v: v >= 1 and v % 2 == 1, "an odd number, at least 1"),
    ("unet_width", lambda v: v >= 1, "at least 1"),
    ("unet_depth", lambda v: 1 <= v <= 6, "between 1 and 6"),
    ("seed", lambda v: v >= 0, "0 or more"),
    ("split_seed", lambda v: v >= 0, "0 or more"),
)

_FIELDS = {f.name for f in dataclasses.fields(Config)}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}
#: What a recorded configuration (a run's config.json) that lacks a field meant, where that differs
#: from today's default: runs made before the field existed. msssim_form: every run before it
#: was trained with Wang's per-image form.
_RECORDED_BEFORE = {"msssim_form": "wang"}


def _recorded_default(key: str):
    return _RECORDED_BEFORE.get(key, _plain(_DEFAULTS[key]))


def profile_overrides(profile: str) -> dict:
    """The overrides a profile makes to the paper-protocol defaults."""
    path = PROFILE_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    return yaml.safe_load(path.read_text()) or {}


def load_config(profile: str = "paper", **overrides) -> Config:
    """Defaults, then the variant's family defaults (families.FAMILIES), then the profile's YAML
    (its common keys, then its section named after the family), then ``overrides`` (keys equal to
    None are ignored)."""
    prof = profile_overrides(profile)
    explicit = {k: v for k, v in overrides.items() if v is not None}
    family = get_variant(explicit.get("variant", prof.get("variant", _DEFAULTS["variant"]))).family
    values = dict(FAMILIES[family].defaults)
    values.update({k: v for k, v in prof.items() if k not in FAMILIES})
    values.update(prof.get(family) or {})
    values.update(explicit)
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {unknown}")
    return Config(**{k: _coerce(k, v) for k, v in values.items()})


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _coerce(key: str, value):
    """Numbers given as text (YAML reads "1e-3" as a string) become the field's type."""
    default = _DEFAULTS[key]
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ConfigError(f"configuration key {key}: {value!r} is not true or false (write true/false, yes/no or 1/0)")
        if isinstance(default, float) and isinstance(value, (str, int)):
            return float(value)
        if isinstance(default, int) and isinstance(value, str):
            return int(value)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"configuration key {key}: cannot read {value!r} as {type(default).__name__}") from None
    return value


#: What weights are: the architecture (variant = family + ablation, and the family's size settings)
#: and the loss they were trained with. Recorded in every weights file (train.save_weights) and
#: checked against config.json when they are loaded, so editing config.json cannot relabel them.
FINGERPRINT_FIELDS = ("variant", "channels", "kernel_size", "unet_width", "unet_depth", "lm", "ls", "msssim_form")


def fingerprint(cfg: Config) -> dict:
    """The FINGERPRINT_FIELDS of ``cfg``, as plain JSON values."""
    d = cfg.to_dict()
    return {k: d[k] for k in FINGERPRINT_FIELDS}


def resume_conflicts(old: dict, new: Config) -> list[str]:
    """The fields of a run's recorded configuration ``old`` that ``new`` may not change on resume
    (all but MAY_CHANGE_ON_RESUME; a field the old record lacks counts with the value it had then)."""
    now = new.to_dict()
    return [
        k for k in now
        if k not in MAY_CHANGE_ON_RESUME and json.dumps(old.get(k, _recorded_default(k))) != json.dumps(now[k])
    ]  # fmt: skip


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def config_from_dict(d: dict) -> Config:
    """A Config from a recorded dict (a run's config.json); fields it lacks take the value they had
    when it was recorded (``_RECORDED_BEFORE``), else their defaults."""
    values = {k: v for k, v in _RECORDED_BEFORE.items() if k not in d}
    values.update({k: v for k, v in d.items() if k in _FIELDS})
    return Config(**values)
