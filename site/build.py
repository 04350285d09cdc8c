"""The course as a static website, built from the repository by one command, offline.

    python site/build.py                         # writes site/_build/html/ (open its index.html)
    python site/build.py --out DIR --github OWNER/asynclab

Pages: the README (the home page), every lesson (``notebooks/NN_*.ipynb``, and
``notebooks/zh/NN_*.ipynb`` when they exist, with a switch between the two languages), every
``docs/*.md`` and ``benchmarks/results.md``. The site keeps the repository's layout
(``notebooks/04_sync_vs_async.html``, ``docs/glossary.html``), so every relative link between
them becomes a link to the page built from its target; a link to a file that is not a page goes
to that file on GitHub; a link to nothing stops the build.

Lessons show the outputs stored in the notebooks: nothing is run (nbval's ``# NBVAL_...``
marker lines are left out of the code shown). A widget view has no static
form, so each panel is shown as the figure it drew when the lesson was built (the figure held by
its ``Output`` widget in the notebook's ``metadata.widgets``), with its controls' values; a panel
that drew nothing shows the nearest figure the lesson stores, and says so. Each lesson page has
a button that opens it on Binder and the commands that open it in JupyterLab on your machine
(``python -m labkit lab``).

Why a builder of our own, on nbconvert:

* mystmd and Jupyter Book 2 fetch their theme at build time (a templates API, then a git clone:
  jupyter-book/mystmd issues 207 and 210, both open) and need Node.js: they cannot build here.
* Jupyter Book 1 (Sphinx and myst-nb) builds offline, but adds Sphinx and its themes to the
  maintainers' set, and myst-nb draws widget views with scripts it loads from cdnjs and jsdelivr
  (``ipywidgets_js_factory`` in ``myst_nb/core/config.py``): offline, the panels would be
  empty unless we replaced them first anyway, as this builder does.
* nbconvert (which renders cells with JupyterLab's own classes), mistune, Pygments, Jinja2 and
  BeautifulSoup are installed with JupyterLab already. So the builder adds no package and builds
  every lesson in seconds. The page is ours: one small stylesheet, no script, nothing loaded from
  another site, and a layout that reads on a phone.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import jinja2
import mistune
import nbformat
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = HERE / "_build" / "html"
SITE_ROOT = "site-root:"  # marks a path from the site's top, made relative to each page at the end
PLACEHOLDER_REPO = "OWNER/asynclab"  # README's Binder link says OWNER until the course is published
LESSON = re.compile(r"^(\d\d)_[\w-]+\.ipynb$")
NBVAL_MARKER = re.compile(r"^# NBVAL_[A-Z_]+[ \t]*\n", re.MULTILINE)  # nbval's cell markers
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/svg+xml": "svg"}

# Nav labels and order of the pages that are not lessons (others follow, by their own title).
DOC_LABELS = {
    "README.md": "About the course",
    "docs/instructors.md": "Instructors' guide",
    "docs/answer-key.md": "Answer key",
    "docs/glossary.md": "Glossary",
    "docs/classroom.md": "Teaching a class",
    "benchmarks/results.md": "Measured results",
}

# The words of the page around the lessons, per language of the page.
UI = {
    "en": {
        "html_lang": "en",
        "lessons": "Lessons",
        "start": "Start reading",
        "instructors": "Guides",
        "on_this_page": "On this page",
        "menu": "Menu",
        "previous": "Previous",
        "next": "Next",
        "binder": "Launch on Binder",
        "binder_note": "a temporary JupyterLab in your browser: nothing to install, nothing kept",
        "local": "Run on your machine",
        "local_steps": "On Linux with Python 3.11 to 3.13 (README, Quick start):",
        "local_open": "It opens JupyterLab on your own copies of the lessons, in {folder}. "
        "Open {name} there, or, once it runs,",
        "local_link": "open this lesson in it",
        "local_port": "(8888 is JupyterLab's usual port; it prints the address it chose).",
        "switch": "中文",
        "figure_alt": "figure drawn by the code above",
        "panel": "Panel",
        "panel_live": "interactive in JupyterLab",
        "panel_drawn": "The figure it drew when the lesson was built. In JupyterLab, change "
        "the controls and press Run to draw it again.",
        "panel_nearest": "It draws only when you press Run, so the lesson stores no figure of "
        "its own here: this is the nearest figure the lesson stores, from a cell {where}.",
        "above": "above",
        "below": "below",
        "panel_none": "In JupyterLab, press Run to draw its figure.",
        "footer": "Rendered from the outputs stored in the notebooks: nothing was run to build "
        "these pages. Panels show the figure they drew when the lesson was built.",
    },
    "zh": {
        "html_lang": "zh-Hans",
        "lessons": "课程",
        "start": "开始阅读",
        "instructors": "指南",
        "on_this_page": "本页内容",
        "menu": "目录",
        "previous": "上一课",
        "next": "下一课",
        "binder": "在 Binder 上启动",
        "binder_note": "浏览器中的临时 JupyterLab：无需安装，也不保存任何内容",
        "local": "在自己的电脑上运行",
        "local_steps": "在装有 Python 3.11 到 3.13 的 Linux 上（见 README 的 Quick start）：",
        "local_open": "它会在 {folder} 中为你复制课程，并打开 JupyterLab。在那里打开 {name}，"
        "或在它运行后",
        "local_link": "在其中打开本课",
        "local_port": "（8888 是 JupyterLab 的常用端口；它会打印实际使用的地址）。",
        "switch": "English",
        "figure_alt": "上面代码画出的图",
        "panel": "面板",
        "panel_live": "在 JupyterLab 中可交互",
        "panel_drawn": "这是构建课程时它画出的图。在 JupyterLab 中改变控件并点击 Run 即可重画。",
        "panel_nearest": "它只在点击 Run 时作图，所以课程在此没有保存它自己的图：这里显示课程保存的"
        "最近的一张图，来自{where}的单元格。",
        "above": "上方",
        "below": "下方",
        "panel_none": "在 JupyterLab 中点击 Run 即可作图。",
        "footer": "由笔记本中保存的输出生成：构建这些页面时没有运行任何代码。"
        "面板显示的是构建课程时它画出的图。",
    },
}


@dataclass
class Page:
    """One page of the site, made from one file of the repository."""

    source: str  # repository path, posix: "notebooks/04_sync_vs_async.ipynb"
    target: str  # site path, posix: "notebooks/04_sync_vs_async.html"
    kind: str  # "lesson" or "doc"
    lang: str = "en"
    number: str = ""  # "04" for a lesson
    title: str = ""  # the first heading
    label: str = ""  # the nav's short name
    body: str = ""  # the page's HTML, links not yet rewritten
    ids: set[str] = field(default_factory=set)  # anchors on the page
    toc: list[tuple[str, str]] = field(default_factory=list)  # (id, text) of its h2 headings
    widget_views: int = 0
    figures_for_views: int = 0


@dataclass
class Site:
    """What a build made, and what it found wrong."""

    out: Path
    pages: list[Page]
    images: int = 0
    bytes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # the build fails on these
    warnings: list[str] = field(default_factory=list)  # shown, do not fail the build

    def page(self, source: str) -> Page:
        return next(p for p in self.pages if p.source == source)


# --- finding the pages ----------------------------------------------------------------------


def discover(root: Path) -> list[Page]:
    """Every page the repository gives, in the nav's order: home, lessons, docs."""
    pages = [Page("README.md", "index.html", "doc")]
    for lang, folder in (("en", "notebooks"), ("zh", "notebooks/zh")):
        for path in sorted((root / folder).glob("*.ipynb")):
            match = LESSON.match(path.name)
            if match:
                source = f"{folder}/{path.name}"
                pages.append(Page(source, source[: -len(".ipynb")] + ".html", "lesson", lang))
                pages[-1].number = match.group(1)
    docs = [f"docs/{p.name}" for p in sorted((root / "docs").glob("*.md"))]
    if (root / "benchmarks" / "results.md").exists():
        docs.append("benchmarks/results.md")
    order = list(DOC_LABELS)
    docs.sort(key=lambda s: (order.index(s) if s in order else len(order), s))
    pages += [Page(s, s[: -len(".md")] + ".html", "doc") for s in docs]
    return pages


