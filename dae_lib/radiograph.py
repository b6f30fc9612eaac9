"""One radiograph file in, one out: PNG, JPEG, TIFF and DICOM, with their bit depth and polarity.

What the suppression command (suppress.py) reads and writes. A radiograph is read as the numbers
stored in the file, scaled to [0, 1] by the range its format holds:

- 8-bit images (PNG, JPEG, TIFF; grey, RGB or palette, converted to grey): value / 255;
- 16-bit images: value / (2^b - 1), b the smallest of 10, 12, 14, 16 bits that holds the image's
  largest value (the JSRT originals are 12-bit values in 16-bit files: b = 12, not 16);
- float TIFF: as stored when inside [0, 1], else its own minimum and maximum map to 0 and 1;
- signed 16-bit TIFF: (value - lowest) / (highest - lowest) of the signed range of the bits used;
- DICOM: (value - lowest) / (highest - lowest) of the BitsStored range (signed or not).

Orientation: an EXIF (or TIFF) orientation tag is applied on reading, so the radiograph is seen
upright, as image viewers show it; outputs are written upright, with no orientation tag.

Outputs are written back on the same scale, so they have the input's size, bit depth and value
range: 8-bit PNG for 8-bit inputs, 16-bit PNG for 16-bit and float ones, a signed 16-bit TIFF for
a signed 16-bit TIFF (PNG holds no negative values), and for DICOM a derived DICOM (same patient and
study, a new series and instance) plus an 8-bit PNG preview. Every write goes to a temporary name
first, then is put in place (atomic.atomic_path): no half-written file, and with
``replace=False`` never over a file that appeared meanwhile.

Refused, each with a DataError that names the file and the reason: empty or unreadable files,
files that are not images, truncated images, DICOM without pixel data (or compressed in a way that
cannot be decoded here), images with a side under MIN_SIDE px, float images holding NaN or inf,
and images over MAX_PIXELS pixels (the decompression-bomb limit: a small file can declare a huge
image; its header is checked before anything is decoded).

Polarity, for a single radiograph with no soft-tissue partner (``polarity_of``): DICOM says it in
its header (MONOCHROME1: low values are displayed white, so bone has low values: "inverted";
MONOCHROME2: "clinical"; a Presentation LUT Shape INVERSE inverts either). Other images: an
anatomical rule on the radiograph alone (``anatomy_evidence``). In a chest radiograph seen
front-on, the mediastinum and spine (a band along the body's axis at the centre) attenuate far
more than the air-filled lungs on either side, so in clinical polarity (bone bright) the centre
band is brighter than the lung bands; inverted, darker. ``anatomy_score`` compares, on the middle
40 % of the rows, the band at 45-55 % of the width against those at 20-35 % and 65-80 %, after
scaling the image's 1st-99th percentiles to [0, 1]. Made robust to what users' files do:

- padding: constant rows and columns at the edges (one-sided padding moves the centre band off the
  mediastinum) are trimmed first (``trim_padding``);
- rotation by 90 degrees: the score is taken along both axes; the axis with the larger |score| is
  the body's (on the wrong axis every band crosses both lungs and the mediastinum: |score| <= 0.05
  on the shared radiographs, against >= 0.12 on the right one);
- no clear answer: "unsure" when the larger |score| is under ``POLARITY_MIN_SCORE`` or the other
  axis says the opposite with at least half its strength. The file is then refused with a hint to
  pass --polarity, never guessed.

It assumes a frontal chest centred on the mediastinum. A radiograph cropped off-centre (half a
chest) fools it: of the shared radiographs cropped to their left or right 200-360 px of 512 (and
such crops turned), about two in three are judged wrong and most of the rest "unsure". Neither the
agreement of the two lung bands nor the position of the profile's extreme told those crops apart
from whole radiographs without refusing whole ones (tried on the training and validation cases):
crops need --polarity.

Measured on the 128 shared BSE-JSRT radiographs in both polarities, as stored, rotated by 90, 180
and 270 degrees, and padded on one side by 1/8, 1/4 and 1/2 of the width with black or white
(also rotated and padded): 0 wrong, 0 unsure of 7168 (the rule was set on the released model's
training and validation cases, 6104, and then checked on its 19 test cases, 1064). The previous
rule, without trimming and the second axis, misjudged about half of those turned by 90 degrees
and, padded by 1/4 on one side, 15 (right) to 89 (left) of the 109.
"""
from __future__ import annotations

