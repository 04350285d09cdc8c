"""The course as a static site (``site/build.py``): its builder, and the built site in Chromium.

Unit tests (fast, no browser) build a small repository made in a temporary folder: the pages
listed, links rewritten to the site's pages (and a link to nothing stops the build), each widget
view replaced by its panel's figure (or the nearest stored one), the Chinese lessons beside the
English ones with a switch between them. One more builds the real repository.

The browser test (marker ``browser``, like ``tests/test_browser.py``, whose Chromium settings it
uses) builds the real site into a temporary folder, serves it with ``http.server`` on
127.0.0.1 (port 0, a thread), and crawls it from the home page in headless Chromium: every page
answers and renders, every internal link resolves (its page, and its anchor on that page), every
image loads (``naturalWidth > 0``), nothing is fetched from another host, no stored output shows
an error (a traceback, "Error displaying widget", a ``✘`` line), and at a phone's width no page
is wider than the screen. A grading report (lesson 12: "Grading X on the echo protocol") is a
report on a server the lesson breaks on purpose: its ``✘`` lines and the server's quoted
traceback are the lesson. The same crawl run on a site broken on purpose reports each fault.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import io
import re
import shutil
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from test_browser import CHROMIUM, CHROMIUM_FLAGS, _require_chromium, claim_failures

ROOT = Path(__file__).resolve().parent.parent


def _load_builder():
    """site/build.py as a module (``site`` is a name the standard library already uses)."""
    spec = importlib.util.spec_from_file_location("course_site_build", ROOT / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


# --- a small repository -----------------------------------------------------------------------


def png(width: int, height: int, shade: int = 0) -> str:
    """A real PNG of the given size, base64 as a notebook stores it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 128, 255 - shade)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def figure_output(data: str) -> dict:
    return nbformat.v4.new_output(
        "display_data", data={"image/png": data, "text/plain": "<Figure size 300x200>"}
    )


def model(name: str, **state) -> dict:
    module = "@jupyter-widgets/output" if name == "OutputModel" else "@jupyter-widgets/controls"
    return {"model_name": name, "model_module": module, "state": {"_model_name": name, **state}}


PANEL_FIGURE = png(300, 200, 10)
NEAR_FIGURE = png(200, 100, 200)
FIRST_FIGURE = png(120, 80, 90)


def panel_lesson() -> nbformat.NotebookNode:
    """A lesson with two panels: one whose Output widget holds a figure, one that drew nothing."""
    nb = nbformat.v4.new_notebook()
    state = {
        "box1": model("VBoxModel", children=["IPY_MODEL_s1", "IPY_MODEL_row", "IPY_MODEL_o1"]),
        "s1": model("IntSliderModel", description="level", value=3, readout_format="d"),
        "row": model("HBoxModel", children=["IPY_MODEL_d1", "IPY_MODEL_l1"]),
        "d1": model("DropdownModel", description="way", _options_labels=["a", "b"], index=1),
        "l1": model("LabelModel", value="done in 1.0 s"),
        "o1": model(
            "OutputModel",
            outputs=[
                {"output_type": "display_data", "data": {"image/png": PANEL_FIGURE}},
                {"output_type": "stream", "name": "stdout", "text": "3 at once\n"},
            ],
        ),
        "box2": model("VBoxModel", children=["IPY_MODEL_s2", "IPY_MODEL_o2"]),
        "s2": model("FloatSliderModel", description="rate", value=0.25, readout_format=".2f"),
        "o2": model("OutputModel", outputs=[]),
    }
    nb.metadata["widgets"] = {
        builder.STATE: {"version_major": 2, "version_minor": 0, "state": state}
    }

    def view(model_id):
        data = {builder.VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0}}
        data["text/plain"] = "VBox(children=(IntSlider(value=3, description='level'),))"
        return nbformat.v4.new_output("execute_result", data=data, execution_count=1)

    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# 01 · Panels: a lesson with widgets\n\nBack to [00](00_start_here.ipynb)."
        ),
        nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\npanel(run)", outputs=[view("box1")]),
        nbformat.v4.new_markdown_cell("## Part two\n\nThe second panel draws on Run only."),
        nbformat.v4.new_code_cell("plot()", outputs=[figure_output(NEAR_FIGURE)]),
        nbformat.v4.new_code_cell("panel(run, run_now=False)", outputs=[view("box2")]),
    ]
    return nb