def counterpart(page: Page, pages: list[Page]) -> Page | None:
    """The same lesson in the other language, if it exists."""
    if page.kind != "lesson":
        return None
    name = page.source.rsplit("/", 1)[1]
    other = f"notebooks/{name}" if page.lang == "zh" else f"notebooks/zh/{name}"
    return next((p for p in pages if p.source == other), None)


# --- images ---------------------------------------------------------------------------------


class Images:
    """Output images written once each, named by their content, under ``_images/``."""

    def __init__(self, out: Path) -> None:
        self.folder = out / "_images"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written: set[str] = set()

    def save(self, data: str, mime: str) -> tuple[str, int | None, int | None]:
        """Write one output image; return its site path and its size in pixels (PNG only)."""
        raw = data.encode() if mime == "image/svg+xml" else _b64decode(data)
        name = f"{hashlib.sha256(raw).hexdigest()[:20]}.{IMAGE_TYPES[mime]}"
        if name not in self.written:
            (self.folder / name).write_bytes(raw)
            self.written.add(name)
        width = height = None
        if raw[:8] == b"\x89PNG\r\n\x1a\n":
            width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
        return f"{SITE_ROOT}_images/{name}", width, height


def _b64decode(data: str | list[str]) -> bytes:
    return base64.b64decode("".join(data) if isinstance(data, list) else data)