import copy
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .config import POLARITIES, check_choice
from .errors import DataError

#: The decompression-bomb limit: images of more pixels are refused before decoding (10000 x 10000;
#: the largest chest radiographs are about 4300 x 4300). What bounds memory at this size: pixels are
#: float32 (400 MB a full-size image) and the command holds at most three at once (X, S, B; the
#: integers written are converted in row blocks, ``to_stored``): a 16-bit 10000 x 10000 PNG through
#: ``suppress`` peaked at 1.5 GB resident with the released model on the CPU (2 cores, phantom image,
#: tree of commit 800fc86, /usr/bin/time -v; it
#: was 5.2 GB with float64 copies).
MAX_PIXELS = 100_000_000
#: The smallest side accepted: below it no chest anatomy is left to work on.
MIN_SIDE = 64
#: zlib level of written PNGs: 3 is 3x faster than PIL's default 6 for files ~10 % larger (lossless either way).
PNG_COMPRESSION = 3
#: The lone-image polarity rule answers "unsure" below this |score| (see the module docstring; the
#: shared radiographs score 0.12-0.54 on the body's axis, <= 0.05 across it).
POLARITY_MIN_SCORE = 0.06
#: Edge rows/columns whose standard deviation (on [0, 1]) is below this are padding, not anatomy.
PADDING_STD = 0.01
#: DICOM transfer syntaxes that are lossy: a derived image of such a source stays marked lossy.
LOSSY_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",  # JPEG baseline, extended, JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.203",  # JPEG 2000 (and multi-component), HTJ2K
)  # fmt: skip
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom")


@dataclass
class Radiograph:
    path: Path
    pixels: np.ndarray  # (H, W) float32 in [0, 1]: the stored numbers on the format's scale, upright
    kind: str  # "image" | "dicom"
    bits: int  # 8 or 16: the bit depth of the PNG written back
    scale: tuple[float, float]  # stored value = lo + pixels * (hi - lo)
    header_polarity: str | None = None  # DICOM: "inverted" for MONOCHROME1, "clinical" for MONOCHROME2 (see _dicom_polarity)
    header_evidence: str | None = None  # DICOM: the attributes that decided header_polarity
    dataset: object = None  # the pydicom Dataset of a DICOM input
    is_float: bool = False  # a float TIFF: written back as a 16-bit PNG on the full 16-bit range
    is_signed: bool = False  # a signed 16-bit TIFF: written back as one (write_signed_tiff)
    oriented: str | None = None  # "EXIF orientation 6 applied" when the file asked to be turned

    @property
    def output_suffix(self) -> str:
        """The suffix of the soft-tissue file written for this input (``output_suffix_of``)."""
        return _output_suffix(self.kind == "dicom", self.is_signed)

    @property
    def png_scale(self) -> tuple[float, float] | None:
        """The (lo, hi) an output PNG is written on: the input's, except for float and DICOM inputs."""
        return None if self.is_float or self.kind == "dicom" else self.scale

    def stored_values(self, a: np.ndarray, dtype) -> np.ndarray:
        """[0, 1] values back on the input's scale, as ``dtype`` (rounded for integer types)."""
        return to_stored(a, self.scale, dtype)


def _output_suffix(dicom: bool, signed: bool) -> str:
    """The one rule: a derived DICOM for a DICOM, a signed TIFF for a signed TIFF, else a PNG."""
    return ".dcm" if dicom else ".tif" if signed else ".png"


