"""All configuration in one place: the paper's protocol, the choices it leaves open, and profiles.

`Config` holds every knob with the paper-protocol default. A *profile* (``smoke``, ``quick``,
``paper``) is a small YAML file of overrides in ``dae_lib/profiles/``; ``load_config`` applies a
profile and then any explicit overrides.

The variants (model family x the paper's four-way ablation) are the table in ``models/__init__.py``;
``variant`` names one of them.

The choices the paper leaves open are the defaults below; the paper's words beside each, the
reasons and where each acts are the table ``reporting/choices.py`` (CHOICES), rendered with the
values of a Config so that it cannot drift from them.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ConfigError, RunDirError
from .models import FAMILIES, get_variant
from .msssim import FORMS, MIN_SIZE

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
#: The environment variables that stand for notebook parameters where papermill cannot inject them
#: (nbval under pytest: the root conftest.py sets them; pipeline.notebook_setup reads them), by
#: parameter name. Here, not in pipeline.py, so that the test session's set-up imports no Jupyter
#: package (a GPU machine's image may have none: scripts/device_check.sh's step 1).
ENVIRONMENT = {"profile": "DAE_PROFILE", "data_dir": "DAE_DATA", "out_root": "DAE_OUT"}
#: The profile the command line and the notebooks run unless told otherwise (the notebooks'
#: parameters cells write it as a literal, as papermill needs; a test keeps them equal).
DEFAULT_PROFILE = "quick"


#: Upper bounds of the sizes and counts: far above every setting used here (the paper's protocol:
#: 512 px, channels up to 64, 100 epochs of batch 8), low enough that a typo or an edited
#: config.json cannot ask for unbounded memory or time. Checked with the other ranges (``_RANGES``).
#: MAX_IMAGE_SIZE: JSRT's own resolution (2048 x 2048 px): no data set here has more pixels to
#: give, and the released model is 512 px (at 2048 px it peaks at 2.3 GB per radiograph on a CPU,
#: measured; memory grows with the square of the size). MAX_CHANNELS: 16 x the paper's widest layer
#: (64); the residual family's widest level is 8 x unet_width (residual.level_widths), hence
#: MAX_CHANNELS // 8 for unet_width.
MAX_IMAGE_SIZE = 2048
MAX_CHANNELS = 1024
MAX_UNET_WIDTH = MAX_CHANNELS // 8
MAX_KERNEL_SIZE = 15
MAX_EPOCHS = 10_000
MAX_BATCH = 1024
MAX_PHANTOM = 1024
#: Seeds: numpy.random.seed's limit (train.seed_everything seeds NumPy's global generator with it);
#: torch.manual_seed accepts more, and seed * 1_000_003 + epoch (train._epoch_seed) stays within its range.
MAX_SEED = 2**32 - 1


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
    register_pairs: bool = False  # align each S to its X first (scale and shift: scoring/registration.py): a site's own pairs
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
    render_p: float = 0.0  # share of training images re-rendered as another device might (augment.RenderAugment; beyond the paper)
    render_ranges: str = "base"  # the ranges those renderings are drawn from: a name in augment.RANGE_SETS (checked there: config does not import the training code)
    # --- model ----------------------------------------------------------------------------
    variant: str = "dae_msssim"  # a name from models.variants(): family and ablation
    channels: tuple[int, int, int, int] = (16, 32, 64, 64)  # the reproduced family (models/dae.py)
    kernel_size: int = 3
    unet_width: int = 32  # the residual family (models/residual_unet.py): channels of the first level
    unet_depth: int = 4  # its 2x poolings
    init_from: str | None = None  # start from these weights (a .safetensors file or a run folder's best)
    # --- loss (eq. 1): L = L_MS-SSIM + lm * L_MSE + ls * L_seg ---------------------------
    lm: float = 1.0
    ls: float = 0.01
    msssim_form: str = "paper"  # "paper" (eq. 5 per pixel) | "wang" (per image, as torchmetrics): msssim.py
    teachers: tuple[str, ...] = ()  # run folders whose mean estimate the target leans toward (losses.distilled_target; beyond the paper)
    distill: float = 0.0  # that target's weight w on the teachers: 0 trains on S alone (the paper); set with teachers
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
        get_variant(self.variant)  # a ConfigError naming the known variants
        check_choice("polarity", self.polarity, POLARITIES)
        if self.polarity != "auto" and is_phantom(self.data_dir):
            raise ConfigError(f"polarity {self.polarity!r} applies to a data folder; the phantom is drawn in clinical polarity (no --data given)")
        for name, ok, rule in _RANGES:
            if not ok(getattr(self, name)):
                raise ConfigError(f"{name} must be {rule}, not {getattr(self, name)!r}")
        if bool(self.teachers) != (self.distill > 0):
            raise ConfigError(f"teachers and distill go together (a target with teachers needs a weight on them, and a weight needs teachers): "
                              f"teachers {list(self.teachers)!r}, distill {self.distill!r}")  # fmt: skip
        if not 0 < self.zoom[0] <= self.zoom[1]:
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
                if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(default, int) and not float(v).is_integer()):
                    raise ConfigError(f"{f.name} must be {'an integer' if isinstance(default, int) else 'a number'}, not {v!r}")
                if not math.isfinite(v):  # inf trains to NaN; nan passes every range check
                    raise ConfigError(f"{f.name} must be a finite number, not {v!r}")
                if isinstance(default, int):
                    setattr(self, f.name, int(v))
            elif isinstance(default, str) and f.name not in ("mask_threshold",) and not isinstance(v, str):
                raise ConfigError(f"{f.name} must be text, not {v!r}")
            elif default is None and v is not None and not isinstance(v, str):
                raise ConfigError(f"{f.name} must be text (a path) or null, not {v!r}")
        self.channels = _numbers("channels", self.channels, 4, integer=True, low=1, high=MAX_CHANNELS, what="the paper network's four conv layers")
        self.zoom = _numbers("zoom", self.zoom, 2, integer=False, low=0, high=10, what="low and high factors")
        if not isinstance(self.teachers, (list, tuple)) or not all(isinstance(t, str) and t for t in self.teachers):
            raise ConfigError(f"teachers must be a list of run folders (text), not {_plain(self.teachers)!r}")
        self.teachers = tuple(self.teachers)

    @property
    def use_msssim(self) -> bool:
        """Whether the loss has the L_MS-SSIM term (see models.ABLATION)."""
        return get_variant(self.variant).msssim

    @property
    def use_seg(self) -> bool:
        """Whether the model has the segmentation head and the loss its L_seg term."""
        return get_variant(self.variant).seg_head

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["zoom"] = list(self.zoom)
        d["channels"] = list(self.channels)
        d["teachers"] = list(self.teachers)
        return d


#: Ranges of the numeric settings, checked when a Config is made (before anything is read or written);
#: every number is also finite (``Config._check_types``). The upper bounds: see MAX_IMAGE_SIZE.
_RANGES = (
    ("image_size", lambda v: 32 <= v <= MAX_IMAGE_SIZE, f"at least 32 and at most {MAX_IMAGE_SIZE} (px)"),
    ("n_phantom", lambda v: 3 <= v <= MAX_PHANTOM, f"at least 3 and at most {MAX_PHANTOM} (cases)"),
    ("epochs", lambda v: 1 <= v <= MAX_EPOCHS, f"at least 1 and at most {MAX_EPOCHS}"),
    ("batch_size", lambda v: 1 <= v <= MAX_BATCH, f"at least 1 and at most {MAX_BATCH}"),
    ("eval_batch_size", lambda v: 0 <= v <= MAX_BATCH, f"0 (the device's choice) or up to {MAX_BATCH}"),
    ("lr", lambda v: 0 < v <= 1, "above 0 and at most 1"),
    ("weight_decay", lambda v: v >= 0, "0 or more"),
    ("lm", lambda v: v >= 0, "0 or more"),
    ("ls", lambda v: v >= 0, "0 or more"),
    ("rotation_deg", lambda v: 0 <= v <= 180, "in [0, 180]"),
    ("shift", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("shear_deg", lambda v: 0 <= v < 90, "in [0, 90)"),
    ("hflip_p", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("render_p", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("distill", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("mask_min_threshold", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("kernel_size", lambda v: 1 <= v <= MAX_KERNEL_SIZE and v % 2 == 1, f"an odd number from 1 to {MAX_KERNEL_SIZE}"),
    ("unet_width", lambda v: 1 <= v <= MAX_UNET_WIDTH, f"at least 1 and at most {MAX_UNET_WIDTH} (its widest level is 8 x unet_width channels)"),
    ("unet_depth", lambda v: 1 <= v <= 6, "between 1 and 6"),
    ("seed", lambda v: 0 <= v <= MAX_SEED, f"at least 0 and at most {MAX_SEED}"),
    ("split_seed", lambda v: 0 <= v <= MAX_SEED, f"at least 0 and at most {MAX_SEED}"),
    ("phantom_seed", lambda v: 0 <= v <= MAX_SEED, f"at least 0 and at most {MAX_SEED}"),
)


def _numbers(name: str, value, n: int, integer: bool, low: float, high: float, what: str) -> tuple:
    """``value`` as a tuple of ``n`` finite numbers in [low, high] (integers when ``integer``); a
    ConfigError naming the setting otherwise (text, another length, a nested list, inf, ...)."""
    kind = "integers" if integer else "numbers"
    problem = ConfigError(f"{name} must be {n} {kind} from {low} to {high} ({what}), not {_plain(value)!r}")
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise problem
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high for v in value):
        raise problem
    if integer and not all(float(v).is_integer() for v in value):
        raise problem
    return tuple(int(v) for v in value) if integer else tuple(float(v) for v in value)


_FIELDS = {f.name for f in dataclasses.fields(Config)}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}
#: What a recorded configuration (a run's config.json) that lacks a field meant, where that differs
#: from today's default: runs made before the field existed. msssim_form: every run before it
#: was trained with Wang's per-image form.
_RECORDED_BEFORE = {"msssim_form": "wang"}


def default(name: str):
    """The default of the Config field ``name`` (for callers that need it before a Config exists)."""
    return _DEFAULTS[name]


def _recorded_default(key: str):
    return _RECORDED_BEFORE.get(key, _plain(_DEFAULTS[key]))


#: Sections of a profile's YAML that configure something other than a training run (each read by
#: ``profile_section`` where it acts): ``adapt``, the site-adaptation loop (scoring/adapt.py).
OTHER_SECTIONS = ("adapt",)


def _profile_yaml(profile: str) -> dict:
    """A profile's YAML file, whole; a ConfigError naming the profiles when there is no such one."""
    path = PROFILE_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    return yaml.safe_load(path.read_text()) or {}