def img_tag(src: str, width: int | None, height: int | None, alt: str) -> str:
    size = f' width="{width}" height="{height}"' if width and height else ""
    return f'<img src="{html.escape(src)}"{size} alt="{html.escape(alt)}">'


# --- widget panels --------------------------------------------------------------------------


def widget_state(nb: nbformat.NotebookNode) -> dict:
    return nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})


def descendants(model_id: str, state: dict) -> list[str]:
    """``model_id`` and every model inside it, in display order."""
    found, todo = [], [model_id]
    while todo:
        current = todo.pop(0)
        if current in found or current not in state:
            continue
        found.append(current)
        children = state[current].get("state", {}).get("children", [])
        todo[:0] = [c.removeprefix("IPY_MODEL_") for c in children if isinstance(c, str)]
    return found


def control_value(model: dict) -> str | None:
    """How a control shows its value (a slider's readout, a dropdown's label), or None."""
    name, s = model.get("model_name", ""), model.get("state", {})
    if name.endswith("SliderModel") and "value" in s:
        try:  # ipywidgets' readouts are d3 formats; the common ones (d, .2f) are Python's too
            return format(s["value"], s.get("readout_format") or "")
        except (TypeError, ValueError):
            return str(s["value"])
    if name in ("DropdownModel", "RadioButtonsModel", "ToggleButtonsModel", "SelectModel"):
        labels, index = s.get("_options_labels", []), s.get("index")
        return labels[index] if isinstance(index, int) and index < len(labels) else None
    if name in ("CheckboxModel", "ToggleButtonModel"):
        return "on" if s.get("value") else "off"
    if name in ("TextModel", "IntTextModel", "FloatTextModel", "BoundedIntTextModel"):
        return str(s.get("value", ""))
    return None


@dataclass
class PanelView:
    controls: list[tuple[str, str]]  # (description, value as shown)
    status: list[str]  # what its labels said ("done in 3.7 s")
    outputs: list[dict]  # what its Output widget holds