def first_lesson(title: str = "# 00 · Start here") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f"{title}\n\nNext: [lesson 01](01_panels.ipynb#Part-two); the "
            "[guide](../docs/instructors.md#lesson-01--panels); the "
            "[glossary](../docs/glossary.md)."
        ),
        nbformat.v4.new_code_cell(
            "print('✔ it holds')\nplot()",
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="✔ it holds\n"),
                figure_output(FIRST_FIGURE),
            ],
        ),
    ]
    return nb


def make_repo(root: Path, zh: bool = True) -> Path:
    (root / "notebooks" / "zh").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "labkit").mkdir()
    (root / "labkit" / "widgets.py").write_text("# the panels\n")
    (root / "README.md").write_text(
        "# asynclab\n\n"
        "[![Launch on Binder](https://mybinder.org/badge_logo.svg)]"
        "(https://mybinder.org/v2/gh/OWNER/asynclab/HEAD)\n\n"
        "| # | Notebook |\n|---|---|\n| 00 | [`00_start_here`](notebooks/00_start_here.ipynb) |\n\n"
        "The [guide](docs/instructors.md), the panels' code in [widgets](labkit/widgets.py).\n"
    )
    (root / "docs" / "instructors.md").write_text(
        "# Instructors' guide\n\n## Lesson 01 · Panels\n\nTeach [it](../notebooks/01_panels.ipynb)."
        "\n\n```python\nprint('hello')\n```\n"
    )
    (root / "docs" / "glossary.md").write_text(
        '# Glossary\n\n<a id="coroutine"></a>\n\n**coroutine**: see '
        "[00](../notebooks/00_start_here.ipynb) and "
        "[the guide](instructors.md#lesson-01--panels).\n"
    )
    nbformat.write(first_lesson(), root / "notebooks" / "00_start_here.ipynb")
    nbformat.write(panel_lesson(), root / "notebooks" / "01_panels.ipynb")
    if zh:
        nbformat.write(
            first_lesson("# 00 · 从这里开始"), root / "notebooks" / "zh" / "00_start_here.ipynb"
        )
    return root


@pytest.fixture(scope="module")
def small_site(tmp_path_factory):
    root = make_repo(tmp_path_factory.mktemp("repo"))
    return builder.build(root, tmp_path_factory.mktemp("site") / "html", github="someone/asynclab")


def read(site, target: str) -> str:
    return (site.out / target).read_text(encoding="utf-8")


# --- the builder --------------------------------------------------------------------------------


def test_every_lesson_and_doc_is_a_page(small_site):
    assert [(p.source, p.target) for p in small_site.pages] == [
        ("README.md", "index.html"),
        ("notebooks/00_start_here.ipynb", "notebooks/00_start_here.html"),
        ("notebooks/01_panels.ipynb", "notebooks/01_panels.html"),
        ("notebooks/zh/00_start_here.ipynb", "notebooks/zh/00_start_here.html"),
        ("docs/instructors.md", "docs/instructors.html"),
        ("docs/glossary.md", "docs/glossary.html"),
    ]
    assert small_site.problems == []
    for page in small_site.pages:
        assert (small_site.out / page.target).is_file()
    nav = read(small_site, "docs/glossary.html")
    for page in small_site.pages:
        if page.lang == "en":
            assert f'href="{builder.site_href(page.target, "docs/glossary.html")}"' in nav


def test_links_between_lessons_and_docs_point_to_the_pages(small_site):
    index = read(small_site, "index.html")
    assert 'href="notebooks/00_start_here.html"' in index
    assert 'href="docs/instructors.html"' in index
    # a file that is not a page: on GitHub; a badge on another site: its words, not its image
    assert 'href="https://github.com/someone/asynclab/blob/HEAD/labkit/widgets.py"' in index
    assert "badge_logo.svg" not in index and "Launch on Binder" in index
    assert 'href="https://mybinder.org/v2/gh/someone/asynclab/HEAD"' in index
    lesson = read(small_site, "notebooks/00_start_here.html")
    assert 'href="01_panels.html#Part-two"' in lesson
    assert 'href="../docs/instructors.html#lesson-01--panels"' in lesson
    assert 'href="../docs/glossary.html"' in lesson
    glossary = read(small_site, "docs/glossary.html")
    assert 'href="../notebooks/00_start_here.html"' in glossary
    assert 'href="instructors.html#lesson-01--panels"' in glossary
    assert 'id="lesson-01--panels"' in read(small_site, "docs/instructors.html")
    assert '<div class="highlight">' in read(small_site, "docs/instructors.html")  # Pygments
    for page in small_site.pages:
        text = read(small_site, page.target)
        article = text.split('<article class="page-body">', 1)[1].split("</article>", 1)[0]
        left = re.findall(r'(?:href|src)="(?!https?:)[^"]*\.(?:ipynb|md)\b[^"]*"', article)
        assert not left, f"{page.target} keeps links to repository files: {left}"
        assert builder.SITE_ROOT not in text


