"""Sphinx settings of the companion's book (``make book``: scripts/book.py stages the pages, then
builds with ``-c docs``). Notebooks are rendered from their stored outputs, never executed."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {out.stdout.strip()}" + (" + local changes" if dirty else "")


project = "DAE bone suppression: a reproduction companion"
author = "the dae-lib authors"
copyright = f"{author} (code: MIT; the Licences section of the first page says the rest)"
root_doc = "README"
extensions = ["myst_nb", "sphinx-mathjax-offline"]  # MathJax 3 inside the book: the pages render offline too
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the committed executed copies are shown as they are
nb_merge_streams = True
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = "DAE bone suppression companion"
html_last_updated_fmt = None
html_theme_options = {
    "extra_footer": (
        "Accompanies Chunze Lin, Ruixiang Tang, Darryl D. Lin, Langechuan Liu, Jiwen Lu, Yunqiang Chen, Dashan Gao, "
        "Jie Zhou: <em>Deep Feature Disentanglement Learning for Bone Suppression in Chest Radiographs</em>, "
        f"IEEE ISBI 2020. Built from {_commit()}; each notebook's first cell says the run that made its outputs."
    ),
    "show_toc_level": 2,
}
html_context = {"default_mode": "light"}  # the theme logs a console error when no mode is set