def panel_view(model_id: str, state: dict) -> PanelView:
    view = PanelView([], [], [])
    for mid in descendants(model_id, state):
        model = state[mid]
        s = model.get("state", {})
        value = control_value(model)
        if value is not None:
            view.controls.append((s.get("description") or "", value))
        elif model.get("model_name") == "LabelModel" and s.get("value"):
            view.status.append(s["value"])
        elif model.get("model_name") == "OutputModel":
            view.outputs += s.get("outputs", [])
    return view


def nearest_image(nb: nbformat.NotebookNode, index: int) -> tuple[dict, int] | None:
    """The first image output of the code cell nearest to cell ``index`` (above first)."""
    for distance in range(1, len(nb.cells)):
        for j in (index - distance, index + distance):
            if 0 <= j < len(nb.cells) and nb.cells[j].cell_type == "code":
                for out in nb.cells[j].get("outputs", []):
                    if any(m in out.get("data", {}) for m in IMAGE_TYPES):
                        return out, j
    return None


def panel_html(view: PanelView, nb, index: int, images: Images, ui: dict) -> tuple[str, bool]:
    """A panel as a figure with its settings; True if it shows a figure."""
    settings = " · ".join(
        f"{html.escape(d)} <b>{html.escape(v)}</b>" if d else f"<b>{html.escape(v)}</b>"
        for d, v in view.controls
    )
    parts, shown, note = [], False, ui["panel_drawn"]
    for out in view.outputs:
        data = out.get("data", {})
        mime = next((m for m in IMAGE_TYPES if m in data), None)
        if mime:
            parts.append(img_tag(*images.save(data[mime], mime), ui["figure_alt"]))
            shown = True
        elif out.get("output_type") == "stream":
            parts.append(f'<pre class="panel-text">{html.escape(out.get("text", ""))}</pre>')
        elif "text/plain" in data:
            parts.append(f'<pre class="panel-text">{html.escape(data["text/plain"])}</pre>')
    if not shown:
        near = nearest_image(nb, index)
        if near:
            out, j = near
            mime = next(m for m in IMAGE_TYPES if m in out["data"])
            parts.insert(0, img_tag(*images.save(out["data"][mime], mime), ui["figure_alt"]))
            shown = True
            note = ui["panel_nearest"].format(where=ui["above"] if j < index else ui["below"])
        else:
            note = ui["panel_none"]
    status = f" · {html.escape(' · '.join(view.status))}" if view.status else ""
    caption = (
        f'<figcaption><span class="panel-name">{ui["panel"]}</span> '
        f"({ui['panel_live']}): {settings}{status}. {note}</figcaption>"
    )
    return f'<figure class="panel">{"".join(parts)}{caption}</figure>', shown


def replace_widget_views(nb, page: Page, images: Images, ui: dict) -> None:
    """Each widget view becomes its panel's figure; the widget state leaves the notebook."""
    state = widget_state(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if VIEW not in out.get("data", {}):
                continue
            page.widget_views += 1
            view = panel_view(out["data"][VIEW].get("model_id", ""), state)
            figure, shown = panel_html(view, nb, index, images, ui)
            page.figures_for_views += shown
            out["data"] = {"text/html": figure}
            out.setdefault("metadata", {})
    nb.metadata.pop("widgets", None)


def extract_images(nb, images: Images) -> None:
    """Output images become files; the notebook points to them (nbconvert's ``filenames``)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            for mime in IMAGE_TYPES:
                if mime in out.get("data", {}):
                    src, width, height = images.save(out["data"][mime], mime)
                    meta = out.setdefault("metadata", {})
                    meta.setdefault("filenames", {})[mime] = src
                    if width and height and mime == "image/png":
                        meta.setdefault(mime, {}).setdefault("width", width)
                        meta[mime].setdefault("height", height)
                    if mime == "image/svg+xml":
                        out["svg_filename"] = src


# --- rendering ------------------------------------------------------------------------------


def exporter():
    """nbconvert's HTML exporter with our template (the cells only, JupyterLab's classes)."""
    from nbconvert import HTMLExporter, TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class LessonExporter(HTMLExporter):
        """HTMLExporter without its last pass over the page with BeautifulSoup (alt texts and
        tab stops; finish_page sets alt texts itself), which took most of the build's time."""

        def from_notebook_node(self, nb, resources=None, **kw):
            info = nb.metadata.get("language_info", {})
            lexer = info.get("pygments_lexer", info.get("name"))
            self.register_filter(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
            )
            resources = self._init_resources(resources)
            self.register_filter(
                "filter_data_type",
                WidgetsDataTypeFilter(notebook_metadata={}, parent=self, resources=resources),
            )
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return LessonExporter(
        template_name="lesson",
        extra_template_basedirs=[str(HERE / "templates")],
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )


