"""The suppression command as a careless or hostile user meets it (issue 18): never overwrite a
user's file, never write a silently wrong image, one bad file never stops a batch, every error one
line. Grouped by subject: data loss, silently wrong output, isolation of each file, name
collisions, messages, smaller cases, what a mutation check and a hostile-user review found."""
import csv
import errno
import math
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dae_lib import radiograph, suppress
from dae_lib.cli import main as cli_main
from helpers import SHARED_DATA, phantom_radiograph, real_data, tiny_run_folder
from test_suppress import _dicom, _files, _png8, _snapshot


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run_folder(tmp_path_factory.mktemp("run") / "ae")


def _cli(capsys, *args):
    """(exit status, stdout, stderr lines starting with 'error:', whole stderr)."""
    code = cli_main(["suppress", *map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, [line for line in err.splitlines() if line.startswith("error:")], err


def _report(folder):
    """The rows of the one report CSV in ``folder``."""
    (path,) = sorted(folder.glob(f"{suppress.REPORT_PREFIX}-*.csv"))
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------
# Data loss: a file in --out or --bone is never replaced without --overwrite
# --------------------------------------------------------------------------------------------


def test_user_file_named_like_a_dicom_preview_is_kept_and_the_input_refused(tmp_path, run_dir, capsys):
    src = _dicom(tmp_path / "in" / "mono2.dcm", phantom_radiograph(128), monochrome1=False)
    out = tmp_path / "o"
    out.mkdir()
    (out / "mono2.png").write_bytes(b"keep")
    before = _snapshot(out)
    code, stdout, errors, _ = _cli(capsys, src, "--out", out, "--weights", run_dir)
    assert code == 2 and len(errors) == 1
    assert "mono2.dcm" in errors[0] and "mono2.png" in errors[0] and "--overwrite" in errors[0]
    after = _snapshot(out)
    assert all(after[p] == before[p] for p in before)  # the user's file byte-identical (and untouched)
    assert not (out / "mono2.dcm").exists()  # nothing written for it
    assert "failed 1" in stdout


def test_existing_bone_file_is_kept_and_nothing_written_for_that_input(tmp_path, run_dir, capsys):
    src = _png8(tmp_path / "in" / "x.png", phantom_radiograph(128))
    out, bone = tmp_path / "o", tmp_path / "b"
    bone.mkdir()
    (bone / "x.png").write_bytes(b"the user's bone image")
    code, _, errors, _ = _cli(capsys, src, "--out", out, "--bone", bone, "--weights", run_dir)
    assert code == 2 and len(errors) == 1 and str(bone / "x.png") in errors[0]
    assert (bone / "x.png").read_bytes() == b"the user's bone image"
    assert _files(out) == []  # its soft-tissue output is not written either
    code, *_ = _cli(capsys, src, "--out", out, "--bone", bone, "--weights", run_dir, "--overwrite")
    assert code == 0 and Image.open(bone / "x.png").size == (128, 128)


def test_a_file_appearing_while_the_command_runs_is_not_replaced(tmp_path, run_dir, monkeypatch):
    srcs = [_png8(tmp_path / "in" / f"{n}.png", phantom_radiograph(128, seed=k)) for k, n in enumerate("ab")]
    out = tmp_path / "o"
    real = suppress.suppress_radiograph

    def racing(*a, **k):  # another writer puts a file at a.png after the check, before the write
        res = real(*a, **k)
        if not (out / "a.png").exists():
            out.mkdir(exist_ok=True)
            (out / "a.png").write_bytes(b"the other writer's")
        return res

    monkeypatch.setattr(suppress, "suppress_radiograph", racing)
    rep = suppress.suppress_inputs(srcs, out, weights=run_dir, progress=False, log=lambda *_: None)
    assert (out / "a.png").read_bytes() == b"the other writer's"
    assert len(rep.failed) == 1 and "appeared meanwhile" in rep.failed[0]
    assert rep.done == [str(srcs[1])] and _files(out) == ["a.png", "b.png"]


def test_an_input_whose_second_output_fails_keeps_none_of_its_outputs(tmp_path, run_dir, monkeypatch):
    src = _png8(tmp_path / "in" / "x.png", phantom_radiograph(128))
    out, bone = tmp_path / "o", tmp_path / "b"
    real = radiograph.write_png

    def bone_fails(path, *a, **k):
        if bone in path.parents:
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(suppress, "write_png", bone_fails)
    rep = suppress.suppress_inputs([src], out, weights=run_dir, bone=bone, progress=False, log=lambda *_: None)
    assert len(rep.failed) == 1 and "Input/output error" in rep.failed[0]
    assert _files(out) == []  # the soft-tissue file it wrote first is removed again


# --------------------------------------------------------------------------------------------
# Silently wrong output
# --------------------------------------------------------------------------------------------


def test_bone_folder_equal_to_out_is_refused_before_anything(tmp_path, run_dir, capsys):
    src = _png8(tmp_path / "in" / "x.png", phantom_radiograph(128))
    code, _, errors, _ = _cli(capsys, src, "--out", tmp_path / "o", "--bone", tmp_path / "o", "--weights", run_dir)
    assert code == 2 and len(errors) == 1 and "--bone" in errors[0]
    assert not (tmp_path / "o").exists()


def test_bone_folder_inside_out_never_shares_a_path(tmp_path, run_dir):
    src = tmp_path / "in"
    _png8(src / "x.png", phantom_radiograph(128))
    _png8(src / "b" / "x.png", phantom_radiograph(128, seed=1))  # its soft tissue would be o/b/x.png = the bone of x.png
    out = tmp_path / "o"
    rep = suppress.suppress_inputs([src], out, weights=run_dir, bone=out / "b", progress=False, log=lambda *_: None)
    assert rep.done == [str(src / "b" / "x.png")]  # first in sorted order: its soft tissue o/b/x.png, its bone o/b/b/x.png
    assert len(rep.failed) == 1 and rep.failed[0].startswith(f"{src / 'x.png'}: its output") and "also the output of" in rep.failed[0]
    assert _files(out) == ["b/b/x.png", "b/x.png"]


def _exif_jpeg(path, upright, orientation=6):
    """A JPEG stored sideways with an EXIF orientation that viewers undo: they show ``upright``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = np.rot90(upright, 1)  # orientation 6: the viewer turns the stored image 90 degrees clockwise
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(stored * 255).astype(np.uint8)).save(path, quality=95, exif=exif.tobytes())
    return path


def test_exif_orientation_is_applied_and_the_output_is_upright_without_a_tag(tmp_path, capsys):
    from dae_lib.phantom import chest_phantom

    x, s, _ = (t.numpy().astype(np.float64) for t in chest_phantom(512, seed=11))
    x, s = x[:, 32:480], s[:, 32:480]  # not square: a sideways output would have the wrong shape
    src = _exif_jpeg(tmp_path / "in" / "chest.jpg", x)
    r = radiograph.read_radiograph(src)
    assert r.pixels.shape == x.shape and np.abs(r.pixels - x).mean() < 0.01 and r.oriented == "EXIF orientation 6 applied"
    assert radiograph.polarity_of(r)[0] == "clinical"
    out = tmp_path / "o"
    code, stdout, errors, _ = _cli(capsys, src, "--out", out)  # the released model
    assert code == 0 and errors == []
    im = Image.open(out / "chest.png")
    assert im.size == (448, 512) and im.getexif().get(0x0112) is None
    o = np.asarray(im, dtype=np.float64) / 255
    assert np.mean((o - s) ** 2) < np.mean((x - s) ** 2)  # better than doing nothing, as it is upright
    assert "EXIF orientation 6 applied" in stdout and "EXIF orientation 6 applied" in _report(out)[0]["evidence"]


@pytest.mark.parametrize("turn", [0, 1, 3])
@pytest.mark.parametrize("pad", [None, "left-black", "right-white"])
def test_lone_image_polarity_holds_turned_and_padded(turn, pad):
    for inverted in (False, True):
        a = np.rot90(phantom_radiograph(256, seed=turn + 5, inverted=inverted), turn)
        if pad:
            side, value = pad.split("-")
            a = np.pad(a, ((0, 0), (96, 0) if side == "left" else (0, 96)), constant_values=1.0 if value == "white" else 0.0)
        ev = radiograph.anatomy_evidence(a)
        assert ev.decision == ("inverted" if inverted else "clinical"), (str(ev), inverted)
        if pad:
            assert 96 <= ev.trimmed < 96 + 16  # the padding (and the phantom's own flat edge, if any)


def test_polarity_unsure_refuses_the_file_with_a_hint_and_the_setting_decides(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    rng = np.random.default_rng(0)
    _png8(src / "noise.png", rng.uniform(0.2, 0.8, (128, 128)))  # no anatomy to tell by
    _png8(src / "chest.png", phantom_radiograph(128))
    out = tmp_path / "o"
    code, _, errors, _ = _cli(capsys, src, "--out", out, "--weights", run_dir)
    assert code == 2 and len(errors) == 1 and "noise.png" in errors[0] and "unsure" in errors[0] and "--polarity" in errors[0]
    assert _files(out) == ["chest.png"]
    code, *_ = _cli(capsys, src / "noise.png", "--out", out, "--weights", run_dir, "--polarity", "clinical")
    assert code == 0 and _files(out) == ["chest.png", "noise.png"]


@real_data
def test_lone_image_polarity_on_the_shared_radiographs_turned_and_padded():
    """Every shared radiograph, both polarities, turned 90 degrees or padded by 1/4 on the left
    (where the rule without trimming failed most): never wrong, never unsure."""
    wrong = []
    for f in sorted((SHARED_DATA / "JSRT").glob("*.png")):
        x = np.asarray(Image.open(f), dtype=np.float32) / 255
        for stored, a in (("inverted", x), ("clinical", 1 - x)):
            for name, v in (("turned", np.rot90(a)), ("padded", np.pad(a, ((0, 0), (128, 0)))), ("both", np.pad(np.rot90(a), ((0, 0), (0, 128)), constant_values=1))):
                if radiograph.anatomy_evidence(v).decision != stored:
                    wrong.append((f.name, stored, name))
    assert wrong == []


@pytest.mark.parametrize("photometric, shape, expected", [
    ("MONOCHROME2", "INVERSE", "inverted"), ("MONOCHROME1", "INVERSE", "clinical"),
    ("MONOCHROME2", "IDENTITY", "clinical"), ("MONOCHROME1", None, "inverted"),
])  # fmt: skip
def test_presentation_lut_shape_inverse_is_honoured(tmp_path, photometric, shape, expected):
    path = _dicom(tmp_path / "a.dcm", phantom_radiograph(128), monochrome1=photometric == "MONOCHROME1")
    if shape:
        import pydicom

        ds = pydicom.dcmread(path)
        ds.PresentationLUTShape = shape
        ds.save_as(path)
    pol, evidence = radiograph.polarity_of(radiograph.read_radiograph(path))
    assert pol == expected and evidence.startswith(f"DICOM {photometric}") and (shape or "") in evidence


def test_each_files_polarity_and_evidence_are_printed_and_in_the_report(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    _png8(src / "clin.png", phantom_radiograph(128))
    _png8(src / "inv.png", phantom_radiograph(128, inverted=True))
    _dicom(src / "d.dcm", phantom_radiograph(128, inverted=True), monochrome1=True)
    out = tmp_path / "o"
    code, stdout, _, _ = _cli(capsys, src, "--out", out, "--weights", run_dir)
    assert code == 0
    lines = {line.split(":")[0].rsplit("/", 1)[-1]: line for line in stdout.splitlines() if line.startswith(str(src))}
    assert "128 x 128 px, 8-bit, stored clinical (anatomy: centre band brighter" in lines["clin.png"]
    assert "inverted (anatomy: centre band darker" in lines["inv.png"]
    assert "inverted (DICOM MONOCHROME1; the anatomy rule agrees" in lines["d.dcm"]
    rows = {os.path.basename(r["input"]): r for r in _report(out)}
    assert {k: (r["status"], r["polarity"]) for k, r in rows.items()} == {
        "clin.png": ("done", "clinical"), "inv.png": ("done", "inverted"), "d.dcm": ("done", "inverted")}  # fmt: skip
    assert rows["inv.png"]["evidence"].startswith("anatomy: centre band darker") and rows["d.dcm"]["outputs"].count(";") == 1
    assert {k: (r["size"], r["bits"]) for k, r in rows.items()} == {"clin.png": ("128 x 128", "8"), "inv.png": ("128 x 128", "8"), "d.dcm": ("128 x 128", "16")}
    assert all(math.isfinite(float(r["seconds"])) and float(r["seconds"]) >= 0 for r in rows.values())  # a time, not a speed
    assert "report" in stdout.splitlines()[-1]


def test_a_few_milliseconds_are_reported_as_such_not_as_zero(tmp_path, run_dir, capsys, monkeypatch):
    """A fast machine suppresses a 128 px image in milliseconds: the report keeps that duration (a
    monotonic clock, enough digits). The clock is faked (each reading 1.5 ms after the last), so the
    test does not depend on this machine's speed."""
    clock = iter(range(10**9))
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock) * 0.0015)
    src = tmp_path / "in"
    _png8(src / "a.png", phantom_radiograph(128))
    code, stdout, _, _ = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir)
    (row,) = _report(tmp_path / "o")
    assert code == 0 and row["status"] == "done"
    seconds = float(row["seconds"])
    assert 0 < seconds < 1 and round(seconds / 0.0015, 6) == round(seconds / 0.0015)  # whole clock steps, none lost to rounding
    assert " ms -> " in next(line for line in stdout.splitlines() if line.startswith(str(src)))  # "0.0 s" no more