def output_suffix_of(path: Path) -> str:
    """``Radiograph.output_suffix`` of the file at ``path`` from its header alone (nothing decoded):
    what suppress reserves names with before any input is read."""
    signed = False
    if not is_dicom(path) and path.suffix.lower() in (".tif", ".tiff"):
        try:
            with Image.open(path) as im:
                signed = _is_signed_tiff(im)
        except Exception:  # unreadable: reading it later says why
            pass
    return _output_suffix(is_dicom(path), signed)


def to_stored(a: np.ndarray, scale: tuple[float, float], dtype, rows: int = 1024) -> np.ndarray:
    """``lo + clip(a, 0, 1) * (hi - lo)`` as ``dtype`` (rounded and clipped to its range for an
    integer type), ``rows`` rows at a time so that a 10000 px image needs no full-size float copy."""
    lo, hi = scale
    dtype = np.dtype(dtype)
    out = np.empty(a.shape, dtype)
    bounds = (np.iinfo(dtype).min, np.iinfo(dtype).max) if dtype.kind in "iu" else None
    for i in range(0, a.shape[0], rows):
        v = lo + np.clip(a[i : i + rows], 0, 1).astype(np.float64) * (hi - lo)
        out[i : i + rows] = np.clip(np.rint(v), *bounds) if bounds else v
    return out


def bits_used(largest: float) -> int:
    """The bit depth 16-bit files are read on: the smallest of 10, 12, 14, 16 bits that holds
    ``largest`` (the JSRT originals: 12)."""
    return next(b for b in (10, 12, 14, 16) if largest < 2**b)


