"""One radiograph file in, one out: PNG, JPEG, TIFF and DICOM, with their bit depth and polarity.

What the suppression command (suppress.py) reads and writes. A radiograph is read as the numbers
stored in the file, scaled to [0, 1] by the range its format holds:

- 8-bit images (PNG, JPEG, TIFF; grey, RGB or palette, converted to grey): value / 255;
- 16-bit images: value / (2^b - 1), b the smallest of 10, 12, 14, 16 bits that holds the image's
  largest value (the JSRT originals are 12-bit values in 16-bit files: b = 12, not 16);
- float TIFF: as stored when inside [0, 1], else its own minimum and maximum map to 0 and 1;
- DICOM: (value - lowest) / (highest - lowest) of the BitsStored range (signed or not).

Outputs are written back on the same scale, so they have the input's size, bit depth and value
range: 8-bit PNG for 8-bit inputs, 16-bit PNG for 16-bit and float ones, and for DICOM a derived
DICOM (same patient and study, a new series and instance) plus an 8-bit PNG preview. Every write
goes to a temporary name first, then is renamed (atomic.atomic_path): no half-written file.

Refused, each with a DataError that names the file and the reason: empty or unreadable files,
files that are not images, truncated images, DICOM without pixel data (or compressed in a way that
cannot be decoded here), images with a side under MIN_SIDE px, float images holding NaN or inf,
and images over MAX_PIXELS pixels (the decompression-bomb limit: a small file can declare a huge
image; its header is checked before anything is decoded).

Polarity, for a single radiograph with no soft-tissue partner (``polarity_of``): DICOM says it in
its header (MONOCHROME1: low values are displayed white, so bone has low values: "inverted";
MONOCHROME2: "clinical"). Other images: an anatomical rule on the radiograph alone. In a chest
radiograph seen front-on, the mediastinum and spine (a vertical band at the centre) attenuate far
more than the air-filled lungs on either side, so in clinical polarity (bone bright) the centre
band is brighter than the lung bands; inverted, darker. Compared on the middle 40 % of the rows:
the band at 45-55 % of the width against those at 20-35 % and 65-80 %, after scaling the image's
1st-99th percentiles to [0, 1]. On the 128 BSE-JSRT radiographs the centre is darker in every one
(as stored, inverted: margin -0.09 to -0.41), and brighter in every one flipped.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import DataError

#: The decompression-bomb limit: images of more pixels are refused before decoding (10000 x 10000;
#: the largest chest radiographs are about 4300 x 4300).
MAX_PIXELS = 100_000_000
#: The smallest side accepted: below it no chest anatomy is left to work on.
MIN_SIDE = 64
#: zlib level of written PNGs: 3 is 3x faster than PIL's default 6 for files ~10 % larger (lossless either way).
PNG_COMPRESSION = 3
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom")


@dataclass
class Radiograph:
    path: Path
    pixels: np.ndarray  # (H, W) float64 in [0, 1]: the stored numbers on the format's scale
    kind: str  # "image" | "dicom"
    bits: int  # 8 or 16: the bit depth of the PNG written back
    scale: tuple[float, float]  # stored value = lo + pixels * (hi - lo)
    header_polarity: str | None = None  # DICOM: "inverted" for MONOCHROME1, "clinical" for MONOCHROME2
    dataset: object = None  # the pydicom Dataset of a DICOM input
    is_float: bool = False  # a float TIFF: written back as a 16-bit PNG on the full 16-bit range

    @property
    def png_scale(self) -> tuple[float, float] | None:
        """The (lo, hi) an output PNG is written on: the input's, except for float and DICOM inputs."""
        return None if self.is_float or self.kind == "dicom" else self.scale

    def stored_values(self, a: np.ndarray) -> np.ndarray:
        """[0, 1] values back on the input's scale, as integers where the input has them."""
        lo, hi = self.scale
        v = lo + np.clip(a, 0, 1) * (hi - lo)
        return v if self.is_float else np.rint(v)


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
    h, w = r.pixels.shape
    if min(h, w) < MIN_SIDE:
        raise DataError(f"{path}: image too small ({w} x {h} px; at least {MIN_SIDE} px a side)")
    return r


