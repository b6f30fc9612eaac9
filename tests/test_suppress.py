"""The suppression command for users' own radiographs: formats, polarity, full resolution, safety."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from dae_lib import radiograph, suppress
from dae_lib.cli import main as cli_main
from helpers import SHARED_DATA, bomb_png, phantom_radiograph, real_data, tiny_run_folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run_folder(tmp_path_factory.mktemp("run") / "ae")


def _png8(path, a):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(a * 255).astype(np.uint8)).save(path)
    return path


def _files(folder):
    """The files in ``folder`` (relative paths), the command's report CSV left out."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.name.startswith(suppress.REPORT_PREFIX))


def _snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def _dicom(path, a, monochrome1=True, bits=12, pixels=True):
    """A minimal digital X-ray DICOM (patient, study, pixel data) of ``a`` in [0, 1], as stored."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray, for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Test^Patient", "PID-0042", "19700101"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.StudyDate = generate_uid(), generate_uid(), "20260101"
    ds.Modality, ds.SeriesDescription = "DX", "PA chest"
    ds.Rows, ds.Columns = a.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    if pixels:
        ds.PixelData = np.rint(a * (2**bits - 1)).astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------------------------------
# Formats: same size, bit depth and polarity out as in
# --------------------------------------------------------------------------------------------


def test_every_format_comes_out_with_its_size_bit_depth_and_relative_path(tmp_path, run_dir):
    src = tmp_path / "in"
    a = phantom_radiograph(200, seed=1)
    _png8(src / "gray8.png", a)
    (src / "deep").mkdir()
    Image.fromarray(np.rint(a * 4095).astype(np.uint16)).save(src / "deep" / "gray12in16.png")
    Image.fromarray(np.rint(a * 255).astype(np.uint8)).convert("RGB").save(src / "colour.jpg", quality=95)
    Image.fromarray(np.rint(a * 255).astype(np.uint8)).convert("P").save(src / "palette.png")
    Image.fromarray(np.rint(a * 65535).astype(np.uint16)).save(src / "tiff16.tif")
    Image.fromarray(a.astype(np.float32), mode="F").save(src / "float.tif")
    out = tmp_path / "out"
    rep = suppress.suppress_inputs([src], out, weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.failed == [] and len(rep.done) == 6
    assert _files(out) == ["colour.png", "deep/gray12in16.png", "float.png", "gray8.png", "palette.png", "tiff16.png"]
    for name, mode in [("gray8.png", "L"), ("colour.png", "L"), ("palette.png", "L"), ("tiff16.png", "I;16"), ("float.png", "I;16")]:
        im = Image.open(out / name)
        assert im.size == (200, 200) and im.mode == mode, name
    assert radiograph.read_radiograph(src / "deep" / "gray12in16.png").scale == (0.0, 4095.0)  # 12-bit values
    assert np.asarray(Image.open(out / "deep/gray12in16.png")).max() <= 4095  # ... come out on the same scale


def test_bse_jsrt_style_png_keeps_size_and_polarity_and_beats_doing_nothing_with_released_model(tmp_path):
    """The released model on phantom radiographs written like the shared data (8-bit, inverted)
    and like a clinical 16-bit copy at twice the size: each output keeps the input's convention."""
    x, s, _ = (t.numpy().astype(np.float64) for t in __import__("dae_lib.phantom", fromlist=["x"]).chest_phantom(512, seed=7))
    src = tmp_path / "in"
    _png8(src / "inverted.png", 1 - x)
    big = np.kron(x, np.ones((2, 2)))
    Image.fromarray(np.rint(big * 65535).astype(np.uint16)).save(src / "clinical16.png")
    out = tmp_path / "out"
    assert suppress.suppress_inputs([src], out, progress=False, log=lambda *_: None).failed == []
    inv = np.asarray(Image.open(out / "inverted.png")).astype(np.float64) / 255
    clin = np.asarray(Image.open(out / "clinical16.png")).astype(np.float64) / 65535
    assert clin.shape == (1024, 1024)
    clin_small = clin.reshape(512, 2, 512, 2).mean(axis=(1, 3))
    err = lambda est: np.mean((est - s) ** 2)  # noqa: E731
    assert err(1 - inv) < err(x)  # the inverted output, read back inverted, is nearer S than X is
    assert err(clin_small) < err(x)
    assert np.abs((1 - inv) - clin_small).mean() < 0.01  # both polarities give the same soft tissue