def is_dicom(path: Path) -> bool:
    """By suffix, or by the 'DICM' marker at byte 128 (DICOM files often have no suffix)."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_candidate(path: Path) -> bool:
    """Whether a file found in a folder is one to process: an image or DICOM suffix, or the DICOM
    marker; hidden files (such as macOS's ._name resource forks) never are."""
    if path.name.startswith("."):
        return False
    return path.suffix.lower() in IMAGE_SUFFIXES + DICOM_SUFFIXES or is_dicom(path)


def read_radiograph(path: str | Path) -> Radiograph:
    """Read one radiograph (see the module docstring); a DataError naming the file otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        r = _read_dicom(path) if is_dicom(path) else _read_image(path)
    except PermissionError:
        raise DataError(f"{path}: cannot read (permission denied)") from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory to read this image") from None
    h, w = r.pixels.shape
    if min(h, w) < MIN_SIDE:
        raise DataError(f"{path}: image too small ({w} x {h} px; at least {MIN_SIDE} px a side)")
    return r


def _check_pixels(path: Path, w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise DataError(f"{path}: {w} x {h} = {w * h:,} pixels, over the limit of {MAX_PIXELS:,} (decompression-bomb guard)")


def _upright(im):
    """``im`` turned as its EXIF/TIFF orientation tag asks (what viewers show), and a note saying
    so; (im, None) without such a tag."""
    orientation = im.getexif().get(0x0112, 1)
    if orientation in (None, 1) or orientation not in range(2, 9):
        return im, None
    return ImageOps.exif_transpose(im), f"EXIF orientation {orientation} applied"


def _refuse_deep_colour_png(path: Path, im) -> None:
    """Pillow reads 16-bit colour (or grey + alpha) PNGs at 8 bits: refuse them rather than lose
    their depth (IHDR: bit depth at byte 24, colour type at 25 of the file)."""
    if im.format != "PNG" or im.mode not in ("RGB", "RGBA", "LA"):
        return
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) == 26 and head[24] == 16:
        raise DataError(f"{path}: a 16-bit colour PNG (read at 8 bits, it would lose its depth); save it as 16-bit greyscale")


def _is_signed_tiff(im) -> bool:
    tags = getattr(im, "tag_v2", None)
    return bool(tags) and tuple(tags.get(339, (1,)) or (1,))[0] == 2 and tuple(tags.get(258, (0,)) or (0,))[0] == 16


def _read_image(path: Path) -> Radiograph:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with Image.open(path) as im:
                _check_pixels(path, *im.size)
                _refuse_deep_colour_png(path, im)
                if getattr(im, "n_frames", 1) > 1:
                    raise DataError(f"{path}: {im.n_frames} frames; one radiograph per file, please")
                im.load()
                signed = _is_signed_tiff(im)
                turned, oriented = _upright(im)
                mode = turned.mode
                if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                    a = np.array(turned, dtype=np.float32)  # a writable copy (a float image would be a read-only view)
                else:
                    a = np.array(turned.convert("L"), dtype=np.float32)
                del turned
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: declares more pixels than the limit of {MAX_PIXELS:,} (decompression-bomb guard; {e})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file that can be read (PNG, JPEG, TIFF or DICOM)") from None
    except (PermissionError, MemoryError):
        raise
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct_error) as e:
        raise DataError(f"{path}: damaged or truncated image ({type(e).__name__}: {e})") from None
    if a.ndim != 2:
        raise DataError(f"{path}: not a 2-D image (shape {a.shape})")
    if mode == "F":
        if not np.isfinite(a).all():
            raise DataError(f"{path}: float image holds NaN or infinite values")
        lo, hi = (0.0, 1.0) if a.min() >= 0 and a.max() <= 1 else (float(a.min()), float(a.max()))
        if hi <= lo:
            raise DataError(f"{path}: a constant image (every pixel {lo:g})")
        return Radiograph(path, _scaled(a, lo, hi), "image", 16, (lo, hi), is_float=True, oriented=oriented)
    if mode.startswith("I"):
        if signed:
            b = bits_used(max(-float(a.min()) - 1, float(a.max())) * 2 + 1)  # the signed range of b bits holds both ends
            lo, hi = -(2.0 ** (b - 1)), 2.0 ** (b - 1) - 1
            return Radiograph(path, _scaled(a, lo, hi), "image", 16, (lo, hi), is_signed=True, oriented=oriented)
        if a.min() < 0 or a.max() > 65535:
            raise DataError(f"{path}: values outside the 16-bit range ({a.min():g} .. {a.max():g}); 32-bit integer images are not read")
        top = 2.0 ** bits_used(a.max()) - 1
        return Radiograph(path, _scaled(a, 0.0, top), "image", 16, (0.0, top), oriented=oriented)
    return Radiograph(path, _scaled(a, 0.0, 255.0), "image", 8, (0.0, 255.0), oriented=oriented)


def _scaled(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(a - lo) / (hi - lo) in place (``a`` is float32 and ours): no second full-size copy."""
    a -= np.float32(lo)
    a /= np.float32(hi - lo)
    return a


#: Attributes without which a DICOM's pixels cannot be read as a grayscale image.
DICOM_REQUIRED = ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "PhotometricInterpretation", "SamplesPerPixel")


def _meta(ds, name: str):
    """An attribute of the DICOM file meta (None when absent)."""
    meta = getattr(ds, "file_meta", None)
    return meta.get(name) if meta is not None else None


