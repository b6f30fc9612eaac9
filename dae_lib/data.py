"""Reading BSE-JSRT pairs (or making phantom ones) into tensors in canonical polarity.

Two folder layouts are recognised under a data root:

- flat:   ``root/JSRT/<ID>.png`` and ``root/BSE_JSRT/<ID>.png`` (the shared 512 px copy);
- Kaggle: ``root/JSRT/JSRT/<ID>.png`` and ``root/BSE_JSRT/BSE_JSRT/<ID>.png``.

Images of any size and bit depth are read as floats in [0, 1] and resized by area averaging to
the requested size (a bilinear, antialiased resize if they are smaller). Pairs are matched by case
ID (the file name without extension, upper-cased). Every problem (an unreadable image, a missing
partner, an empty folder, a pair of different sizes) raises a :class:`DataError` whose message
names the file.

Canonical polarity inside the library is clinical display: bone bright, so B = X - S >= 0 on
bone. The polarity of a data set is detected by :func:`auto_polarity` (the tails of X - S,
checked against the radiographs' anatomy; rules in the docstrings), logged, and can be overridden (``polarity="clinical"`` or ``"inverted"``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .atomic import atomic_path
from .config import POLARITIES, check_choice, default, is_phantom
from .errors import DataError
from .losses import bone_mask
from .radiograph import IMAGE_SUFFIXES, anatomy_evidence, bits_used, invert, read_radiograph
from .phantom import phantom_ids, phantom_set
from .runs import REPO_ROOT, sha256_file
from .scoring.registration import align, register_pair

log = logging.getLogger(__name__)

#: Where read data sets are cached as tensors (override with DAE_CACHE).
CACHE_DIR = Path(os.environ.get("DAE_CACHE", REPO_ROOT / ".cache"))

LAYOUTS = {
    "flat": ("JSRT", "BSE_JSRT"),
    "kaggle": ("JSRT/JSRT", "BSE_JSRT/BSE_JSRT"),
    "xs": ("X", "S"),  # a site's own pairs: radiographs in X/, soft-tissue images in S/
}


@dataclass
class Pair:
    case_id: str
    x_path: Path
    s_path: Path


@dataclass
class PolarityDecision:
    stored: str  # how the files are stored: "clinical" or "inverted"
    rule: str  # "auto" or "override"
    votes_inverted: int = 0
    votes_clinical: int = 0
    anatomy_inverted: int = 0  # radiographs the lone-image rule (radiograph.anatomy_evidence) reads as inverted
    anatomy_clinical: int = 0

    def __str__(self):
        how = {
            "auto": f"detected from the tails of X - S: {self.votes_inverted} pairs say inverted, "
            f"{self.votes_clinical} clinical; the radiographs' anatomy: {self.anatomy_inverted} inverted, {self.anatomy_clinical} clinical",
            "override": "set by the user",
            "phantom": "the phantom is drawn in clinical polarity",
        }[self.rule]
        return f"stored polarity {self.stored} ({how})"


@dataclass
class PairedImages:
    """Radiographs X, soft-tissue images S and bone masks M, shape (N, 1, H, W), float32 in [0, 1]."""

    ids: list[str]
    x: torch.Tensor
    s: torch.Tensor
    m: torch.Tensor
    source: str  # the data root, or "phantom(seed=...)"
    polarity: PolarityDecision | None = None
    files: list[tuple[str, str]] = field(default_factory=list)  # (x file, s file) per case

    def __len__(self):
        return len(self.ids)

    @property
    def size(self) -> int:
        return self.x.shape[-1]

    def to(self, device) -> "PairedImages":
        """The same cases with X, S and M on ``device``."""
        return dataclasses.replace(self, x=self.x.to(device), s=self.s.to(device), m=self.m.to(device))

    def subset(self, indices) -> "PairedImages":
        idx = list(indices)
        return PairedImages(
            [self.ids[i] for i in idx],
            self.x[idx],
            self.s[idx],
            self.m[idx],
            self.source,
            self.polarity,
            [self.files[i] for i in idx] if self.files else [],
        )


# --------------------------------------------------------------------------------------------
# Finding pairs
# --------------------------------------------------------------------------------------------


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as e:
        raise DataError(f"{folder}: cannot read the folder ({e.strerror or e})") from None


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _has_images(folder: Path) -> bool:
    return any(_is_image(p) and p.is_file() for p in _listdir(folder))


def _images_in(folder: Path) -> dict[str, Path]:
    """Image files by case ID. Hidden files (such as macOS's ._<name>.png) are skipped with a note."""
    found: dict[str, Path] = {}
    files = _listdir(folder)
    hidden = [p.name for p in files if p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    if hidden:
        log.info("%s: skipped %d hidden file(s): %s", folder, len(hidden), ", ".join(hidden[:5]))
    for p in files:
        if _is_image(p) and p.is_file():
            key = p.stem.upper()
            if key in found:
                raise DataError(f"{p}: case ID {key} appears twice in {folder} (also {found[key].name})")
            found[key] = p
    return found


def detect_layout(root: Path) -> tuple[str, Path, Path]:
    """Which layout ``root`` uses: (name, radiograph folder, soft-tissue folder). When both hold
    images, the Kaggle layout is used and a warning names the folders of the one ignored."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist")
    found = []
    for name in ("kaggle", "flat", "xs"):  # kaggle first: its outer folders also exist in the flat test
        xd, sd = (root / p for p in LAYOUTS[name])
        try:
            if xd.is_dir() and sd.is_dir():
                found.append((name, xd, sd))
        except OSError as e:
            raise DataError(f"{root}: cannot read the data folder ({e.strerror or e})") from None
    with_images = [f for f in found if _has_images(f[1]) or _has_images(f[2])]
    if len(with_images) > 1:  # both hold images: the Kaggle one is read, and the user is told so
        (used, uxd, usd), (other, oxd, osd) = with_images[:2]
        log.warning(
            "%s: both data layouts hold images; using the %s one (%s, %s) and ignoring the %s one (%s, %s)",
            root, used, uxd, usd, other, oxd, osd,
        )  # fmt: skip
    if with_images or found:  # a stray empty JSRT/JSRT/ does not hide a flat layout with images
        return (with_images or found)[0]
    raise DataError(
        f"{root}: expected JSRT/ and BSE_JSRT/ (or the Kaggle layout JSRT/JSRT/ and BSE_JSRT/BSE_JSRT/, or X/ and S/) inside"
    )


def find_pairs(root: str | Path) -> list[Pair]:
    """All (X, S) pairs under ``root``, matched by case ID; raises on unpaired files."""
    _, xd, sd = detect_layout(Path(root))
    xs, ss = _images_in(xd), _images_in(sd)
    if not xs and not ss:
        raise DataError(f"{xd} and {sd}: no images found (looked for {sorted(IMAGE_SUFFIXES)})")
    if not xs:
        raise DataError(f"{xd}: no radiographs found")
    if not ss:
        raise DataError(f"{sd}: no soft-tissue images found")
    problems = [f"{xs[k]}: no soft-tissue partner in {sd}" for k in sorted(set(xs) - set(ss))]
    problems += [f"{ss[k]}: no radiograph partner in {xd}" for k in sorted(set(ss) - set(xs))]
    if problems:
        raise DataError(f"{len(problems)} unpaired file(s): " + "; ".join(problems))
    return [Pair(k, xs[k], ss[k]) for k in sorted(xs)]


# --------------------------------------------------------------------------------------------
# Reading and resizing
# --------------------------------------------------------------------------------------------


def _common_scale(rs: list) -> tuple[list[np.ndarray], str | None]:
    """The pixels of read radiographs, 16-bit ones all on the scale of the largest value among them
    (X and S of a pair must share one scale); and a note when that is not the full 16 bits."""
    stretched = [r.path for r in rs if r.is_float and r.scale != (0.0, 1.0)]
    if stretched:  # each would be scaled by its own range: X and S no longer comparable
        raise DataError(f"float images with values outside [0, 1]: {', '.join(map(str, stretched[:5]))}")
    deep = {id(r) for r in rs if r.bits == 16 and not r.is_float and r.kind == "image"}
    if not deep:
        return [r.pixels for r in rs], None
    top_value = max(round(float(r.pixels.max()) * r.scale[1]) for r in rs if id(r) in deep)
    bits = bits_used(top_value)
    top = 2.0**bits - 1
    # A file already on that scale keeps the reader's pixels exactly (what suppress reads); others are rescaled.
    out = [r.pixels if id(r) not in deep or r.scale[1] == top else r.pixels * np.float32(r.scale[1] / top) for r in rs]
    note = None if bits == 16 else f"16-bit files using {bits} bits (largest value {top_value:.0f}): scaled by {top:.0f}, not 65535"
    return out, note


def resize(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, 1, H, W) to size x size: area averaging down, antialiased bilinear up."""
    return resize_to(img, (size, size)).clamp(0, 1)


def resize_to(img: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Resize (N, C, H, W) to ``hw``: area averaging when both sides shrink, else antialiased
    bilinear (values are not clamped: a bone component may be signed)."""
    if tuple(img.shape[-2:]) == tuple(hw):
        return img
    if img.shape[-2] >= hw[0] and img.shape[-1] >= hw[1]:
        return F.interpolate(img, size=tuple(hw), mode="area")
    return F.interpolate(img, size=tuple(hw), mode="bilinear", antialias=True, align_corners=False)


def detect_polarity(x: torch.Tensor, s: torch.Tensor) -> tuple[str, int, int]:
    """Decide how pairs are stored: "clinical" (bone bright) or "inverted" (bone dark).

    Rule: bone is the only structure present in X but not in S, so D = X - S is one-sided. Per
    pair, with m the median of D, compare the upper tail (99.5th percentile of D - m) with the
    lower tail (m minus the 0.5th percentile): a larger upper tail means bone adds brightness
    (clinical), a larger lower tail means bone darkens (inverted). The majority of pairs decides.
    Returns (decision, pairs voting inverted, pairs voting clinical).
    """
    d = (x - s).flatten(1).double()
    m = d.median(dim=1, keepdim=True).values
    upper = torch.quantile(d - m, 0.995, dim=1)
    lower = -torch.quantile(d - m, 0.005, dim=1)
    inverted = int((lower > upper).sum())
    clinical = int((upper > lower).sum())
    return ("inverted" if inverted > clinical else "clinical"), inverted, clinical


def anatomy_votes(x: torch.Tensor) -> tuple[int, int]:
    """How many radiographs X the lone-image rule (``radiograph.anatomy_evidence``: the centre band
    against the lungs, as ``suppress`` decides) reads as inverted and as clinical; "unsure" ones
    count for neither. It does not look at S, so a soft-tissue image rendered unlike X (another grey
    curve, edge enhancement: a dual-energy system) cannot mislead it as it can ``detect_polarity``."""
    decisions = [anatomy_evidence(img[0].numpy()).decision for img in x]
    return decisions.count("inverted"), decisions.count("clinical")


def auto_polarity(x: torch.Tensor, s: torch.Tensor, where) -> PolarityDecision:
    """The stored polarity of a folder's pairs: the tails of X - S (``detect_polarity``), checked
    against the radiographs' anatomy (``anatomy_votes``); a tie of the tails goes to the anatomy. When
    the anatomy decides most radiographs and its majority differs from the tails' (or neither decides),
    a DataError asks for the polarity instead of guessing:
    training on pairs read the wrong way round teaches the model to add bone."""
    stored, vi, vc = detect_polarity(x, s)
    ai, ac = anatomy_votes(x)
    anatomy = "inverted" if ai > ac else "clinical"
    decided = ai + ac > len(x) / 2 and ai != ac
    if vi == vc:  # the tails tie: the anatomy decides, or nothing does
        if not decided:
            raise DataError(f"{where}: polarity unclear: the tails of X - S tie ({vi} pairs each way) and the radiographs' anatomy does not decide "
                            f"({ai} inverted, {ac} clinical); set it: --polarity clinical (bone bright) or --polarity inverted (bone dark)")
        stored = anatomy
    if decided and anatomy != stored:
        raise DataError(
            f"{where}: polarity unclear: the tails of X - S say {stored} ({max(vi, vc)} of {len(x)} pairs), the radiographs' "
            f"anatomy says {anatomy} ({max(ai, ac)} of {len(x)}); S is perhaps rendered unlike X (a dual-energy system's grey "
            "curve or edge enhancement). Set it: --polarity clinical (bone bright) or --polarity inverted (bone dark)"
        )
    return PolarityDecision(stored, "auto", vi, vc, ai, ac)


def load_folder(
    root: str | Path, size: int, polarity: str = default("polarity"), threshold=default("mask_threshold"),
    min_threshold=default("mask_min_threshold"), register_pairs: bool = default("register_pairs"),
) -> PairedImages:  # fmt: skip
    """Read every pair under ``root`` at ``size`` px in clinical polarity, with bone masks (the
    settings default to Config's). With ``register_pairs``, each S is first brought to its X's size
    and aligned to it (``_aligned``), as a site's own pairs need (they are rarely pixel-aligned);
    otherwise X and S must have one size."""
    pairs = find_pairs(root)
    read = [(read_radiograph(p.x_path), read_radiograph(p.s_path)) for p in pairs]
    pixels, note = _common_scale([r for pair in read for r in pair])
    if note:
        log.info("%s: %s", root, note)
    xs, ss, bad = [], [], []
    for k, p in enumerate(pairs):
        x, s = pixels[2 * k].astype(np.float32), pixels[2 * k + 1].astype(np.float32)
        if register_pairs:
            s = _aligned(x, s, p)
        if x.shape != s.shape:
            raise DataError(f"{p.s_path}: size {s.shape[1]}x{s.shape[0]} differs from its radiograph {p.x_path} ({x.shape[1]}x{x.shape[0]})")
        for img, path in ((x, p.x_path), (s, p.s_path)):
            if img.max() == img.min():
                bad.append(f"{path}: a constant image (every pixel {img.max():.3g})")
        if np.array_equal(x, s):
            bad.append(f"{p.x_path} and {p.s_path}: identical (no bone to learn)")
        xs.append(resize(torch.from_numpy(x)[None, None], size)[0])
        ss.append(resize(torch.from_numpy(s)[None, None], size)[0])
    if bad:
        raise DataError(f"{len(bad)} unusable image(s) or pair(s): " + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    x, s = torch.stack(xs), torch.stack(ss)
    if polarity == "auto":
        decision = auto_polarity(x, s, root)
    elif polarity in ("clinical", "inverted"):
        decision = PolarityDecision(polarity, "override")
    else:
        check_choice("polarity", polarity, POLARITIES)
    if decision.stored == "inverted":
        x, s = invert(x), invert(s)
    log.info("%s: %d pairs, %s", root, len(pairs), decision)
    return PairedImages(
        [p.case_id for p in pairs],
        x.contiguous(),
        s.contiguous(),
        bone_mask(x, s, threshold, min_threshold),
        str(root),
        decision,
        [(str(p.x_path), str(p.s_path)) for p in pairs],
    )


def _aligned(x: np.ndarray, s: np.ndarray, pair: Pair) -> np.ndarray:
    """S at X's size, registered to X (scale and shift on edges: scoring.registration); where S does
    not cover X (a border of a few pixels) X itself stands in: no bone to learn there. A DataError
    names a pair whose two images do not match."""
    xt = torch.from_numpy(x)
    st, reg = register_pair(xt, torch.from_numpy(s))
    if not reg.matches:
        raise DataError(f"{pair.s_path}: does not match its radiograph {pair.x_path} (edge correlation {reg.quality:.3f}, scale {reg.scale:.3f})")
    moved = align(st, reg)
    log.info("%s: S registered to X (scale %.4f, shift %+.1f, %+.1f px)", pair.case_id, reg.scale, *reg.shift)
    return torch.where(torch.isnan(moved), xt, moved).numpy()


def load_phantom(n: int, size: int, seed: int, threshold=default("mask_threshold"), min_threshold=default("mask_min_threshold")) -> PairedImages:
    """``n`` synthetic chest phantom cases (clinical polarity), with masks by the same rule."""
    x, s, _, ids = phantom_set(n, size, seed)
    return PairedImages(ids, x, s, bone_mask(x, s, threshold, min_threshold), f"phantom(seed={seed})", PolarityDecision("clinical", "phantom"))


def case_ids(cfg) -> tuple[list[str], str]:
    """The case IDs of the data ``cfg`` asks for, without reading an image (its folder's pairs, or
    the phantom's IDs), and how messages name that data: the folder, or the phantom setting."""
    if is_phantom(cfg.data_dir):
        return phantom_ids(cfg.n_phantom), f"the phantom (n_phantom={cfg.n_phantom})"
    return [p.case_id for p in find_pairs(cfg.data_dir)], str(cfg.data_dir)


def load_data(cfg, cache: bool | None = None) -> PairedImages:
    """The data a configuration asks for: its ``data_dir``, or the phantom when that is None.

    Decoded, resized tensors are cached on disk (``.cache/`` in the repository, or $DAE_CACHE)
    once per data folder, size and settings, so the notebooks and runs of a pipeline decode the PNGs
    (or draw the phantom) once. The key covers every file's path, size and modification time and
    the source of the loading code, so a changed file or loader is never served stale.
    """
    mask_kw = dict(threshold=cfg.mask_threshold, min_threshold=cfg.mask_min_threshold)
    cache = cfg.cache_data if cache is None else cache
    if is_phantom(cfg.data_dir):
        key = ("phantom", cfg.n_phantom, cfg.image_size, cfg.phantom_seed, mask_kw)
        make = lambda: load_phantom(cfg.n_phantom, cfg.image_size, cfg.phantom_seed, **mask_kw)  # noqa: E731
    else:
        pairs = find_pairs(cfg.data_dir)  # cheap; also validates the folder before any cache look-up
        stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for p in pairs for f in (p.x_path, p.s_path)]
        key = ("folder", stats, cfg.image_size, cfg.polarity, mask_kw, cfg.register_pairs)
        make = lambda: load_folder(cfg.data_dir, cfg.image_size, cfg.polarity, **mask_kw, register_pairs=cfg.register_pairs)  # noqa: E731
    return _cached(key, make) if cache else make()


def _code_version() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / n).read_bytes() for n in ("data.py", "radiograph.py", "losses.py", "phantom.py"))).hexdigest()


def _cached(key, make) -> PairedImages:
    digest = hashlib.sha256(json.dumps([key, _code_version()], default=str).encode()).hexdigest()[:24]
    path = CACHE_DIR / f"pairs-{digest}.pt"
    if path.exists():
        try:
            d = torch.load(path, weights_only=True)
            pol = PolarityDecision(**d["polarity"]) if d["polarity"] else None
            return PairedImages(d["ids"], d["x"], d["s"], d["m"].float(), d["source"], pol, [tuple(f) for f in d["files"]])
        except Exception as e:  # a damaged cache file is rebuilt, never trusted
            log.warning("ignoring unreadable cache %s (%s)", path, e)
    data = make()
    try:
        with atomic_path(path) as tmp:
            torch.save(
                {"ids": data.ids, "x": data.x, "s": data.s, "m": data.m.to(torch.uint8), "source": data.source,
                 "polarity": dataclasses.asdict(data.polarity) if data.polarity else None, "files": [list(f) for f in data.files]},
                tmp,
            )  # fmt: skip
    except OSError as e:  # a read-only checkout still works, just without the cache
        log.warning("could not write the data cache %s (%s)", path, e)
    return data


def file_hashes(data: PairedImages, case_ids=None) -> list[tuple[str, str]]:
    """sha256 of each case's X and S (of ``case_ids``, default all, in that order): of the files,
    or of the phantom arrays."""
    pos = {c: k for k, c in enumerate(data.ids)}
    idx = range(len(data)) if case_ids is None else [pos[c] for c in case_ids]
    if data.files:
        return [(sha256_file(data.files[k][0]), sha256_file(data.files[k][1])) for k in idx]
    return [
        (hashlib.sha256(data.x[k].numpy().tobytes()).hexdigest(), hashlib.sha256(data.s[k].numpy().tobytes()).hexdigest())
        for k in idx
    ]


def hashes_by_case(data: PairedImages):
    """``check_split``'s hashes_of for ``data``: {case_id: (x_sha256, s_sha256)} of the cases asked."""
    return lambda case_ids: dict(zip(case_ids, file_hashes(data, case_ids)))