@real_data
def test_shared_radiographs_folder_in_suppressed_out(tmp_path):
    files = sorted((SHARED_DATA / "JSRT").glob("*.png"))[:3]
    src = tmp_path / "in"
    src.mkdir()
    for f in files:
        (src / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out"
    assert cli_main(["suppress", str(src), "--out", str(out), "--quiet"]) == 0
    for f in files:
        o = np.asarray(Image.open(out / f.name)).astype(np.float64)
        x = np.asarray(Image.open(f)).astype(np.float64)
        s = np.asarray(Image.open(SHARED_DATA / "BSE_JSRT" / f.name)).astype(np.float64)
        assert o.shape == x.shape
        assert np.mean((o - s) ** 2) < np.mean((x - s) ** 2), f.name


# --------------------------------------------------------------------------------------------
# Polarity of a single radiograph
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3, 9])
def test_anatomy_rule_tells_both_polarities_of_the_phantom(seed):
    x = phantom_radiograph(256, seed=seed)
    assert radiograph.anatomy_score(x) > 0
    assert radiograph.anatomy_score(1 - x) < 0


@real_data
def test_anatomy_rule_on_every_shared_radiograph_both_ways():
    scores = [radiograph.anatomy_score(np.asarray(Image.open(f), dtype=np.float64) / 255) for f in sorted((SHARED_DATA / "JSRT").glob("*.png"))]
    assert len(scores) >= 100
    assert max(scores) < 0  # stored inverted (the data's README): every one says so
    flipped = [radiograph.anatomy_score(1 - np.asarray(Image.open(f), dtype=np.float64) / 255) for f in sorted((SHARED_DATA / "JSRT").glob("*.png"))]
    assert min(flipped) > 0


def test_polarity_setting_overrides_and_dicom_header_decides(tmp_path):
    a = phantom_radiograph(128)
    r = radiograph.read_radiograph(_png8(tmp_path / "a.png", a))
    assert radiograph.polarity_of(r)[0] == "clinical"
    assert radiograph.polarity_of(r, "inverted")[0] == "inverted"
    d = radiograph.read_radiograph(_dicom(tmp_path / "a.dcm", a, monochrome1=True))
    pol, evidence = radiograph.polarity_of(d)
    assert pol == "inverted" and evidence.startswith("DICOM MONOCHROME1;")  # the header, not the anatomy ...
    assert "DISAGREES, says clinical" in evidence  # ... which is said when it disagrees (a clinical phantom stored as MONOCHROME1)


# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------


def test_dicom_round_trip_keeps_patient_and_study_with_new_series(tmp_path, run_dir):
    import pydicom

    a = phantom_radiograph(160, seed=2, inverted=True)
    src = _dicom(tmp_path / "in" / "chest.dcm", a, monochrome1=True, bits=12)
    out = tmp_path / "out"
    rep = suppress.suppress_inputs([src], out, weights=run_dir, bone=tmp_path / "bone", progress=False, log=lambda *_: None)
    assert rep.failed == []
    assert _files(out) == ["chest.dcm", "chest.png"]
    before, after = pydicom.dcmread(src), pydicom.dcmread(out / "chest.dcm")
    for tag in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate", "Rows", "Columns",
                "BitsStored", "PhotometricInterpretation", "Modality"):  # fmt: skip
        assert after.get(tag) == before.get(tag), tag
    assert after.SOPInstanceUID != before.SOPInstanceUID and after.SeriesInstanceUID != before.SeriesInstanceUID
    assert list(after.ImageType) == ["DERIVED", "SECONDARY"] and "dae_lib" in after.DerivationDescription
    px = after.pixel_array
    assert px.shape == (160, 160) and px.max() <= 4095 and not np.array_equal(px, before.pixel_array)
    assert Image.open(out / "chest.png").size == (160, 160)
    assert Image.open(tmp_path / "bone" / "chest.png").size == (160, 160)


# --------------------------------------------------------------------------------------------
# Full resolution
# --------------------------------------------------------------------------------------------


def test_detail_finer_than_the_model_grid_passes_through_untouched(run_dir):
    """At 4x the model's size, a +-delta checkerboard averages out of what the model sees, so the
    bone estimate is the same with and without it, and the checkerboard survives exactly."""
    from dae_lib.inference import suppress_full
    from dae_lib.runs import load_model

    model = load_model(run_dir)
    x = torch.from_numpy(np.kron(phantom_radiograph(64, seed=4) * 0.8 + 0.1, np.ones((4, 4)))).float()[None, None]
    checker = 0.02 * torch.from_numpy(np.indices((256, 256)).sum(axis=0) % 2 * 2 - 1.0).float()
    s1, b1 = suppress_full(model, x, 64)
    s2, b2 = suppress_full(model, x + checker, 64)
    assert s1.shape == (1, 1, 256, 256)
    inside = ((s1 > 0.03) & (s1 < 0.97))  # away from the clamp at 0 and 1
    assert torch.allclose((s2 - s1)[inside], checker.expand_as(s1)[inside], atol=1e-5)
    assert torch.allclose(s1 + b1, x, atol=1e-6)


