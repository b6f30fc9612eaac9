"""Figures: every saved one carries its provenance line; Fig. 1 is read from the model."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dae_lib.config import load_config  # noqa: E402
from dae_lib.reporting import figures  # noqa: E402
from dae_lib.runs import footer_line  # noqa: E402


def test_a_figure_is_never_saved_without_its_provenance_line(tmp_path, tiny_data):
    with pytest.raises(ValueError, match="provenance line"):
        figures.data_panels(tiny_data, indices=(0,), path=tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
    line = footer_line("phantom", "smoke", [0, 1, 2], commit="0123456789abcdef")
    assert line == "data phantom | profile smoke | 3 seeds (0, 1, 2) | commit 0123456"
    fig = figures.data_panels(tiny_data, indices=(0,), path=tmp_path / "b.png", footer=line)
    assert (tmp_path / "b.png").stat().st_size > 1000 and line in [t.get_text() for t in fig.texts]
    assert figures.saved_footer(tmp_path / "b.png") == line  # the line under the picture, also as text in the file


def test_the_phantom_figure_carries_its_footer_and_a_plain_png_none(tmp_path):
    from PIL import Image

    path = figures.phantom_sample_figure(tmp_path / "p.png", size=64)
    assert figures.saved_footer(path).startswith("data phantom (seed 0) | no training | commit ")
    Image.new("L", (4, 4)).save(tmp_path / "plain.png")
    assert figures.saved_footer(tmp_path / "plain.png") is None


def test_every_saving_figure_function_takes_a_footer():
    import inspect

    saving = [f for name, f in vars(figures).items() if inspect.isfunction(f) and f.__module__ == figures.__name__ and "path" in inspect.signature(f).parameters and not name.startswith("_")]
    assert len(saving) >= 12
    assert [f.__name__ for f in saving if "footer" not in inspect.signature(f).parameters] == ["phantom_sample_figure"]  # builds its own


def test_fig1_shapes_come_from_the_model():
    paper = load_config("smoke", variant="dae", image_size=64)
    narrow = load_config("smoke", variant="dae", image_size=64, channels=(8, 16, 32, 32))
    shapes = figures.layer_shapes(paper)
    assert list(shapes) == ["encoder", "soft_tissue", "bone_seg"]  # the branch runs in training mode
    assert shapes["encoder"][-1][1] == (64, 16, 16) and figures.layer_shapes(narrow)["encoder"][-1][1] == (32, 16, 16)
    texts = lambda cfg: {t.get_text() for t in figures.architecture(cfg, footer="x").axes[0].texts}  # noqa: E731
    # the last two encoder layers keep 64 (32) channels at 16 x 16: one box of two alike layers
    assert "2 x conv 3x3\n64 x 16 x 16" in texts(paper) and "2 x conv 3x3\n32 x 16 x 16" in texts(narrow)
    assert figures.merged_layers([("conv 3x3", (4, 8, 8)), ("conv 3x3", (4, 8, 8)), ("conv 3x3", (8, 8, 8)), ("conv 3x3", (4, 8, 8))]) == [
        ("2 x conv 3x3", (4, 8, 8)), ("conv 3x3", (8, 8, 8)), ("conv 3x3", (4, 8, 8))]  # only neighbours merge
    assert "bone_seg" not in figures.layer_shapes(load_config("smoke", variant="ae", image_size=64))


def test_error_maps_share_one_colour_scale_with_a_colour_bar():
    s = torch.rand(2, 1, 32, 32)
    preds = {"a": s + 0.1, "b": s - 0.3}
    fig = figures.error_maps(s, preds, ["c1", "c2"], footer="x")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4 and len({im.get_clim() for im in images}) == 1
    assert any("|S_hat - S|" in ax.get_ylabel() for ax in fig.axes)  # the colour bar's label


def test_the_layout_report_catches_small_text_and_overlapping_titles(tmp_path):
    from dae_lib.reporting import layout

    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    axes[0].plot([0, 1])
    axes[1].plot([0, 1])
    _, fine = layout.render(fig)
    assert layout.problems(fine) == [] and fine["shown_width"] <= layout.SCREEN_WIDTH
    axes[0].set_title("a title much too long for its panel, running on over the next panel's own title", fontsize=10)
    axes[1].set_title("the next title", fontsize=10)
    _, clash = layout.render(fig)
    assert any("overlaps" in p for p in layout.problems(clash))
    plt.close(fig)
    wide, ax = plt.subplots(figsize=(20, 3))  # 2000 px, shown at 1000: 8 pt text becomes 5.6 px
    ax.set_title("small once scaled", fontsize=8)
    report = layout.save_png(wide, tmp_path / "wide.png", {"Provenance": "x"})
    assert report["min_text_px"] < layout.MIN_TEXT_PX and any("px as shown" in p for p in layout.problems(report))
    assert layout.saved_report(tmp_path / "wide.png") == report  # the file carries its report
    assert layout.problems(None)  # a figure drawn elsewhere has no report: a problem
    plt.close(wide)


def test_a_figure_in_a_notebook_is_shown_once_with_its_layout_report(monkeypatch):
    from dae_lib.reporting import layout

    shown = []
    monkeypatch.setattr(layout, "inline", lambda: True)
    monkeypatch.setattr(layout, "display", lambda obj, metadata=None: shown.append(metadata))
    fig = figures.loss_curves({}, footer="data phantom | profile smoke")
    assert len(shown) == 1 and layout.problems(shown[0][layout.LAYOUT_KEY]) == []
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend does not show it again


def test_the_loss_curves_legend_stays_clear_of_the_curves_and_of_the_footer(tmp_path):
    """Eight runs and a provenance line, measured in the draw that saves the PNG (bbox_inches
    "tight"): a figure-level legend "outside lower center" was drawn over the footer there."""
    import pandas as pd

    from dae_lib.reporting import layout
    from dae_lib.runs import LOG_FILE

    runs = {}
    for k, label in enumerate(["AE", "AE + MS-SSIM", "DAE", "DAE + MS-SSIM", "R-AE", "R-AE + MS-SSIM", "R-DAE", "R-DAE + MS-SSIM"]):
        (tmp_path / str(k)).mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5 + k / 100, 0.4], "val_psnr": [30.0, 31.0 + k / 10, 32.0]}).to_csv(tmp_path / str(k) / LOG_FILE, index=False)
        runs[label] = tmp_path / str(k)
    fig = figures.loss_curves(runs, footer="data phantom | profile smoke | 1 seed (0) | commit 0123456 | 2026-12-07")
    _, report = layout.render(fig)
    assert layout.problems(report) == []
    plt.close(fig)


def test_the_before_after_slider_keeps_a_static_view_for_a_stored_notebook(capsys):
    x, s = torch.rand(32, 32).numpy(), torch.rand(32, 32).numpy()
    assert figures.before_after_slider(x, s) is None  # no live kernel: no widget, only the static view
    assert figures.SLIDER_FALLBACK in capsys.readouterr().out
    plt.close("all")