# --------------------------------------------------------------------------------------------
# One bad file never stops the batch; the summary always prints
# --------------------------------------------------------------------------------------------


def _big_endian_dicom(path, a):
    import pydicom
    from pydicom.uid import ExplicitVRBigEndian

    _dicom(path, a, monochrome1=False)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.PixelData = ds.pixel_array.astype(">u2").tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def test_big_endian_dicom_first_in_a_folder_is_suppressed_and_the_rest_done(tmp_path, run_dir, capsys):
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    src = tmp_path / "in"
    a = phantom_radiograph(128)
    _big_endian_dicom(src / "a_big.dcm", a)
    assert str(pydicom.dcmread(src / "a_big.dcm").file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.2"
    _png8(src / "b.png", a)
    code, *_ = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir)
    assert code == 0 and _files(tmp_path / "o") == ["a_big.dcm", "a_big.png", "b.png"]
    d = pydicom.dcmread(tmp_path / "o" / "a_big.dcm")
    assert d.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and d.pixel_array.shape == (128, 128)
    assert np.abs(d.pixel_array / 4095 - np.asarray(Image.open(tmp_path / "o" / "a_big.png")) / 255).max() < 0.01


def test_an_unexpected_error_in_one_file_is_its_line_and_the_batch_goes_on(tmp_path, run_dir, capsys, monkeypatch):
    src = tmp_path / "in"
    for k in range(3):
        _png8(src / f"{k}.png", phantom_radiograph(128, seed=k))
    real = suppress.read_radiograph
    monkeypatch.setattr(suppress, "read_radiograph", lambda p: (_ for _ in ()).throw(RuntimeError("boom")) if p.name == "0.png" else real(p))
    code, stdout, errors, _ = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir)
    assert code == 2 and len(errors) == 1 and "0.png" in errors[0] and "RuntimeError: boom" in errors[0]
    assert _files(tmp_path / "o") == ["1.png", "2.png"] and "done 2" in stdout and "failed 1" in stdout


