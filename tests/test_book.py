"""The companion as a book (``make book``: scripts/book.py, docs/conf.py): it builds from the
repository as committed with Sphinx's warnings as errors, a broken link or a missing image stops it,
and its pages load in a real browser (Debian's chromium driven by playwright, where both are here):
every image loaded, the maths rendered, no console error; screenshots of the first page and of a
notebook page go to _build/screenshots/ (git-ignored) to be looked at."""
import functools
import http.server
import importlib.util
import re
import shutil
import threading
from pathlib import Path

import pytest

from dae_lib.runs import REPO_ROOT

_spec = importlib.util.spec_from_file_location("book", REPO_ROOT / "scripts" / "book.py")
book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = REPO_ROOT / "_build" / "screenshots"


def _sphinx_missing() -> str | None:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: it is in the docs extra (make setup-docs)"
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    missing = _sphinx_missing()
    if missing:
        pytest.skip(missing)
    return book.build(tmp_path_factory.mktemp("book") / "html")


def test_the_book_builds_with_warnings_as_errors_and_holds_every_page(built):
    for page in book.pages():
        assert (built / Path(page).with_suffix(".html")).is_file(), page
    assert (built / "index.html").read_text().count("README.html") >= 1
    first = (built / "README.html").read_text()
    assert "Deep Feature Disentanglement Learning for Bone Suppression" in first  # the paper's citation, in the footer of every page
    titles = {re.search(r"<title>(.*?) &#8212;", (built / book.EXECUTED / f"02_training_{v}.html").read_text()).group(1) for v in ("dae_msssim", "r_dae_msssim")}
    assert len(titles) == 2, titles  # the navigation tells the two runs of 02 apart
    notebook = (built / book.EXECUTED / "04_figures.html").read_text()
    assert notebook.count("<img") >= 5 and "This copy" in notebook  # its stored figures, and the banner: the run that made them


def test_every_page_of_docs_is_in_the_book(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# First\n")
    (tmp_path / "docs" / "stray.md").write_text("# A page nobody lists\n")
    with pytest.raises(book.BookError, match="docs/stray.md"):
        book.pages(tmp_path)


@pytest.mark.parametrize("text, error", [
    ("see [the results](results/missing.md)", "names no file"),
    ("![a figure](figures/missing.png)", "names no file"),
    ("[outside](../../etc/hostname)", "names no file|leads out of the repository"),
])  # fmt: skip
def test_a_broken_link_or_a_missing_image_stops_the_book(tmp_path, text, error):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(f"# First\n\n{text}\n")
    with pytest.raises(book.BookError, match=f"README.md: the link .*({error})"):
        book.stage(tmp_path / "staged", tmp_path)


def test_a_link_to_a_file_the_book_does_not_show_becomes_its_path(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "LICENSE").write_text("MIT\n")
    (tmp_path / "docs" / "glossary.md").write_text("# Glossary\n\nBack to the [first page](../README.md#first).\n")
    (tmp_path / "README.md").write_text("# First\n\n[LICENSE](LICENSE), [the glossary](docs/glossary.md)\n")
    book.DOCS, saved = ("glossary",), book.DOCS
    try:
        book.stage(tmp_path / "staged", tmp_path)
    finally:
        book.DOCS = saved
    readme = (tmp_path / "staged" / "README.md").read_text()
    assert "`LICENSE`" in readme and "[the glossary](docs/glossary.md)" in readme and ":caption: Documentation" in readme
    assert "[first page](../README.md#first)" in (tmp_path / "staged" / "docs" / "glossary.md").read_text()


def test_a_sphinx_warning_fails_the_build(tmp_path):
    missing = _sphinx_missing()
    if missing:
        pytest.skip(missing)
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO_ROOT / "docs" / "conf.py", tmp_path / "docs" / "conf.py")
    shutil.copytree(REPO_ROOT / "figures", tmp_path / "figures")
    (tmp_path / "README.md").write_text("# First\n\n```{nosuchdirective}\n```\n")  # an unknown directive: a warning
    saved = book.DOCS
    book.DOCS = ()
    try:
        with pytest.raises(book.BookError, match="nosuchdirective"):
            book.build(tmp_path / "html", tmp_path)
    finally:
        book.DOCS = saved


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium here (Debian: apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed: it is in the docs extra (make setup-docs)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(built):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(built)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_every_page_loads_in_a_browser_with_its_images_and_maths(built, served, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    page.on("response", lambda r: errors.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
    shown = {}
    for name in book.pages():
        html = Path(name).with_suffix(".html").as_posix()
        page.goto(served + html, wait_until="load")
        images = page.evaluate("Promise.all(Array.from(document.images).map(i => i.decode().then(() => i.naturalWidth, () => 0)))")
        assert images.count(0) == 0, (html, "an image did not load")
        maths = page.evaluate("document.querySelectorAll('span.math, div.math').length")
        if maths:
            page.evaluate("MathJax.startup.promise")
            assert page.evaluate("document.querySelectorAll('mjx-container').length") == maths, (html, "maths left unrendered")
            assert page.evaluate("document.querySelectorAll('mjx-merror').length") == 0, (html, "a MathJax error")
        shown[html] = (len(images), maths)
    assert errors == []
    assert shown["README.html"][0] >= 1 and shown["README.html"][1] >= 1  # Fig. 2 and the identity's formula
    assert sum(n for n, _ in shown.values()) >= 25 and sum(m for _, m in shown.values()) >= 100
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, html in (("first-page", "README.html"), ("notebook-02", f"{book.EXECUTED}/02_training_dae_msssim.html")):
        page.goto(served + html, wait_until="load")
        page.evaluate("MathJax.startup.promise")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.close()
