"""Whether a stored figure can be read at the size a reader sees it.

An executed notebook is read on GitHub or in JupyterLab, where an image output is shown at most
about ``SCREEN_WIDTH`` px wide (``pipeline.compact_png`` stores it at that width; a wider figure is
scaled down, and its text with it). The rule this module measures, for every figure the library
draws, in the very draw that renders the stored PNG:

* **text height**: every visible text (titles, labels, tick labels, legends, annotations, the
  provenance footer) has an em size of at least ``MIN_TEXT_PX`` px *as shown*:
  ``fontsize_pt * dpi / 72 * min(1, SCREEN_WIDTH / png_width)``. 9 px is where text stops being
  legible on a screen: it is the smallest size browsers let a page set by default (Chrome's and
  Firefox's minimum-font-size floor for unreadably small text sits at 6-9 px), two thirds of the
  13-14 px body text of GitHub and JupyterLab; matplotlib's default 10 pt at 100 dpi is 13.9 px.
* **no overlaps**: no two visible texts' boxes (as matplotlib's renderer measures them) intersect
  by more than ``OVERLAP_PX`` px in both directions: a title running into a colour bar's label or
  a suptitle over the panel titles is caught.

The report travels with the image: as notebook output metadata under ``LAYOUT_KEY`` (``show``),
and as a PNG text field of a saved figure (``save_png``), so a test over the committed executed
copies can check every stored figure without redrawing it.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from IPython.display import Image as ShownImage, display
from matplotlib.text import Text
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..atomic import atomic_path

#: Image outputs are shown (and stored: pipeline.compact_png) at most this wide, in px.
SCREEN_WIDTH = 1000
#: The smallest em size (px, as shown) a stored figure's text may have; see the module docstring.
MIN_TEXT_PX = 9.0
#: Two texts overlap when their boxes intersect by more than this (px) both across and down.
OVERLAP_PX = 1.0
#: Where the report lives: the output metadata key of a shown figure, the PNG text field of a saved one.
LAYOUT_KEY = "dae_lib_layout"
#: Saved figures are for screens: 100 dpi.
DPI = 100


def _axis_texts(ax) -> list[Text]:
    """The texts an axes draws: titles, its own texts, axis labels, the tick labels of the ticks in
    view (ticks outside the view limits are not drawn), offset texts and its legend's texts."""
    out = [ax.title, ax._left_title, ax._right_title, *ax.texts]
    if ax.axison:
        for axis in (ax.xaxis, ax.yaxis):
            out += [axis.label, axis.offsetText]
            for tick in axis._update_ticks():  # the ticks drawn: inside the view interval
                out += [tick.label1, tick.label2]
    legend = ax.get_legend()
    if legend is not None and legend.get_visible():
        out += [*legend.get_texts(), legend.get_title()]
    return out


def drawn_texts(fig) -> list[Text]:
    """Every visible, non-empty text of ``fig`` (after a draw)."""
    out = list(fig.texts)
    for attr in ("_suptitle", "_supxlabel", "_supylabel"):
        if getattr(fig, attr, None) is not None:
            out.append(getattr(fig, attr))
    for legend in fig.legends:
        out += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        if ax.get_visible():
            out += _axis_texts(ax)
    unique = list({id(t): t for t in out}.values())  # the suptitle is among fig.texts too
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def _overlaps(boxes: list[tuple[str, object]]) -> list[str]:
    found = []
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1 :]:
            dx = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            dy = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if dx > OVERLAP_PX and dy > OVERLAP_PX:
                found.append(f"{a!r} overlaps {b!r}")
    return found


def measure(fig, renderer, dpi: float, png_width: int) -> dict:
    """The layout report of ``fig`` as ``renderer`` draws it at ``dpi`` into a PNG ``png_width``
    px wide: the smallest text as shown (px, and which), and the overlapping pairs of texts."""
    scale = min(1.0, SCREEN_WIDTH / max(png_width, 1))
    texts = drawn_texts(fig)
    sizes = [(t.get_fontsize() * dpi / 72 * scale, t.get_text()) for t in texts]
    smallest = min(sizes, default=(float("inf"), ""))
    boxes = [(t.get_text()[:40], t.get_window_extent(renderer)) for t in texts]
    return {"min_text_px": round(smallest[0], 2), "smallest_text": smallest[1][:60], "shown_width": min(png_width, SCREEN_WIDTH),
            "overlaps": _overlaps(boxes), "rule": f"text >= {MIN_TEXT_PX:g} px as shown, no overlapping texts"}  # fmt: skip


def problems(report: dict | None) -> list[str]:
    """What breaks the rule in a layout report (empty: readable); a missing report is a problem."""
    if not report:
        return ["no layout report (drawn outside dae_lib.reporting.layout)"]
    out = [] if report["min_text_px"] >= MIN_TEXT_PX else [f"text {report['smallest_text']!r} is {report['min_text_px']} px as shown (< {MIN_TEXT_PX:g})"]
    return out + list(report["overlaps"])


def render(fig, dpi: float = DPI, fields: dict | None = None) -> tuple[bytes, dict]:
    """``fig`` as PNG bytes (tight bounding box) and its layout report, measured in the draw that
    renders those bytes; the report and ``fields`` are written into the PNG's text fields."""
    seen = []

    def _measure(event):  # runs inside savefig's draw, with its renderer, dpi and tight box
        seen.append(measure(fig, event.renderer, dpi, int(event.renderer.width)))

    buf = io.BytesIO()
    cid = fig.canvas.mpl_connect("draw_event", _measure)
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        fig.canvas.mpl_disconnect(cid)
    report = seen[-1]
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        report["shown_width"] = min(im.width, SCREEN_WIDTH)
        info = PngInfo()
        for key, value in {**(fields or {}), LAYOUT_KEY: json.dumps(report)}.items():
            info.add_text(key, value)
        out = io.BytesIO()
        im.save(out, format="png", pnginfo=info)
    return out.getvalue(), report


def save_png(fig, path: Path, fields: dict | None = None, dpi: float = DPI) -> dict:
    """Write ``fig`` to ``path`` atomically (PNG with ``fields`` and the layout report as text
    fields); returns the report."""
    data, report = render(fig, dpi, fields)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return report


def saved_report(png) -> dict | None:
    """The layout report a saved PNG carries, None when it has none."""
    with Image.open(png) as im:
        text = im.info.get(LAYOUT_KEY)
    return json.loads(text) if text else None


def inline() -> bool:
    """Whether figures are shown by a Jupyter kernel's inline backend (a notebook), not drawn to a
    window or kept for a script."""
    return "inline" in matplotlib.get_backend()


def _display(data: bytes, report: dict | None) -> None:
    display(ShownImage(data=data, format="png"), metadata={LAYOUT_KEY: report})


def show(fig, dpi: float = DPI, fields: dict | None = None) -> None:
    """In a notebook: show ``fig`` once, as the PNG that is measured, with its layout report in the
    output's metadata, and close it (the inline backend would show it a second time)."""
    if not inline():
        return
    data, report = render(fig, dpi, fields)
    plt.close(fig)
    _display(data, report)


def show_png(png) -> None:
    """In a notebook: show a saved PNG (a score montage, a committed figure) with the layout report
    it carries; outside one, nothing."""
    if inline():
        _display(Path(png).read_bytes(), saved_report(png))