def test_at_the_model_size_it_is_predict(run_dir):
    from dae_lib.inference import predict, suppress_full
    from dae_lib.runs import load_model

    model = load_model(run_dir)
    x = torch.from_numpy(phantom_radiograph(64, seed=5)).float()[None, None]
    assert torch.allclose(suppress_full(model, x, 64)[0], predict(model, x), atol=1e-6)


# --------------------------------------------------------------------------------------------
# Bad inputs: one line each, skipped, exit 2, the good ones done
# --------------------------------------------------------------------------------------------


def test_each_bad_input_is_named_skipped_and_the_exit_status_says_so(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    good = _png8(src / "good.png", phantom_radiograph(128))
    (src / "zero.png").write_bytes(b"")
    (src / "truncated.png").write_bytes(good.read_bytes()[:200])
    (src / "notes.png").write_text("this is not an image\n")
    _dicom(src / "nopixels.dcm", phantom_radiograph(128), pixels=False)
    _png8(src / "tiny.png", phantom_radiograph(128)[:40, :40])
    nan = phantom_radiograph(128).astype(np.float32)
    nan[3, 3] = np.nan
    Image.fromarray(nan, mode="F").save(src / "nan.tif")
    bomb_png(src / "bomb.png")
    (src / "._good.png").write_bytes(b"\0\5\26\7 macOS resource fork")  # hidden: not even looked at
    out = tmp_path / "out"
    code = cli_main(["suppress", str(src), "--out", str(out), "--weights", str(run_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert _files(out) == ["good.png"]
    expected = {
        "zero.png": "empty file", "truncated.png": "truncated", "notes.png": "not an image",
        "nopixels.dcm": "without pixel data", "tiny.png": "too small", "nan.tif": "NaN",
        "bomb.png": "decompression-bomb",
    }  # fmt: skip
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == len(expected)
    for name, reason in expected.items():
        assert any(name in line and reason in line for line in lines), (name, err)
    assert "Traceback" not in err and "._good" not in err


def test_unreadable_file_is_a_one_line_skip(tmp_path, run_dir, monkeypatch):
    src = tmp_path / "in"
    _png8(src / "a.png", phantom_radiograph(128))
    locked = _png8(src / "locked.png", phantom_radiograph(128))
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads anything: make the file unreadable to this process instead
        real_open = Image.open

        def deny(fp, *a, **k):
            if str(fp).endswith("locked.png"):
                raise PermissionError(13, "Permission denied", str(fp))
            return real_open(fp, *a, **k)

        monkeypatch.setattr(Image, "open", deny)
    rep = suppress.suppress_inputs([src], tmp_path / "out", weights=run_dir, progress=False, log=lambda *_: None)
    assert len(rep.done) == 1 and len(rep.failed) == 1
    assert "locked.png" in rep.failed[0] and "permission denied" in rep.failed[0]


# --------------------------------------------------------------------------------------------
# Never overwrite, never half-write
# --------------------------------------------------------------------------------------------


def test_output_folder_equal_to_input_folder_is_refused_and_nothing_written(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    _png8(src / "a.png", phantom_radiograph(128))
    before = _snapshot(src)
    assert cli_main(["suppress", str(src), "--out", str(src), "--weights", str(run_dir)]) == 2
    assert "input folder" in capsys.readouterr().err
    assert _snapshot(src) == before
    assert cli_main(["suppress", str(src), "--out", str(src / "sub"), "--weights", str(run_dir)]) == 2
    assert _snapshot(src) == before


def test_allowed_in_input_folder_still_never_replaces_an_input(tmp_path, run_dir):
    src = tmp_path / "in"
    _png8(src / "a.png", phantom_radiograph(128))
    Image.fromarray(np.rint(phantom_radiograph(128) * 255).astype(np.uint8)).save(src / "b.tif")
    before = _snapshot(src)
    rep = suppress.suppress_inputs([src], src, weights=run_dir, settings=suppress.Settings(allow_out_in_input=True), progress=False, log=lambda *_: None)
    assert _snapshot(src).items() >= before.items()  # every input byte-identical
    assert any("a.png" in f and "would replace an input" in f for f in rep.failed)
    assert (src / "b.png").is_file()  # b.tif -> b.png beside it


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, run_dir):
    src = tmp_path / "in"
    _png8(src / "a.png", phantom_radiograph(128))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"the user's own file")
    rep = suppress.suppress_inputs([src], out, weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.kept == [str(src / "a.png")] and (out / "a.png").read_bytes() == b"the user's own file"
    rep = suppress.suppress_inputs([src], out, weights=run_dir, settings=suppress.Settings(overwrite=True), progress=False, log=lambda *_: None)
    assert rep.done and Image.open(out / "a.png").size == (128, 128)


def test_a_failed_write_leaves_no_partial_file(tmp_path, run_dir, monkeypatch):
    src = tmp_path / "in"
    _png8(src / "a.png", phantom_radiograph(128))
    out = tmp_path / "out"

    def full_disk(self, fp, *a, **k):
        open(fp, "wb").write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    rep = suppress.suppress_inputs([src], out, weights=run_dir, progress=False, log=lambda *_: None)
    assert len(rep.failed) == 1 and "No space left on device" in rep.failed[0] and "a.png" in rep.failed[0]
    assert _files(out) == []  # no partial file, no temporary file


def test_out_naming_an_existing_file_is_refused(tmp_path, run_dir):
    f = _png8(tmp_path / "a.png", phantom_radiograph(128))
    assert cli_main(["suppress", str(f), "--out", str(f), "--weights", str(run_dir)]) == 2


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_pickle_carrying_code_is_refused_and_never_run(tmp_path, run_dir, capsys):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_bytes((run_dir / "config.json").read_bytes())
    _Payload.marker = tmp_path / "pwned"
    torch.save({"model": _Payload()}, folder / "checkpoint.pt")
    img = _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    code = cli_main(["suppress", str(img), "--out", str(tmp_path / "out"), "--weights", str(folder / "checkpoint.pt")])
    assert code == 2 and not _Payload.marker.exists()
    assert "weights_only" in capsys.readouterr().err


def test_checkpoint_of_a_run_loads_like_its_safetensors(tmp_path, run_dir):
    from safetensors.torch import load_file

    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "config.json").write_bytes((run_dir / "config.json").read_bytes())
    torch.save({"model": load_file(str(run_dir / "best.safetensors")), "epoch": 0}, folder / "checkpoint.pt")
    src = _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    a = suppress.suppress_inputs([src], tmp_path / "o1", weights=folder / "checkpoint.pt", progress=False, log=lambda *_: None)
    b = suppress.suppress_inputs([src], tmp_path / "o2", weights=run_dir, progress=False, log=lambda *_: None)
    assert a.done and b.done
    assert (tmp_path / "o1" / "a.png").read_bytes() == (tmp_path / "o2" / "a.png").read_bytes()


def test_weights_of_another_architecture_are_a_one_line_error(tmp_path, capsys):
    other = tiny_run_folder(tmp_path / "r", variant="r_ae")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "config.json").write_bytes((tiny_run_folder(tmp_path / "a", variant="ae") / "config.json").read_bytes())
    (mixed / "best.safetensors").write_bytes((other / "best.safetensors").read_bytes())
    img = _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    assert cli_main(["suppress", str(img), "--out", str(tmp_path / "out"), "--weights", str(mixed)]) == 2
    err = capsys.readouterr().err
    assert "do not fit" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_benchmark_runs_the_command_path_for_one_file():
    from dae_lib.studies.bench import measure

    row = measure("suppress", "file", 256, 1, 1, "released", "cpu")
    assert row["kind"] == "suppress" and row["ms_per_image"] > 0 and row["size"] == 256


def test_a_pt_file_without_weights_is_a_one_line_error(tmp_path, run_dir, capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_bytes((run_dir / "config.json").read_bytes())
    torch.save({"model": {"note": "not tensors"}, "epoch": 3}, folder / "checkpoint.pt")
    img = _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    assert cli_main(["suppress", str(img), "--out", str(tmp_path / "out"), "--weights", str(folder / "checkpoint.pt")]) == 2
    assert "holds no model weights" in capsys.readouterr().err


@pytest.mark.parametrize("word", ["Inverted", "inverse", "", "auto "])
def test_polarity_of_refuses_a_word_it_does_not_know(tmp_path, word):
    """The rule lives where it is used: an unknown setting (notebook 05 with polarity="Inverted")
    is a one-line ConfigError, never read as "auto"."""
    from dae_lib.errors import ConfigError

    r = radiograph.read_radiograph(_png8(tmp_path / "a.png", phantom_radiograph(128)))
    with pytest.raises(ConfigError, match="polarity must be one of auto, clinical, inverted"):
        radiograph.polarity_of(r, word)
