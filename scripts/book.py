"""The companion as a book: static HTML from README.md, docs/ and the committed executed notebooks,
never executing them (``make book``; its packages are the ``docs`` extra).

    python scripts/book.py [--out _build/html]

Sphinx with myst-nb (notebooks rendered from their stored outputs, execution off) and
sphinx-book-theme; the settings are in docs/conf.py. The pages are staged first in a folder that
mirrors the repository's paths (``stage``), so that every relative link of the Markdown and the
notebooks means there what it means in the repository:

* a link to a staged page or image stays a link (Sphinx checks it: the build treats warnings as
  errors);
* a link to another file of the repository (a notebook's source in notebooks/, a module, LICENSE)
  becomes its path as code: the book is a view of the repository, which holds that file;
* a link to a file that does not exist stops the build, naming the page and the link.

MathJax 3 comes into the book itself (the ``sphinx-mathjax-offline`` package), so the pages render
their equations offline too.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The executed copies the book shows (quick profile, phantom), in the notebooks' order.
EXECUTED = "results/executed/phantom-quick"
#: The pages of docs/, in the order the navigation lists them (the first page is README.md).
DOCS = ("running", "notebooks", "data", "results", "improved-family", "released-models", "v2-study", "suppress",
        "scoring", "speed", "tests-and-ci", "decisions", "glossary")  # fmt: skip
#: Other pages of the repository the book shows.
EXTRA_PAGES = ("results/table1.md",)
#: A Markdown link or image: the text, the target (a path, maybe with an anchor).
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


#: The book's index.html: the first page is README.html.
REDIRECT = '<!DOCTYPE html><meta charset="utf-8"><title>DAE bone suppression</title><meta http-equiv="refresh" content="0; url=README.html"><a href="README.html">README</a>\n'


class BookError(Exception):
    """A page the book cannot show as it is: a broken link, a missing image."""


def pages(root: Path = REPO_ROOT) -> list[str]:
    """Every page of the book, as its path in the repository, in the navigation's order."""
    executed = sorted(p.relative_to(root).as_posix() for p in (root / EXECUTED).glob("*.ipynb"))
    solutions = sorted(p.relative_to(root).as_posix() for p in (root / EXECUTED / "solutions").glob("*.ipynb"))
    docs = [f"docs/{name}.md" for name in DOCS if (root / "docs" / f"{name}.md").is_file()]
    unlisted = sorted({p.relative_to(root).as_posix() for p in (root / "docs").glob("*.md")} - set(docs))
    if unlisted:
        raise BookError(f"docs/ has pages the book does not list (scripts/book.py DOCS): {', '.join(unlisted)}")
    return ["README.md", *executed, *solutions, *docs, *[p for p in EXTRA_PAGES if (root / p).is_file()]]


def _rewrite(text: str, page: str, staged: set[str], root: Path) -> tuple[str, list[str]]:
    """``text`` of ``page`` with each relative link checked and, to a file the book does not hold,
    replaced by its path as code; returns the text and the images it shows."""
    here = (root / page).parent
    images = []

    def one(m: re.Match) -> str:
        bang, label, target = m.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target):  # a URL, or an anchor on the same page
            return m.group(0)
        path = target.split("#", 1)[0]
        found = (here / path).resolve()
        if not found.exists():
            raise BookError(f"{page}: the link {target!r} names no file of the repository")
        try:
            repo_path = found.relative_to(root.resolve()).as_posix()
        except ValueError:
            raise BookError(f"{page}: the link {target!r} leads out of the repository") from None
        if bang:
            images.append(repo_path)
            return m.group(0)
        if repo_path in staged or (found.is_dir() and any(p.startswith(repo_path + "/") for p in staged)):
            return m.group(0) if not found.is_dir() else f"{label} (`{repo_path}/`)"
        return f"{label} (`{repo_path}`)" if label.strip("`") != repo_path else f"`{repo_path}`"

    return LINK.sub(one, text), images


def _name_the_run(nb: dict, page: str) -> None:
    """One executed copy of 02 per family: each one's title says whose run it is, so that the
    navigation tells them apart (``02_training_<variant>.ipynb``)."""
    found = re.fullmatch(r"02_training_(\w+)\.ipynb", Path(page).name)
    first = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    if found and first is not None:
        text = "".join(first["source"])
        title, _, rest = text.partition("\n")
        if title.startswith("# "):
            first["source"] = f"{title} (run: {found.group(1)})\n{rest}"


def _toctree(caption: str, entries: list[str]) -> str:
    lines = "\n".join(Path(e).with_suffix("").as_posix() for e in entries)
    return f"\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n{lines}\n```\n"


def stage(dest: Path, root: Path = REPO_ROOT) -> list[str]:
    """Copy the book's pages into ``dest`` at their repository paths, links rewritten (module
    docstring), the images they show beside them, and the navigation added to the first page."""
    listed = pages(root)
    staged = set(listed)
    images: set[str] = set()
    for page in listed:
        target = Path(dest) / page
        target.parent.mkdir(parents=True, exist_ok=True)
        if page.endswith(".ipynb"):
            nb = json.loads((root / page).read_text())
            _name_the_run(nb, page)
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    cell["source"], shown = _rewrite("".join(cell["source"]), page, staged, root)
                    images.update(shown)
            target.write_text(json.dumps(nb, ensure_ascii=False))
        else:
            text, shown = _rewrite((root / page).read_text(), page, staged, root)
            images.update(shown)
            if page == "README.md":
                notebooks = [p for p in listed if p.startswith(EXECUTED + "/0")]
                text += _toctree("The notebooks (executed: quick profile, phantom)", notebooks)
                text += _toctree("Solutions", [p for p in listed if p.startswith(EXECUTED + "/solutions/")])
                text += _toctree("Documentation", [p for p in listed if p.startswith("docs/")])
                text += _toctree("Results", [p for p in listed if p in EXTRA_PAGES])
            target.write_text(text)
    for image in sorted(images):
        (Path(dest) / image).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / image, Path(dest) / image)
    return listed


def _favicon(path: Path, root: Path) -> Path:
    """The book's icon: the committed phantom sample, 64 px (a browser asks for one on every site)."""
    with Image.open(root / "figures" / "phantom_sample.png") as im:
        side = min(im.size)
        im.convert("RGB").crop((0, 0, side, side)).resize((64, 64)).save(path)
    return path


def build(out: Path, root: Path = REPO_ROOT, warnings_as_errors: bool = True) -> Path:
    """Stage the pages and build the HTML into ``out`` (Sphinx, docs/conf.py); returns ``out``."""
    with tempfile.TemporaryDirectory(prefix="dae-book-") as tmp:
        src = Path(tmp) / "src"
        stage(src, root)
        strict = ["-W", "--keep-going"] if warnings_as_errors else []
        icon = _favicon(Path(tmp) / "favicon.png", root)
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", *strict, "-c", str(root / "docs"), "-D", f"html_favicon={icon}",
                   str(src), str(out)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise BookError(f"sphinx-build failed (exit {done.returncode}):\n{done.stderr.strip() or done.stdout.strip()}")
    (Path(out) / "index.html").write_text(REDIRECT)  # GitHub Pages opens index.html: the first page is README's
    return Path(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/book.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "_build" / "html"), help="where the HTML goes (default: _build/html)")
    args = parser.parse_args(argv)
    try:
        out = build(Path(args.out))
    except BookError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"the book: {out / 'README.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