@pytest.mark.parametrize("code_, stops", [(errno.EACCES, False), (errno.EROFS, True), (errno.ENOSPC, True)])
def test_read_only_or_full_disk_is_one_line_and_the_summary_prints(tmp_path, run_dir, capsys, monkeypatch, code_, stops):
    src = tmp_path / "in"
    for k in range(3):
        _png8(src / f"{k}.png", phantom_radiograph(128, seed=k))
    out = tmp_path / "o"
    real = radiograph.write_png

    def failing(path, *a, **k):
        if path.name != "0.png":
            raise OSError(code_, os.strerror(code_), str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(suppress, "write_png", failing)
    code, stdout, errors, err = _cli(capsys, src, "--out", out, "--weights", run_dir)
    assert code == 2 and "done 1" in stdout
    assert _files(out) == ["0.png"] and Image.open(out / "0.png").size == (128, 128)  # what was written stays intact
    assert os.strerror(code_) in errors[0] and "1.png" in errors[0]
    if stops:  # no other file could be written: the rest are not tried (counted, and listed in the report)
        assert len(errors) == 1 and "not tried 1" in stdout
        assert [r["status"] for r in _report(out)] == ["done", "failed", "not tried"]
    else:
        assert len(errors) == 2 and "2.png" in errors[1] and "not tried" not in stdout


def test_ctrl_c_prints_the_summary_and_reports_the_rest_as_not_tried(tmp_path, run_dir, capsys, monkeypatch):
    src = tmp_path / "in"
    for k in range(3):
        _png8(src / f"{k}.png", phantom_radiograph(128, seed=k))
    real = suppress.suppress_one

    def interrupted(trained, job, *a):
        if job.source.name == "1.png":
            raise KeyboardInterrupt
        return real(trained, job, *a)

    monkeypatch.setattr(suppress, "suppress_one", interrupted)
    code, stdout, _, err = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir)
    assert code == 130 and "done 1" in stdout and "interrupted" in err
    rows = _report(tmp_path / "o")
    assert [r["status"] for r in rows] == ["done", "not tried", "not tried"]
    assert float(rows[0]["seconds"]) >= 0 and [r["seconds"] for r in rows[1:]] == ["", ""]  # a time only for what was done