def profile_overrides(profile: str) -> dict:
    """The overrides a profile makes to the paper-protocol defaults."""
    return {k: v for k, v in _profile_yaml(profile).items() if k not in OTHER_SECTIONS}


def profile_section(profile: str, name: str) -> dict:
    """A profile's section ``name`` (one of OTHER_SECTIONS), empty when it has none."""
    check_choice("profile section", name, OTHER_SECTIONS)
    return _profile_yaml(profile).get(name) or {}


def load_config(profile: str = "paper", **overrides) -> Config:
    """Defaults, then the variant's family defaults (models.FAMILIES), then the profile's YAML
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


def _integer(text: str) -> int:
    """An integer written as text, also in float notation ("1e6", "2.0"); a ValueError otherwise."""
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer():  # also inf and nan
            raise
        return int(number)


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
            return _integer(value)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"configuration key {key}: cannot read {value!r} as {type(default).__name__}") from None
    return value


#: What weights are: the architecture (variant = family + ablation, and the family's size settings),
#: the loss they were trained with and the image size they were trained at (inference resizes every
#: radiograph to it). Recorded in every weights file (train.save_weights) and checked against
#: config.json when they are loaded, so editing config.json cannot relabel them.
FINGERPRINT_FIELDS = ("variant", "channels", "kernel_size", "unet_width", "unet_depth", "lm", "ls", "msssim_form", "image_size")
#: Fields added to the fingerprint after weights files were first recorded with one: a record that
#: lacks them was made before and is not checked on them (runs.check_fingerprint). Such
#: weights still load; image_size is then bounded by its range alone (MAX_IMAGE_SIZE).
FINGERPRINT_ADDED_LATER = ("image_size",)


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
    when it was recorded (``_RECORDED_BEFORE``), else their defaults. A ConfigError for a key that is
    no field (no field was ever removed, so no run of ours records one) and for any value the
    Config's own checks refuse."""
    unknown = sorted(set(d) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {unknown}")
    values = {k: v for k, v in _RECORDED_BEFORE.items() if k not in d}
    values.update(d)
    return Config(**values)


#: A recorded configuration is a few hundred bytes; anything far larger is not one of ours.
MAX_RECORD_BYTES = 1_000_000


def read_record(path: str | Path) -> dict:
    """A JSON object recorded in a run folder (config.json, data.json); a RunDirError naming the
    file when it cannot be read, is not JSON (damaged, truncated) or is JSON of another shape."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise RunDirError(f"{path}: {path.stat().st_size} bytes, not a record of a run (at most {MAX_RECORD_BYTES})")
        d = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RunDirError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RunDirError(f"{path}: damaged, not JSON ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
    if not isinstance(d, dict):
        kind = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}.get(type(d), "a number")
        raise RunDirError(f"{path}: damaged, holds {kind} (JSON), not an object of settings")
    return d


def config_from_file(path: str | Path) -> Config:
    """The Config recorded in ``path`` (a run's config.json), checked as every Config is; a
    RunDirError naming the file when it is damaged or holds a setting that is refused."""
    try:
        return config_from_dict(read_record(path))
    except ConfigError as e:
        raise RunDirError(f"{path}: {e}") from None