def short_label(title: str) -> str:
    """The nav's name of a lesson: its title without the number, and without a subtitle unless
    the part before it is one word ("04 · Synchronous vs asynchronous I/O: fetching pages ..." ->
    "Synchronous vs asynchronous I/O"; "13 · Appendix: what an echo costs" stays whole)."""
    name = title.split(" · ", 1)[-1]
    head = name.split(": ", 1)[0]
    return name if " " not in head else head


def render_lesson(page: Page, root: Path, images: Images, ex) -> None:
    nb = nbformat.read(root / page.source, as_version=4)
    ui = UI[page.lang]
    replace_widget_views(nb, page, images, ui)
    extract_images(nb, images)
    for cell in nb.cells:
        if cell.cell_type == "code":  # the tests' markers mean nothing to a reader
            cell.source = NBVAL_MARKER.sub("", cell.source)
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    page.title = first.splitlines()[0].lstrip("# ").strip() if first else page.source
    page.label = short_label(page.title)
    body, _ = ex.from_notebook_node(nb, resources={"metadata": {"name": page.title}})
    page.body = body


def github_slug(text: str, seen: Counter) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as '-'."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    seen[slug] += 1
    return slug if seen[slug] == 1 else f"{slug}-{seen[slug] - 1}"


class DocRenderer(mistune.HTMLRenderer):
    """Markdown as GitHub shows it: heading anchors, highlighted code, raw HTML kept."""

    def __init__(self) -> None:
        super().__init__(escape=False)
        self.seen: Counter = Counter()

    def heading(self, text: str, level: int, **attrs) -> str:
        plain = _text(text)
        slug = html.escape(github_slug(plain, self.seen))
        return (
            f'<h{level} id="{slug}">{text}<a class="anchor-link" href="#{slug}" '
            f'aria-label="link to this section">¶</a></h{level}>\n'
        )

    def block_code(self, code: str, info: str | None = None) -> str:
        try:
            lexer = get_lexer_by_name(info.split()[0]) if info else TextLexer()
        except ClassNotFound:
            lexer = TextLexer()
        return highlight(code, lexer, HtmlFormatter(cssclass="highlight"))


def render_doc(page: Page, root: Path) -> None:
    text = (root / page.source).read_text(encoding="utf-8")
    markdown = mistune.create_markdown(
        renderer=DocRenderer(), plugins=["table", "strikethrough", "url", "footnotes"]
    )
    page.body = f'<div class="jp-RenderedHTMLCommon doc">{markdown(text)}</div>'
    heading = re.search(r"^# (.+)$", text, re.MULTILINE)
    page.title = heading.group(1).strip() if heading else page.source
    page.label = DOC_LABELS.get(page.source, page.title)


# --- links ----------------------------------------------------------------------------------


def site_href(target: str, here: str, fragment: str = "") -> str:
    rel = posixpath.relpath(target, posixpath.dirname(here) or ".")
    return quote(rel) + (f"#{fragment}" if fragment else "")