def test_a_folder_with_nothing_usable_is_an_error(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "notes.txt").write_text("no images here\n")
    code, _, errors, _ = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir)
    assert code == 2 and len(errors) == 1 and "nothing to suppress" in errors[0]
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------
# Name collisions: distinct, predictable names
# --------------------------------------------------------------------------------------------


def test_dicom_series_named_by_uid_or_number_and_same_stem_inputs_all_get_their_own_names(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    a = phantom_radiograph(128)
    for name in ("IMG.001", "IMG.002", "1.2.840.1.5", "1.2.840.1.6", "1.2.840.1.7.dcm"):
        _dicom(src / name, a)
    _png8(src / "a.png", a)
    _png8(src / "a.tif", a)
    _dicom(src / "a.dcm", a)
    out = tmp_path / "o"
    code, stdout, errors, _ = _cli(capsys, src, "--out", out, "--weights", run_dir)
    assert code == 0 and errors == [] and "done 8" in stdout
    assert _files(out) == sorted([
        "IMG.001.dcm", "IMG.001.png", "IMG.002.dcm", "IMG.002.png", "1.2.840.1.5.dcm", "1.2.840.1.5.png",
        "1.2.840.1.6.dcm", "1.2.840.1.6.png", "1.2.840.1.7.dcm", "1.2.840.1.7.png",
        "a.png.png", "a.tif.png", "a.dcm.dcm", "a.dcm.png",
    ])  # fmt: skip
    code, stdout, *_ = _cli(capsys, src, "--out", out, "--weights", run_dir)  # the same names again: all there
    assert code == 0 and "done 0, skipped 8" in stdout


def test_names_that_still_collide_are_numbered_in_sorted_order(tmp_path):
    jobs = [suppress.Job(tmp_path / n, suppress.Path(n)) for n in ("a.PNG", "A.png", "b.png", "b.png.jpg", "b.jpg")]
    suppress.output_names(jobs)
    assert {str(j.rel): j.name for j in jobs} == {
        "A.png": "A.png", "a.PNG": "a.PNG~2",  # only case differs: numbered, A < a
        "b.png": "b.png", "b.jpg": "b.jpg",  # b.png and b.jpg would both be b: each keeps its whole name ...
        "b.png.jpg": "b.png~2",  # ... and b.png.jpg, named b.png by the first rule, now collides: numbered
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# Unclear or misleading messages
# --------------------------------------------------------------------------------------------


def test_jpeg_lossless_dicom_without_a_decoder_is_one_line_saying_what_to_install(tmp_path, run_dir, capsys):
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    path = _dicom(tmp_path / "in" / "jl.dcm", phantom_radiograph(128))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([b"\xff\xd8not really jpeg\xff\xd9"])
    ds.save_as(path)
    try:
        radiograph.read_radiograph(path)
        pytest.skip("a JPEG decoder is installed here")
    except radiograph.DataError:
        pass
    code, _, errors, err = _cli(capsys, path, "--out", tmp_path / "o", "--weights", run_dir)
    assert code == 2 and len(errors) == 1 and len(err.strip().splitlines()) == 1
    assert "needs a decoder: pip install pylibjpeg" in errors[0] and "jl.dcm" in errors[0]


def test_a_file_name_with_a_newline_cannot_forge_a_line(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.png\nerror: forged.png").write_bytes(b"not an image")
    _png8(src / "good.png", phantom_radiograph(128))
    code, stdout, errors, err = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir)
    assert code == 2 and len(errors) == 1 and "x.png\\nerror: forged.png" in errors[0]
    assert not any(line.startswith("error: forged") for line in err.splitlines())


# --------------------------------------------------------------------------------------------
# Smaller: lossy marks, symbolic links, signed TIFF, memory
# --------------------------------------------------------------------------------------------


def test_derived_dicom_keeps_lossy_compression_and_its_file_meta_matches(tmp_path, run_dir):
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    path = _dicom(tmp_path / "in" / "l.dcm", phantom_radiograph(128))
    ds = pydicom.dcmread(path)
    ds.LossyImageCompression, ds.LossyImageCompressionRatio = "01", "10"
    ds.save_as(path)
    rep = suppress.suppress_inputs([path], tmp_path / "o", weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.failed == []
    d = pydicom.dcmread(tmp_path / "o" / "l.dcm")
    assert d.LossyImageCompression == "01"
    assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID != ds.SOPInstanceUID
    assert d.file_meta.MediaStorageSOPClassUID == d.SOPClassUID and d.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_a_symlinked_subfolder_of_out_is_not_written_through(tmp_path, run_dir):
    src = tmp_path / "in"
    _png8(src / "sub" / "x.png", phantom_radiograph(128))
    _png8(src / "y.png", phantom_radiograph(128))
    out, elsewhere = tmp_path / "o", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    rep = suppress.suppress_inputs([src], out, weights=run_dir, progress=False, log=lambda *_: None)
    assert len(rep.failed) == 1 and "symbolic link" in rep.failed[0] and "x.png" in rep.failed[0]
    assert list(elsewhere.iterdir()) == [] and (out / "y.png").is_file()


def test_signed_16_bit_tiff_comes_back_as_one_on_its_scale(tmp_path, run_dir):
    a = phantom_radiograph(128)
    v = np.rint(a * 4095 - 2048).astype(np.int16)  # 12-bit signed values
    src = radiograph.write_signed_tiff(tmp_path / "in" / "s.tif", a, (-2048.0, 2047.0))
    assert np.array_equal(np.asarray(Image.open(src)), v)  # the writer is read back exactly by Pillow
    r = radiograph.read_radiograph(src)
    assert r.is_signed and r.scale == (-2048.0, 2047.0) and np.abs(r.pixels - a).max() < 1e-3
    rep = suppress.suppress_inputs([src], tmp_path / "o", weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.failed == [] and _files(tmp_path / "o") == ["s.tif"]
    o = np.asarray(Image.open(tmp_path / "o" / "s.tif"))
    assert o.shape == (128, 128) and o.min() >= -2048 and o.max() <= 2047 and o.min() < 0


def test_chunked_conversion_equals_the_direct_one():
    a = np.random.default_rng(1).uniform(-0.1, 1.1, (300, 70)).astype(np.float32)
    direct = np.rint(10 + np.clip(a.astype(np.float64), 0, 1) * 4085).astype(np.uint16)
    assert np.array_equal(radiograph.to_stored(a, (10.0, 4095.0), np.uint16, rows=7), direct)


# --------------------------------------------------------------------------------------------
# What a mutation check found untested on this path
# --------------------------------------------------------------------------------------------


def test_24_a_dicom_write_that_fails_halfway_leaves_no_file(tmp_path, run_dir, monkeypatch):
    """write_dicom writes under a temporary name and renames: a failure halfway (a full disk)
    leaves neither a partial .dcm nor a temporary file, and the input's preview is removed too."""
    import pydicom

    src = _dicom(tmp_path / "in" / "d.dcm", phantom_radiograph(128))
    out = tmp_path / "o"

    def half(path, ds, *a, **k):
        with open(path, "wb") as f:
            f.write(b"DICM half a file")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pydicom, "dcmwrite", half)
    rep = suppress.suppress_inputs([src], out, weights=run_dir, progress=False, log=lambda *_: None)
    assert len(rep.failed) == 1 and "No space left on device" in rep.failed[0]
    assert [p.name for p in out.iterdir() if not p.name.startswith(suppress.REPORT_PREFIX)] == []


def test_24_derived_dicom_is_written_in_the_transfer_syntax_its_file_meta_names(tmp_path, run_dir):
    import pydicom

    src = _big_endian_dicom(tmp_path / "in" / "b.dcm", phantom_radiograph(128))
    assert suppress.suppress_inputs([src], tmp_path / "o", weights=run_dir, progress=False, log=lambda *_: None).failed == []
    d = pydicom.dcmread(tmp_path / "o" / "b.dcm")
    assert d.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # explicit VR little endian ...
    assert d.original_encoding == (False, True)  # ... and the data set really is encoded so
    assert d.file_meta.MediaStorageSOPInstanceUID == d.SOPInstanceUID and d.file_meta.MediaStorageSOPClassUID == d.SOPClassUID


def test_24_the_suppression_model_is_float32_channels_last_and_holds_the_released_weights_exactly():
    """Without the real data the released weights' numerics are otherwise unchecked: the loaded
    model must be float32 holding the file's values exactly (stored as float16 to halve the file,
    release.py; a model cast to float16 would run in half precision), in the channels-last layout
    the inputs get on this device (1.8x on a CPU)."""
    from safetensors.torch import load_file

    from dae_lib.device import fastest
    from dae_lib.runs import DEFAULT_RELEASE, RELEASED_DIR

    trained = suppress.load_suppression_model(None, torch.device("cpu"))
    model, size = trained.model, trained.image_size
    stored = load_file(str(RELEASED_DIR / DEFAULT_RELEASE / "best.safetensors"))
    own = model.state_dict()
    assert size == 512 and set(own) == set(stored)
    for k, v in stored.items():
        if own[k].is_floating_point():  # (BatchNorm's batch counts are integers in the model)
            assert own[k].dtype == torch.float32 and torch.equal(own[k], v.float()), k
    convs = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and fastest(torch.device("cpu"))["channels_last"]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs if w.dim() == 4 and w.shape[-1] > 1)


# --------------------------------------------------------------------------------------------
# What a hostile-user review of the command found next (each case its own line, exit status)
# --------------------------------------------------------------------------------------------


def test_review_a_folder_named_like_an_output_gets_its_own_name(tmp_path, run_dir):
    src = tmp_path / "in"
    _png8(src / "x.png" / "y.png", phantom_radiograph(128))  # a folder x.png/, its output folder out/x.png/
    _png8(src / "x.tif", phantom_radiograph(128, seed=1))  # would be out/x.png: that folder
    out = tmp_path / "o"
    rep = suppress.suppress_inputs([src], out, weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.failed == [] and len(rep.done) == 2
    assert _files(out) == ["x.png/y.png", "x~2.png"]


def test_review_a_folder_or_broken_link_at_an_output_path_is_refused_not_kept(tmp_path, run_dir):
    src = tmp_path / "in"
    _png8(src / "a.png", phantom_radiograph(128))
    _png8(src / "b.png", phantom_radiograph(128, seed=1))
    out = tmp_path / "o"
    (out / "a.png").mkdir(parents=True)
    (out / "b.png").symlink_to(tmp_path / "nowhere")
    rep = suppress.suppress_inputs([src], out, weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.done == [] and rep.kept == [] and len(rep.failed) == 2
    assert "is a folder" in rep.failed[0] and "is a broken symbolic link" in rep.failed[1]


def test_review_a_file_name_that_is_not_utf8_is_reported(tmp_path, run_dir, capsys):
    src = tmp_path / "in"
    good = _png8(src / "a.png", phantom_radiograph(128))
    os.rename(good, os.path.join(os.fsencode(src), b"bad\xffname.png"))
    code, stdout, errors, _ = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir)
    assert code == 0 and errors == [] and "done 1" in stdout and "\\udcff" in stdout
    report = next((tmp_path / "o").glob(f"{suppress.REPORT_PREFIX}-*.csv"))
    assert b"bad\xffname.png" in report.read_bytes()  # the name as the file system has it


def test_review_out_above_the_input_folder_still_finds_the_inputs(tmp_path, run_dir, monkeypatch):
    _png8(tmp_path / "scans" / "a.png", phantom_radiograph(128))
    monkeypatch.chdir(tmp_path)
    rep = suppress.suppress_inputs(["scans"], ".", weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.done == ["scans/a.png"] and (tmp_path / "a.png").is_file()


def test_review_the_same_file_given_twice_is_done_once(tmp_path, run_dir, monkeypatch):
    _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    monkeypatch.chdir(tmp_path)
    rep = suppress.suppress_inputs(["in/a.png", "./in/a.png", "in/../in/a.png", "in"], "o", weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.done == ["in/a.png"] and rep.failed == [] and _files(tmp_path / "o") == ["a.png"]


def test_review_a_rerun_with_out_in_the_input_folder_skips_its_own_outputs(tmp_path, run_dir):
    src = tmp_path / "in"
    Image.fromarray(np.rint(phantom_radiograph(128) * 255).astype(np.uint8)).save(src.mkdir() or src / "a.tif")
    first = suppress.suppress_inputs([src], src, weights=run_dir, settings=suppress.Settings(allow_out_in_input=True), progress=False, log=lambda *_: None)
    again = suppress.suppress_inputs([src], src, weights=run_dir, settings=suppress.Settings(allow_out_in_input=True), progress=False, log=lambda *_: None)
    assert len(first.done) == 1 and again.done == [] and again.kept == [str(src / "a.tif")] and again.failed == []
    assert sorted(p.name for p in src.iterdir() if not p.name.startswith(suppress.REPORT_PREFIX)) == ["a.png", "a.tif"]


@pytest.mark.parametrize("device", ["mps", "xpu", "meta", "cuda:7", "nonsense"])
def test_review_a_device_this_project_does_not_run_on_is_one_line(tmp_path, run_dir, capsys, device):
    src = _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    code, _, errors, _ = _cli(capsys, src, "--out", tmp_path / "o", "--weights", run_dir, "--device", device)
    assert code == 2 and len(errors) == 1 and device.split(":")[0] in errors[0]
    assert not (tmp_path / "o").exists()


def test_review_ctrl_c_while_the_command_still_loads_is_one_line(capsys):
    from dae_lib.__main__ import _interruptible

    def loading():
        raise KeyboardInterrupt

    assert _interruptible(loading) == 130 and capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("drop", ["BitsStored", "PhotometricInterpretation", "SOPClassUID+meta"])
def test_review_a_dicom_lacking_a_needed_tag_names_it(tmp_path, drop):
    import pydicom

    path = _dicom(tmp_path / "d.dcm", phantom_radiograph(128))
    ds = pydicom.dcmread(path)
    del ds[drop.split("+")[0]]
    if drop.endswith("+meta"):
        del ds.file_meta["MediaStorageSOPClassUID"]
    pydicom.dcmwrite(path, ds)
    with pytest.raises(radiograph.DataError, match=f"lacks {drop.split('+')[0]}"):
        radiograph.read_radiograph(path)


def test_review_a_dicom_whose_rows_disagree_with_its_pixel_data_is_refused(tmp_path):
    import pydicom

    path = _dicom(tmp_path / "d.dcm", phantom_radiograph(160))
    ds = pydicom.dcmread(path)
    ds.Rows = 100
    ds.save_as(path)
    with pytest.raises(radiograph.DataError, match="pixel data of 51,200 bytes; Rows x Columns x BitsAllocated say 32,000"):
        radiograph.read_radiograph(path)


def test_review_a_16_bit_colour_png_is_refused_not_read_at_8_bits(tmp_path):
    import struct
    import zlib

    h = w = 64
    rows = b"".join(b"\0" + np.full((w, 3), 3000, ">u2").tobytes() for _ in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path = tmp_path / "rgb48.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))  # fmt: skip
    with pytest.raises(radiograph.DataError, match="16-bit colour PNG"):
        radiograph.read_radiograph(path)


def test_review_a_long_but_legal_file_name_is_written(tmp_path, run_dir):
    name = "x" * 240 + ".png"
    src = _png8(tmp_path / "in" / name, phantom_radiograph(128))
    rep = suppress.suppress_inputs([src], tmp_path / "o", weights=run_dir, progress=False, log=lambda *_: None)
    assert rep.failed == [] and _files(tmp_path / "o") == [name]


def test_review_inputs_that_give_no_file_are_each_a_line_and_in_the_report(tmp_path, run_dir, capsys):
    good = _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    out = tmp_path / "o"
    code, stdout, errors, _ = _cli(capsys, good, tmp_path / "empty", tmp_path / "fifo", tmp_path / "dangling", tmp_path / "gone", "--out", out, "--weights", run_dir)
    assert code == 2 and "done 1" in stdout and len(errors) == 4
    for name, why in (("empty", "no PNG, JPEG, TIFF or DICOM file in this folder"), ("fifo", "not a regular file"),
                      ("dangling", "a broken symbolic link"), ("gone", "no such file")):  # fmt: skip
        assert any(name in e and why in e for e in errors), (name, errors)
    assert sorted(r["status"] for r in _report(out)) == ["done"] + ["failed"] * 4


def test_review_an_out_that_cannot_be_written_is_refused_before_any_input_is_read(tmp_path, run_dir, capsys, monkeypatch):
    src = _png8(tmp_path / "in" / "a.png", phantom_radiograph(128))
    monkeypatch.setattr(suppress, "read_radiograph", lambda p: pytest.fail("an input was read"))
    code, _, errors, _ = _cli(capsys, src, "--out", src / "sub", "--weights", run_dir)  # a file in its path
    assert code == 2 and len(errors) == 1 and "--out cannot be written" in errors[0]
    code, _, errors, _ = _cli(capsys, src, "--out", "", "--weights", run_dir)
    assert code == 2 and "--out is empty" in errors[0]