def _dicom_polarity(ds) -> tuple[str, str]:
    """How a grayscale DICOM stores the radiograph, from its header: MONOCHROME1 shows low values
    white, so bone (white when displayed) has low values: "inverted"; MONOCHROME2: "clinical"; a
    Presentation LUT Shape INVERSE inverts the display, hence the stored polarity, once more."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    plut = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    inverted = (photometric == "MONOCHROME1") != (plut == "INVERSE")
    evidence = f"DICOM {photometric}" + (f" with Presentation LUT Shape {plut}" if plut else "")
    return ("inverted" if inverted else "clinical"), evidence


def _decoder_hint(ts) -> str:
    """What to install to decode pixel data of transfer syntax ``ts`` (pydicom's plugins)."""
    name = getattr(ts, "name", str(ts))
    uid = str(ts)
    if uid.startswith("1.2.840.10008.1.2.4.") and uid.split(".")[-1] in ("50", "51", "57", "70", "80", "81"):
        plugin = "pylibjpeg pylibjpeg-libjpeg"
    elif uid.startswith("1.2.840.10008.1.2.4.") and uid.split(".")[-1] in ("90", "91", "92", "93", "201", "202", "203"):
        plugin = "pylibjpeg pylibjpeg-openjpeg"
    elif uid == "1.2.840.10008.1.2.5":
        plugin = "pylibjpeg pylibjpeg-rle"
    else:
        return f"transfer syntax {name} ({uid}) cannot be decoded here"
    return f"transfer syntax {name} ({uid}) needs a decoder: pip install {plugin}"


def _read_dicom(path: Path) -> Radiograph:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as e:
        raise DataError(f"{path}: not a readable DICOM file ({e})") from None
    except (PermissionError, MemoryError):
        raise
    except Exception as e:  # pydicom raises many kinds for damaged files
        raise DataError(f"{path}: damaged DICOM file ({type(e).__name__}: {e})") from None
    if "PixelData" not in ds:
        raise DataError(f"{path}: DICOM without pixel data")
    lacking = [t for t in DICOM_REQUIRED if t not in ds] + ([] if ds.get("SOPClassUID") or _meta(ds, "MediaStorageSOPClassUID") else ["SOPClassUID"])
    if lacking:
        raise DataError(f"{path}: DICOM lacks {', '.join(lacking)}; an image needs them (and a derived DICOM the SOP class)")
    try:
        rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
        frames, samples = int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("SamplesPerPixel", 1))
        bits, signed = int(ds.get("BitsStored", 16)), bool(int(ds.get("PixelRepresentation", 0)))
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: damaged DICOM header ({e})") from None
    _check_pixels(path, cols, rows)
    if frames > 1 or samples != 1:
        raise DataError(f"{path}: not a single-frame grayscale DICOM image")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DataError(f"{path}: photometric interpretation {photometric}, not a grayscale radiograph")
    if not 1 <= bits <= 16:
        raise DataError(f"{path}: BitsStored {bits}; 1 to 16 bits are read")
    ts = _meta(ds, "TransferSyntaxUID")
    if ts is not None and not ts.is_compressed:  # native pixel data: its length must be what the header says
        want = rows * cols * ((int(ds.get("BitsAllocated", 16)) + 7) // 8)
        have = len(ds.PixelData)
        if have not in (want, want + 1):
            raise DataError(f"{path}: pixel data of {have:,} bytes; Rows x Columns x BitsAllocated say {want:,}")
    try:
        with warnings.catch_warnings():  # pydicom warns about padding and the like; what matters is refused above
            warnings.simplefilter("ignore")
            v = ds.pixel_array
    except MemoryError:
        raise
    except Exception:  # pydicom raises many kinds for undecodable pixel data; its messages run over several lines
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DataError(f"{path}: cannot decode the pixel data ({_decoder_hint(ts)})") from None
    if v.shape != (rows, cols):
        raise DataError(f"{path}: pixel data of shape {v.shape}, header says {rows} x {cols}")
    lo, hi = (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1) if signed else (0.0, 2.0**bits - 1)
    a = np.clip(v.astype(np.float32), lo, hi)
    pol, evidence = _dicom_polarity(ds)
    return Radiograph(path, _scaled(a, lo, hi), "dicom", 16 if bits > 8 else 8, (lo, hi), pol, evidence, ds)


# --------------------------------------------------------------------------------------------
# Polarity of one radiograph
# --------------------------------------------------------------------------------------------


def anatomy_score(a: np.ndarray) -> float:
    """Centre band minus lung bands (see the module docstring): > 0 clinical, < 0 inverted, for a
    radiograph upright (the body's axis vertical) and centred."""
    lo, hi = np.percentile(a, [1, 99])
    a = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
    h, w = a.shape
    rows = slice(int(0.3 * h), int(0.7 * h))
    band = lambda f0, f1: a[rows, int(f0 * w) : max(int(f1 * w), int(f0 * w) + 1)].mean()  # noqa: E731
    return float(band(0.45, 0.55) - (band(0.20, 0.35) + band(0.65, 0.80)) / 2)


def trim_padding(a: np.ndarray) -> tuple[np.ndarray, int]:
    """``a`` without the constant rows and columns at its edges (padding: standard deviation under
    PADDING_STD), at most half of each side; and how many rows + columns were trimmed."""
    lo, hi = float(a.min()), float(a.max())
    scaled_std = lambda axis: a.std(axis=axis) / max(hi - lo, 1e-12)  # noqa: E731

    def run(v):  # how many leading entries are padding
        flat = v[: len(v) // 2] < PADDING_STD
        return len(flat) if flat.all() else int(np.argmin(flat))

    rs, cs = scaled_std(1), scaled_std(0)
    t, b, l, r = run(rs), run(rs[::-1]), run(cs), run(cs[::-1])
    h, w = a.shape
    return a[t : h - b, l : w - r], t + b + l + r


@dataclass
class PolarityEvidence:
    """What the lone-image rule found: the score on the image's own axis and across it, and the
    padding trimmed first."""
    along: float  # anatomy_score of the image as it is
    across: float  # anatomy_score of the image turned by 90 degrees
    trimmed: int  # padding rows + columns removed first

    @property
    def decision(self) -> str:
        """ "clinical", "inverted" or "unsure" (see the module docstring)."""
        best, other = (self.along, self.across) if abs(self.along) >= abs(self.across) else (self.across, self.along)
        if abs(best) < POLARITY_MIN_SCORE or (best * other < 0 and abs(other) >= 0.5 * abs(best)):
            return "unsure"
        return "clinical" if best > 0 else "inverted"

    def __str__(self) -> str:
        turned = abs(self.across) > abs(self.along)
        best = self.across if turned else self.along
        side = "brighter" if best > 0 else "darker"
        pad = f"; {self.trimmed} px of padding trimmed" if self.trimmed else ""
        axis = "across the image (turned 90 degrees?)" if turned else "along the image"
        return f"centre band {side} than the lungs {axis} ({self.along:+.2f} along, {self.across:+.2f} across{pad})"


def anatomy_evidence(a: np.ndarray) -> PolarityEvidence:
    """The lone-image polarity rule on pixels ``a`` (see the module docstring)."""
    step = max(1, max(a.shape) // 1024)  # the bands are wide: a 1024 px view tells as much as 10000 px
    core, trimmed = trim_padding(np.asarray(a[::step, ::step], dtype=np.float32))
    if min(core.shape) < 8:
        return PolarityEvidence(0.0, 0.0, trimmed * step)
    return PolarityEvidence(anatomy_score(core), anatomy_score(core.T), trimmed * step)


def invert(a, out=None):
    """The image in the other polarity, 1 - a (values in [0, 1]): a NumPy array (into ``out`` when
    given: in place with ``out=a``) or a torch tensor. Every change of polarity goes through here."""
    if isinstance(a, np.ndarray):
        return np.subtract(1, a, out=out)
    return 1.0 - a


def polarity_of(r: Radiograph, setting: str = "auto") -> tuple[str, str]:
    """(stored polarity, the evidence that decided it) for ``setting`` "auto", "clinical" or
    "inverted". DICOM: the header decides (the anatomy rule's view is added to the evidence, and
    said when it disagrees). Other images: the anatomy rule; a DataError naming the file and
    asking for --polarity when it is unsure."""
    check_choice("polarity", setting, POLARITIES)
    if setting != "auto":
        return setting, "set by --polarity"
    ev = anatomy_evidence(r.pixels)
    if r.header_polarity:
        said = ev.decision
        view = "agrees" if said == r.header_polarity else "is unsure" if said == "unsure" else f"DISAGREES, says {said}"
        return r.header_polarity, f"{r.header_evidence}; the anatomy rule {view} ({ev.along:+.2f} along, {ev.across:+.2f} across)"
    if ev.decision == "unsure":
        raise DataError(f"{r.path}: polarity unsure ({ev}); pass --polarity clinical (bone bright) or --polarity inverted (bone dark)")
    return ev.decision, f"anatomy: {ev}"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def clinical_pixels(r: Radiograph, setting: str = "auto", in_place: bool = False) -> tuple[np.ndarray, str, str]:
    """A read radiograph's pixels in clinical polarity (float32 in [0, 1]), with the polarity it is
    stored in and why (``polarity_of``); ``in_place``: turn ``r.pixels`` itself rather than a copy."""
    stored, how = polarity_of(r, setting)
    px = np.asarray(r.pixels, dtype=np.float32)
    if stored == "inverted":
        px = invert(px, out=px if in_place and px is r.pixels else None)
    return px, stored, how


def write_png(path: str | Path, a: np.ndarray, bits: int, scale=None, replace: bool = True) -> Path:
    """``a`` in [0, 1] as a grey PNG of ``bits`` (8 or 16), on ``scale`` (lo, hi) when given (the
    input's), else on the full range of the bit depth. Atomic; with ``replace=False`` a
    FileExistsError rather than replacing a file that exists."""
    lo, hi = scale if scale is not None else (0.0, 255.0 if bits == 8 else 65535.0)
    v = to_stored(a, (lo, hi), np.uint8 if bits == 8 else np.uint16)
    im = Image.fromarray(v, mode="L") if bits == 8 else Image.fromarray(v)
    del v
    path = Path(path)
    with atomic_path(path, replace=replace) as tmp:
        im.save(tmp, format="PNG", compress_level=PNG_COMPRESSION)
    return path


def write_signed_tiff(path: str | Path, a: np.ndarray, scale, replace: bool = True) -> Path:
    """``a`` in [0, 1] as an uncompressed signed 16-bit grey TIFF on ``scale`` (lo, hi) (Pillow
    reads such files but cannot write them: a baseline TIFF, little endian, one strip). Atomic."""
    v = to_stored(a, scale, "<i2")
    h, w = v.shape
    tags = [  # (tag, type, value): type 3 = SHORT, 4 = LONG
        (256, 4, w), (257, 4, h), (258, 3, 16), (259, 3, 1), (262, 3, 1),  # size, 16 bits, uncompressed, BlackIsZero
        (273, 4, 8), (277, 3, 1), (278, 4, h), (279, 4, v.nbytes), (339, 3, 2),  # strip at byte 8, 1 sample, signed
    ]  # fmt: skip
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        ifd += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    ifd += struct.pack("<I", 0)
    path = Path(path)
    with atomic_path(path, replace=replace) as tmp, open(tmp, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", 8 + v.nbytes))
        f.write(v.tobytes())
        f.write(ifd)
    return path


def write_dicom(path: str | Path, source: Radiograph, a: np.ndarray, description: str, replace: bool = True) -> Path:
    """A derived DICOM of ``source`` holding ``a`` (in [0, 1], the source's stored polarity and
    scale): patient, study and acquisition attributes kept; a new series and SOP instance (the
    file meta's MediaStorageSOPInstanceUID the same); image type DERIVED\\SECONDARY; written
    uncompressed (explicit VR little endian, whatever the source's encoding, big endian
    included); LossyImageCompression "01" kept, or set when the source itself was lossy. Atomic."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    src = source.dataset
    lossy = str(src.get("LossyImageCompression", "")) == "01" or str(src.file_meta.get("TransferSyntaxUID", "")) in LOSSY_TRANSFER_SYNTAXES
    ds = copy.deepcopy(src)
    signed = bool(int(src.get("PixelRepresentation", 0)))
    dtype = (np.int16 if signed else np.uint16) if int(src.get("BitsAllocated", 16)) > 8 else (np.int8 if signed else np.uint8)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.set_pixel_data(source.stored_values(a, dtype), str(src.PhotometricInterpretation), int(src.get("BitsStored", 16)))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID = ds.get("SOPClassUID") or _meta(src, "MediaStorageSOPClassUID")
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SeriesInstanceUID = generate_uid()
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = description[:1024]
    ds.SeriesDescription = ("Bone suppressed " + str(ds.get("SeriesDescription", ""))).strip()[:64]
    if lossy:
        ds.LossyImageCompression = "01"
    path = Path(path)
    with atomic_path(path, replace=replace) as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return path