TAG = re.compile(r"<(a|img)\b([^>]*)>", re.DOTALL)
ATTR = re.compile(r"""\s(href|src|alt)=(["'])(.*?)\2""", re.DOTALL)
ANCHOR = re.compile(r"""\s(?:id|name)=(["'])(.*?)\1""")
H2 = re.compile(r"""<h2\b[^>]*?\sid=(["'])(.*?)\1[^>]*>(.*?)</h2>""", re.DOTALL)
TEXT_OUTPUT = re.compile(r'(<div class="jp-RenderedText[^>]*>\s*<pre)>(.*?)</pre>', re.DOTALL)


@dataclass
class Linker:
    """Turns a page's links to repository files into links to the site's pages."""

    root: Path
    out: Path
    pages: dict[str, Page]  # by source
    github: str
    problems: list[str]
    warnings: list[str]
    wanted_anchors: list[tuple[str, str, str]] = field(default_factory=list)  # page, target, id

    def rewrite(self, page: Page, body: str, alt: str) -> str:
        """Every link and image of the page, pointed at the site (see ``tag``)."""
        return TAG.sub(lambda m: self.tag(page, m.group(1), m.group(2), alt), body)

    def tag(self, page: Page, name: str, attrs: str, alt: str) -> str:
        closing = "/" if attrs.rstrip().endswith("/") else ""
        attrs = attrs.rstrip().removesuffix("/") if closing else attrs
        values = {m.group(1): html.unescape(m.group(3)) for m in ATTR.finditer(attrs)}
        key = "href" if name == "a" else "src"
        if values.get(key):
            new = self.link(page, values[key], name == "img")
            attrs = ATTR.sub(
                lambda m: f' {key}="{html.escape(new)}"' if m.group(1) == key else m.group(0),
                attrs,
            )
        if name == "img":
            if re.match(r"https?://", values.get("src", "")):
                # A badge or picture on another site: the site loads nothing from elsewhere.
                return html.escape(values.get("alt", ""))
            attrs += ' loading="lazy"' + ("" if values.get("alt") else f' alt="{html.escape(alt)}"')
        return f"<{name}{attrs}{closing}>"

    def link(self, page: Page, value: str, is_image: bool) -> str:
        if value.startswith(SITE_ROOT):
            return site_href(value.removeprefix(SITE_ROOT), page.target)
        parts = urlsplit(value)
        if parts.scheme or parts.netloc:
            if "/gh/OWNER/asynclab/" in value and self.github != PLACEHOLDER_REPO:
                return value.replace("/gh/OWNER/asynclab/", f"/gh/{self.github}/")
            return value
        if not parts.path:  # "#anchor" on this page
            self.wanted_anchors.append((page.source, page.source, unquote(parts.fragment)))
            return value
        source = self.resolve(page, unquote(parts.path), value)
        if source in self.pages:
            if parts.fragment:
                self.wanted_anchors.append((page.source, source, unquote(parts.fragment)))
            return site_href(self.pages[source].target, page.target, parts.fragment)
        path = self.root / source
        if source.startswith("..") or not path.exists():
            self.problems.append(f"{page.source}: link to {value!r}: no such file ({source})")
            return value
        if is_image:  # an image the page shows: copied beside the page, as in the repository
            (self.out / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.out / source)
            return site_href(source, page.target)
        kind = "tree" if path.is_dir() else "blob"
        return f"https://github.com/{self.github}/{kind}/HEAD/{quote(source)}"

    def resolve(self, page: Page, path: str, value: str) -> str:
        """The repository path a relative link names.

        A Chinese lesson is the English notebook with its prose translated, so its links may be
        written as from ``notebooks/``: when one names nothing from ``notebooks/zh/``, it is
        taken as the English lesson's (and noted: in JupyterLab it is broken there)."""
        source = posixpath.normpath(posixpath.join(posixpath.dirname(page.source), path))
        if page.lang != "zh" or source in self.pages or (self.root / source).exists():
            return source
        english = posixpath.normpath(posixpath.join("notebooks", path))
        if english in self.pages or (self.root / english).exists():
            self.warnings.append(
                f"{page.source}: link {value!r} names nothing from notebooks/zh/; "
                f"taken as the English lesson's ({english})"
            )
            return english
        return source