def _check_pixels(path: Path, w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise DataError(f"{path}: {w} x {h} = {w * h:,} pixels, over the limit of {MAX_PIXELS:,} (decompression-bomb guard)")


def _read_image(path: Path) -> Radiograph:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with Image.open(path) as im:
                _check_pixels(path, *im.size)
                if getattr(im, "n_frames", 1) > 1:
                    raise DataError(f"{path}: {im.n_frames} frames; one radiograph per file, please")
                im.load()
                mode = im.mode
                if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                    a = np.asarray(im, dtype=np.float64)
                elif mode == "F":
                    a = np.asarray(im, dtype=np.float64)
                else:
                    a = np.asarray(im.convert("L"), dtype=np.float64)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: declares more pixels than the limit of {MAX_PIXELS:,} (decompression-bomb guard; {e})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file that can be read (PNG, JPEG, TIFF or DICOM)") from None
    except PermissionError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: damaged or truncated image ({e})") from None
    if a.ndim != 2:
        raise DataError(f"{path}: not a 2-D image (shape {a.shape})")
    if mode == "F":
        if not np.isfinite(a).all():
            raise DataError(f"{path}: float image holds NaN or infinite values")
        lo, hi = (0.0, 1.0) if a.min() >= 0 and a.max() <= 1 else (float(a.min()), float(a.max()))
        if hi <= lo:
            raise DataError(f"{path}: a constant image (every pixel {lo:g})")
        return Radiograph(path, (a - lo) / (hi - lo), "image", 16, (lo, hi), is_float=True)
    if mode.startswith("I"):
        if a.min() < 0 or a.max() > 65535:
            raise DataError(f"{path}: values outside the 16-bit range ({a.min():g} .. {a.max():g})")
        top = 2.0 ** bits_used(a.max()) - 1
        return Radiograph(path, a / top, "image", 16, (0.0, top))
    return Radiograph(path, a / 255.0, "image", 8, (0.0, 255.0))


def _read_dicom(path: Path) -> Radiograph:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as e:
        raise DataError(f"{path}: not a readable DICOM file ({e})") from None
    except PermissionError:
        raise
    except (OSError, EOFError, ValueError, AttributeError, TypeError, KeyError) as e:
        raise DataError(f"{path}: damaged DICOM file ({type(e).__name__}: {e})") from None
    if "PixelData" not in ds:
        raise DataError(f"{path}: DICOM without pixel data")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    _check_pixels(path, cols, rows)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1 or int(ds.get("SamplesPerPixel", 1)) != 1:
        raise DataError(f"{path}: not a single-frame grayscale DICOM image")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DataError(f"{path}: photometric interpretation {photometric}, not a grayscale radiograph")
    try:
        v = ds.pixel_array.astype(np.float64)
    except Exception as e:  # pydicom raises many kinds for undecodable pixel data
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DataError(f"{path}: cannot decode the pixel data (transfer syntax {ts}: {e})") from None
    bits = int(ds.get("BitsStored", 16))
    lo, hi = (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1) if int(ds.get("PixelRepresentation", 0)) else (0.0, 2.0**bits - 1)
    if v.shape != (rows, cols):
        raise DataError(f"{path}: pixel data of shape {v.shape}, header says {rows} x {cols}")
    pol = "inverted" if photometric == "MONOCHROME1" else "clinical"
    return Radiograph(path, (np.clip(v, lo, hi) - lo) / (hi - lo), "dicom", 16 if bits > 8 else 8, (lo, hi), pol, ds)


# --------------------------------------------------------------------------------------------
# Polarity of one radiograph
# --------------------------------------------------------------------------------------------


def anatomy_score(a: np.ndarray) -> float:
    """Centre band minus lung bands (see the module docstring): > 0 clinical, < 0 inverted."""
    lo, hi = np.percentile(a, [1, 99])
    a = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
    h, w = a.shape
    rows = slice(int(0.3 * h), int(0.7 * h))
    band = lambda f0, f1: a[rows, int(f0 * w) : max(int(f1 * w), int(f0 * w) + 1)].mean()  # noqa: E731
    return float(band(0.45, 0.55) - (band(0.20, 0.35) + band(0.65, 0.80)) / 2)


def polarity_of(r: Radiograph, setting: str = "auto") -> tuple[str, str]:
    """(stored polarity, how it was decided) for ``setting`` "auto", "clinical" or "inverted"."""
    if setting in ("clinical", "inverted"):
        return setting, "set by --polarity"
    if r.header_polarity:
        return r.header_polarity, f"DICOM {str(r.dataset.PhotometricInterpretation)}"
    score = anatomy_score(r.pixels)
    return ("clinical" if score > 0 else "inverted"), f"centre band {'brighter' if score > 0 else 'darker'} than the lungs ({score:+.2f})"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_png(path: str | Path, a: np.ndarray, bits: int, scale=None) -> Path:
    """``a`` in [0, 1] as a grey PNG of ``bits`` (8 or 16), on ``scale`` (lo, hi) when given (the
    input's), else on the full range of the bit depth. Atomic."""
    from PIL import Image

    lo, hi = scale if scale is not None else (0.0, 255.0 if bits == 8 else 65535.0)
    v = np.rint(lo + np.clip(a, 0, 1) * (hi - lo))
    if bits == 8:
        im = Image.fromarray(np.clip(v, 0, 255).astype(np.uint8), mode="L")
    else:
        im = Image.fromarray(np.clip(v, 0, 65535).astype(np.uint16))
    path = Path(path)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG", compress_level=PNG_COMPRESSION)
    return path


def write_dicom(path: str | Path, source: Radiograph, a: np.ndarray, description: str) -> Path:
    """A derived DICOM of ``source`` holding ``a`` (in [0, 1], the source's stored polarity and
    scale): patient, study and acquisition attributes kept; a new series and SOP instance; image
    type DERIVED\\SECONDARY; written uncompressed (explicit VR little endian). Atomic."""
    import copy

    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = copy.deepcopy(source.dataset)
    dtype = ds.pixel_array.dtype
    values = source.stored_values(a).astype(dtype)
    ds.PixelData = values.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = description[:1024]
    ds.SeriesDescription = ("Bone suppressed " + str(ds.get("SeriesDescription", ""))).strip()[:64]
    for tag in ("LossyImageCompression",):
        if tag in ds:
            del ds[tag]
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