def test_a_link_to_nothing_stops_the_build(tmp_path):
    root = make_repo(tmp_path / "repo", zh=False)
    readme = root / "README.md"
    readme.write_text(
        readme.read_text() + "\n[gone](docs/missing.md), [nowhere](docs/glossary.md#no-such)\n"
    )
    site = builder.build(root, tmp_path / "out", github="someone/asynclab")
    assert any("docs/missing.md" in p and "no such file" in p for p in site.problems), site.problems
    assert any("#no-such" in p and "no such anchor" in p for p in site.problems), site.problems
    assert builder.main(["--root", str(root), "--out", str(tmp_path / "out2")]) == 1


def test_the_build_empties_only_a_folder_of_its_own(tmp_path, small_site):
    root = make_repo(tmp_path / "repo", zh=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    for out in (tmp_path / "notes", root, root.parent):
        with pytest.raises(SystemExit, match="--out"):
            builder.build(root, out, github="someone/asynclab")
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    again = tmp_path / "again"
    shutil.copytree(small_site.out, again)  # an earlier build is replaced
    (again / "stale.html").write_text("old")
    builder.build(root, again, github="someone/asynclab")
    assert not (again / "stale.html").exists() and (again / "index.html").exists()


def test_a_widget_view_becomes_the_figure_its_panel_drew(small_site):
    page = small_site.page("notebooks/01_panels.ipynb")
    assert page.widget_views == page.figures_for_views == 2
    html = read(small_site, "notebooks/01_panels.html")
    assert "widget-view+json" not in html and "VBox(children=" not in html
    assert "NBVAL" not in html and "panel" in html
    panels = re.findall(r'<figure class="panel">(.*?)</figure>', html, re.DOTALL)
    assert len(panels) == 2
    first, second = panels
    # the figure held by the Output widget, its printed line, and the controls' values
    assert image_bytes(small_site, first) == base64.b64decode(PANEL_FIGURE)
    assert "3 at once" in first and "level <b>3</b>" in first and "way <b>b</b>" in first
    assert "done in 1.0 s" in first
    # a panel that drew nothing shows the nearest stored figure, and says it is that
    assert image_bytes(small_site, second) == base64.b64decode(NEAR_FIGURE)
    assert "rate <b>0.25</b>" in second and "nearest figure" in second and "above" in second


def image_bytes(site, fragment: str) -> bytes:
    src = re.search(r'<img src="([^"]+)"', fragment).group(1)
    assert src.startswith("../_images/"), src
    return (site.out / "notebooks" / src).read_bytes()


def test_output_images_are_files_with_their_size(small_site):
    html = read(small_site, "notebooks/00_start_here.html")
    img = re.search(r'<img src="(\.\./_images/[0-9a-f]+\.png)"[^>]*>', html)
    assert img, html
    assert re.search(r'width="?120\b', img.group(0)) and re.search(r'height="?80\b', img.group(0))
    assert 'loading="lazy"' in img.group(0) and "alt=" in img.group(0)
    assert (small_site.out / "notebooks" / img.group(1)).read_bytes() == base64.b64decode(
        FIRST_FIGURE
    )
    assert "data:image" not in html


def test_chinese_lessons_sit_beside_the_english_ones_with_a_switch(small_site):
    en = read(small_site, "notebooks/00_start_here.html")
    zh = read(small_site, "notebooks/zh/00_start_here.html")
    assert '<html lang="en">' in en and '<html lang="zh-Hans">' in zh
    assert re.search(r'class="lang-switch" href="zh/00_start_here.html"', en)
    assert re.search(r'class="lang-switch" href="\.\./00_start_here.html"', zh)
    assert "从这里开始" in zh and "在 Binder 上启动" in zh
    # lesson 01 has no translation: the Chinese nav offers the English one, marked EN
    assert (
        '<a href="../01_panels.html"><span class="num">01</span> Panels: a lesson with widgets '
        '<span class="lang-tag" lang="en">EN</span></a>' in zh
    )
    assert "my-work%2Fzh%2F00_start_here.ipynb" in zh and "labkit lab --lang zh" in zh
    # its links, written as from notebooks/ (the English lesson's), reach the same pages
    assert 'href="../01_panels.html#Part-two"' in zh
    assert 'href="../../docs/glossary.html"' in zh
    assert any(
        "notebooks/zh/00_start_here.ipynb: link '../docs/glossary.md'" in w
        for w in small_site.warnings
    ), small_site.warnings
    # pages that are not lessons offer the Chinese lessons from the first one
    assert 'class="lang-switch" href="notebooks/zh/00_start_here.html"' in read(
        small_site, "index.html"
    )
    assert "lang-switch" not in read(small_site, "notebooks/01_panels.html")


def test_each_lesson_launches_on_binder_and_locally(small_site):
    html = read(small_site, "notebooks/01_panels.html")
    assert (
        'href="https://mybinder.org/v2/gh/someone/asynclab/HEAD?urlpath='
        'lab%2Ftree%2Fmy-work%2F01_panels.ipynb"' in html
    )
    assert "git clone https://github.com/someone/asynclab.git" in html
    assert ".venv/bin/python -m labkit lab" in html
    assert 'href="http://localhost:8888/lab/tree/01_panels.ipynb"' in html
    assert 'rel="prev"' in html and 'href="00_start_here.html"' in html


def test_the_real_course_builds_every_page_and_replaces_every_panel(real_site):
    lessons = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    built = [p for p in real_site.pages if p.kind == "lesson" and p.lang == "en"]
    assert [Path(p.source).name for p in built] == lessons
    sources = {p.source for p in real_site.pages}
    assert {"README.md", "docs/instructors.md", "docs/answer-key.md", "docs/glossary.md"} <= sources
    assert real_site.problems == [], "\n".join(real_site.problems)
    views = sum(p.widget_views for p in built)
    assert views >= 5 and sum(p.figures_for_views for p in built) == views
    assert real_site.seconds < 60, f"the build took {real_site.seconds:.0f} s"


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    return builder.build(ROOT, tmp_path_factory.mktemp("course-site") / "html")


# --- the built site in Chromium ---------------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    timeout = 10  # seconds a connection may sit silent

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    """``serve(folder)`` -> its address on 127.0.0.1; every server stops with the test."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


GRADING_REPORT = re.compile(r"^\s*Grading \S+ on the \w+ protocol")
PAGE_FACTS = """() => {
    const text = el => el.textContent || '';
    return {
        title: document.title,
        h1: document.querySelectorAll('main h1').length,
        ids: [...document.querySelectorAll('[id]')].map(e => e.id)
            .concat([...document.querySelectorAll('a[name]')].map(e => e.name)),
        links: [...document.querySelectorAll('a[href]')].map(a => a.href),
        broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
            .map(i => i.getAttribute('src')),
        images: document.images.length,
        outputs: [...document.querySelectorAll('.jp-OutputArea-output, figure.panel')].map(text),
        body: text(document.body),
    };
}"""


def output_errors(outputs: list[str], body: str) -> list[str]:
    found = []
    for words in ("Error displaying widget", "Model not found", "widget-view+json"):
        if words in body:
            found.append(f"shows {words!r}")
    for text in outputs:
        if GRADING_REPORT.match(text):
            continue  # a report on a server broken on purpose (lesson 12)
        if "Traceback (most recent call last)" in text:
            found.append(f"an output shows a traceback: {text.strip()[:200]!r}")
        found += [f"an output shows a failed claim: {line}" for line in claim_failures(text)]
    return found


def crawl(browser, base: str) -> tuple[list[str], int, int]:
    """Visit every page reachable from the home page; return the faults, pages and images."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []
    page.on(
        "request", lambda r: None if r.url.startswith((base, "data:")) else elsewhere.append(r.url)
    )
    faults, seen, anchors, images = [], {}, [], 0
    todo = [("index.html", "")]  # (page, the page that links to it)
    try:
        while todo:
            path, referrer = todo.pop(0)
            if path in seen:
                continue
            response = page.goto(base + path, wait_until="load")
            seen[path] = set()
            if response is None or response.status != 200:
                status = f"HTTP {response.status}" if response else "no answer"
                faults.append(f"{referrer or 'the home page'}: link to {path}: {status}")
                continue
            page.evaluate("() => { for (const i of document.images) i.loading = 'eager'; }")
            page.wait_for_function(
                "() => [...document.images].every(i => i.complete)", timeout=30_000
            )
            facts = page.evaluate(PAGE_FACTS)
            seen[path] = {unquote(i) for i in facts["ids"]}
            images += facts["images"]
            if facts["h1"] < 1:
                faults.append(f"{path}: no heading")
            faults += [f"{path}: image {src} does not load" for src in facts["broken"]]
            faults += [f"{path}: {e}" for e in output_errors(facts["outputs"], facts["body"])]
            page.set_viewport_size({"width": 390, "height": 844})
            wide = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
            if wide > 0:
                faults.append(f"{path}: {wide} px wider than a phone's screen")
            page.set_viewport_size({"width": 1280, "height": 900})
            for link in facts["links"]:
                if not link.startswith(base):
                    continue
                parts = urlsplit(link)
                target = unquote(parts.path[len(urlsplit(base).path) :]) or "index.html"
                if parts.fragment:
                    anchors.append((path, target, unquote(parts.fragment)))
                if target.endswith(".html"):
                    todo.append((target, path))
                elif page.request.get(link).status != 200:
                    faults.append(f"{path}: link to {target} does not resolve")
        for path, target, anchor in anchors:
            if target in seen and anchor not in seen[target]:
                faults.append(f"{path}: link to {target}#{anchor}: no such anchor")
    finally:
        page.close()
    faults += [f"fetched from elsewhere: {url}" for url in sorted(set(elsewhere))]
    return faults, len(seen), images


@pytest.mark.browser
def test_the_built_site_reads_well_in_chromium(chromium, serve, real_site):
    assert real_site.problems == [], "\n".join(real_site.problems)
    faults, pages, images = crawl(chromium, serve(real_site.out))
    assert not faults, "\n".join(faults)
    assert pages == len(real_site.pages), f"{pages} pages reached of {len(real_site.pages)}"
    assert images >= real_site.images
    print(f"{pages} pages, {images} images, every link and anchor resolves")


@pytest.mark.browser
def test_the_crawl_reports_each_fault_of_a_site_broken_on_purpose(
    chromium, serve, small_site, tmp_path
):
    broken = tmp_path / "broken"
    shutil.copytree(small_site.out, broken)
    lesson = broken / "notebooks" / "00_start_here.html"
    html = lesson.read_text(encoding="utf-8")
    image = re.search(r'src="\.\./(_images/[0-9a-f]+\.png)"', html).group(1)
    (broken / image).unlink()
    html = html.replace("✔ it holds", "✘ it does not hold\n   measured: 2 s")
    html = html.replace('href="01_panels.html#Part-two"', 'href="01_panels.html#Part-nine"')
    html = html.replace(
        "</article>",
        '<a href="gone.html">gone</a><img src="https://example.org/x.png" alt=""></article>',
    )
    lesson.write_text(html, encoding="utf-8")
    panels = broken / "notebooks" / "01_panels.html"
    panels.write_text(
        panels.read_text(encoding="utf-8").replace(
            "3 at once", "Traceback (most recent call last):\n  boom"
        ),
        encoding="utf-8",
    )
    faults, _, _ = crawl(chromium, serve(broken))
    expected = [
        f"notebooks/00_start_here.html: image ../{image} does not load",
        "notebooks/00_start_here.html: an output shows a failed claim: "
        "✘ it does not hold / measured: 2 s",
        "notebooks/00_start_here.html: link to notebooks/01_panels.html#Part-nine: no such anchor",
        "notebooks/00_start_here.html: link to notebooks/gone.html: HTTP 404",
        "fetched from elsewhere: https://example.org/x.png",
        "notebooks/01_panels.html: an output shows a traceback",
    ]
    for fault in expected:
        assert any(f.startswith(fault) for f in faults), f"{fault!r} not in {faults}"


def test_a_grading_report_may_show_failures_and_other_outputs_may_not():
    report = "Grading blocking_echo on the echo protocol (seed 0)\n✘ concurrency: one at a time\n"
    assert output_errors([report], report) == []
    claim = "✘ the async run is 5x faster\n   measured: 1.2x\n"
    assert output_errors([claim], claim) == [
        "an output shows a failed claim: ✘ the async run is 5x faster / measured: 1.2x"
    ]
    assert output_errors(["fine"], "Error displaying widget: model not found") == [
        "shows 'Error displaying widget'"
    ]