def finish_page(page: Page, linker: Linker, ui: dict) -> None:
    """Rewrite links, note anchors and headings, make images and tables fit a phone.

    Regular expressions, not an HTML parser: the HTML is nbconvert's, mistune's and ours, with
    quoted attributes, and parsing the lessons' highlighted code took most of the build."""
    body = linker.rewrite(page, page.body, ui["figure_alt"])
    body = TEXT_OUTPUT.sub(_mark_sentences, body)
    body = body.replace("<table", '<div class="table-wrap"><table').replace(
        "</table>", "</table></div>"
    )
    page.ids = {unquote(html.unescape(m.group(2))) for m in ANCHOR.finditer(body)}
    page.toc = [
        (html.unescape(m.group(2)), _text(m.group(3)).rstrip("¶").strip())
        for m in H2.finditer(body)
    ]
    page.body = body


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _mark_sentences(match: re.Match) -> str:
    """Claims and reports are sentences: on a narrow screen they wrap rather than scroll."""
    if re.search(r"^\s*[✔✘·]", _text(match.group(2)), re.MULTILINE):
        return f'{match.group(1)} class="sentences">{match.group(2)}</pre>'
    return match.group(0)


def check_anchors(linker: Linker) -> None:
    for where, source, anchor in linker.wanted_anchors:
        target = linker.pages[source]
        if anchor and anchor not in target.ids:
            linker.problems.append(f"{where}: link to {source}#{anchor}: no such anchor")


# --- pages ----------------------------------------------------------------------------------


def local_url(page: Page) -> str:
    """The lesson in a local JupyterLab that ``python -m labkit lab`` started (on my-work/)."""
    path = page.source.removeprefix("notebooks/")
    return f"http://localhost:8888/lab/tree/{quote(path)}"


def binder_url(github: str, page: Page | None) -> str:
    path = "my-work/" + (page.source.removeprefix("notebooks/") if page else "00_start_here.ipynb")
    return f"https://mybinder.org/v2/gh/{github}/HEAD?urlpath={quote('lab/tree/' + path, safe='')}"


def lessons_in(lang: str, pages: list[Page]) -> list[Page]:
    """The nav's lessons in a language: each English lesson, or its translation if there is one."""
    english = [p for p in pages if p.kind == "lesson" and p.lang == "en"]
    if lang == "en":
        return english
    return [counterpart(p, pages) or p for p in english]


def render_site(site: Site, github: str) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("page.html")
    repo_name = github.rsplit("/", 1)[-1]
    first_zh = next((p for p in site.pages if p.kind == "lesson" and p.lang == "zh"), None)
    for page in site.pages:
        lang = page.lang
        lessons = lessons_in(lang, site.pages)
        # A lesson's switch goes to the same lesson; the other pages' switch to the first one.
        other = counterpart(page, site.pages) if page.kind == "lesson" else first_zh
        index = lessons.index(page) if page in lessons else -1
        text = template.render(
            page=page,
            ui=UI[lang],
            href=lambda target, here=page.target: site_href(target, here),
            lessons=lessons,
            docs=[p for p in site.pages if p.kind == "doc"],
            previous=lessons[index - 1] if index > 0 else None,
            next=lessons[index + 1] if 0 <= index < len(lessons) - 1 else None,
            other=other,
            binder=binder_url(github, page if page.kind == "lesson" else None),
            local=local_url(page) if page.kind == "lesson" else None,
            work_folder="my-work/zh/" if page.lang == "zh" else "my-work/",
            lab_command=".venv/bin/python -m labkit lab" + (" --lang zh" if lang == "zh" else ""),
            clone=f"git clone https://github.com/{github}.git && cd {repo_name}",
            body=page.body,
        )
        path = site.out / page.target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_static(out: Path) -> None:
    static = out / "_static"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "static" / "site.css", static / "site.css")
    css = HtmlFormatter(style="friendly").get_style_defs(".highlight")
    (static / "pygments.css").write_text(css, encoding="utf-8")


def stored_output_warnings(root: Path, page: Page) -> list[str]:
    """Errors a stored output shows (the browser check fails on them)."""
    nb = nbformat.read(root / page.source, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells, 1):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            # A raised exception's traceback starts a line; a report may quote one, indented.
            raised = re.search(r"^Traceback \(most", text, re.MULTILINE)
            if out.get("output_type") == "error" or raised:
                found.append(f"{page.source}: cell {i} stores an error")
    return found


def github_repo(root: Path) -> str:
    """owner/name from the origin remote, if it is on GitHub; else the README's placeholder."""
    try:
        url = subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return PLACEHOLDER_REPO
    match = re.search(r"github\.com[:/]([\w.-]+/[\w.-]+?)(?:\.git)?$", url)
    return match.group(1) if match else PLACEHOLDER_REPO


def empty_for_a_site(out: Path, root: Path) -> None:
    """Empty ``out`` for a new build, only if it is new, empty or an earlier build."""
    if out == root or out in root.parents:
        raise SystemExit(f"--out {out} holds the repository: give a folder of its own")
    if out.exists():
        earlier = (out / "_static" / "site.css").exists()
        if not out.is_dir() or (any(out.iterdir()) and not earlier):
            raise SystemExit(
                f"--out {out} is not empty and is not an earlier build of the site: "
                "give a new or empty folder"
            )
        shutil.rmtree(out)


def build(root: Path = REPO, out: Path = DEFAULT_OUT, github: str | None = None) -> Site:
    """Build the site of the repository at ``root`` into ``out`` (emptied first)."""
    started = time.perf_counter()
    root, out = Path(root).resolve(), Path(out).resolve()
    empty_for_a_site(out, root)
    out.mkdir(parents=True)
    github = github or github_repo(root)
    site = Site(out, discover(root))
    images, ex = Images(out), None
    for page in site.pages:
        if page.kind == "lesson":
            ex = ex or exporter()
            render_lesson(page, root, images, ex)
            site.warnings += stored_output_warnings(root, page)
        else:
            render_doc(page, root)
    pages = {p.source: p for p in site.pages}
    linker = Linker(root, out, pages, github, site.problems, site.warnings)
    for page in site.pages:
        finish_page(page, linker, UI[page.lang])
    check_anchors(linker)
    write_static(out)
    render_site(site, github)
    site.images = len(images.written)
    site.bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    site.seconds = time.perf_counter() - started
    if github == PLACEHOLDER_REPO:
        site.warnings.append(
            f"Binder and clone links name the placeholder {PLACEHOLDER_REPO}: "
            "pass --github owner/name once the course is published"
        )
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    parser.add_argument("--root", type=Path, default=REPO, help="the repository (default: ours)")
    parser.add_argument("--github", help="owner/name on GitHub (default: the origin remote)")
    args = parser.parse_args(argv)
    site = build(args.root, args.out, args.github)
    lessons = [p for p in site.pages if p.kind == "lesson"]
    zh = sum(p.lang == "zh" for p in lessons)
    for line in site.warnings:
        print(f"note: {line}", file=sys.stderr)
    for line in site.problems:
        print(f"error: {line}", file=sys.stderr)
    print(
        f"{len(site.pages)} pages ({len(lessons) - zh} lessons, {zh} in Chinese, "
        f"{len(site.pages) - len(lessons)} other pages) and {site.images} figures, "
        f"{site.bytes / 2**20:.1f} MiB, in {site.seconds:.1f} s: "
        f"{os.path.relpath(site.out / 'index.html')}"
    )
    return 1 if site.problems else 0


if __name__ == "__main__":
    sys.exit(main())
