"""Build the book: the course as a static web site, offline (``make book``).

    .venv/bin/python -m tools.book.build [--out _build/html] [--root .]

What becomes a page (``plan``), each at the same path as its source with ``.html``:

- every chapter, ``notebooks/NN_*.ipynb``, with its outputs exactly as committed
  (nothing is executed: the committed outputs are what CI re-checks with nbval);
- the labs: ``labs/README.md``, each ``labs/NN_*/README.md`` and the lab's solution
  notebook ``labs/NN_*/NN_*.ipynb``;
- the study pages, when they exist: ``docs/cheat_sheet.md``,
  ``docs/changed_since_2023.md``, ``docs/exam_questions.md``;
- ``index.html``: the course title, the chapter table of README.md, the labs, and the
  chapters by AWS service (the ``claim-ATH-9``-style tags each notebook carries, named
  by the ``# --- ATH: Amazon Athena`` lines of ``docs/curriculum_ids.yml``).

How (``Renderer``): nbconvert's ``HTMLExporter`` with a local template
(``tools/book/templates/book``) that extends nbconvert's JupyterLab template and
replaces every block that would load something from the internet. Markdown files
are rendered as one-cell notebooks, so every page goes through the same markdown
renderer (raw HTML such as the ``<a id="claim-ATH-9"></a>`` anchors is kept) and
the same page: one navigation, JupyterLab's styles, system fonts.

Then ``LinkMap.rewrite`` fixes the links of each page: a link to a file the site
renders (``../notebooks/02_athena_performance.ipynb#claim-ATH-9``,
``01_athena/README.md``, a folder with a README) points to its page, with the same
``#fragment``; a link to anything else in the repository (a ``.py`` file) loses its
``<a>`` and keeps its text; external links (``https://``) are left as they are.

Diagrams: markdown cells hold ```` ```mermaid ```` blocks; the browser draws them as
SVG with the site's own Mermaid (``static/mermaid.min.js``), which
``tools/fetch_web_assets.py`` installed from the npm registry when ``make`` ran
(``web_assets.lock``). Building touches no network, and writes the same bytes for
the same input (no timestamps).
"""
from __future__ import annotations

import argparse
import html
import os
import posixpath
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
DEFAULT_OUT = PROJECT_ROOT / "_build" / "html"

#: The study pages (committed markdown, generated from the chapters), in nav order.
STUDY_PAGES = (("docs/cheat_sheet.md", "Cheat sheet"),
               ("docs/changed_since_2023.md", "Changed since 2023"),
               ("docs/exam_questions.md", "Exam questions"))
#: Files of the installed Mermaid package (``.venv/web/mermaid/``) copied into the site.
MERMAID_FILES = {"static/mermaid.min.js": "dist/mermaid.min.js",
                 "static/mermaid.LICENSE.txt": "LICENSE"}
#: Written into every site this tool builds, so a rebuild knows the folder is its own.
MARKER = ".book"
#: Where the page template puts the navigation, filled in after the page's links are rewritten.
NAV_SLOT = "<!-- book: navigation -->"
MERMAID_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*mermaid\b", re.M)
CLAIM_ANCHOR = re.compile(r"""<a\s+(?:name|id)\s*=\s*["'](claim-[A-Za-z]+-\d+)["']""")
SERVICE_LINE = re.compile(r"^# --- ([A-Z]+): (.+?)\s*(?:\([^()]*\))?\s*$", re.M)


class BuildError(RuntimeError):
    """The book cannot be built; the message says why and what to do."""


# --------------------------------------------------------------------- what becomes a page

@dataclass
class Page:
    """One page of the site and the file it is made from."""
    source: str                # path of the source in the repository (posix): notebooks/01_x.ipynb
    output: str                # path of the page in the site: notebooks/01_x.html
    kind: str                  # index, chapter, labs, lab, solution or study
    title: str                 # the source's first heading
    label: str                 # its short name in the navigation
    number: str = ""           # "01" for chapter 01 and lab 01
    content: object = field(default=None, repr=False)   # the notebook, or the markdown text

    @property
    def is_notebook(self) -> bool:
        return self.source.endswith(".ipynb")


def first_heading(text: str) -> str | None:
    """The text of the first markdown heading (``# Title``) in ``text``, if any."""
    match = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)
    return match.group(1).strip() if match else None


def short_title(title: str) -> str:
    """The part of a heading before its first top-level colon: the navigation's label.

    ``"11 · Amazon MSK: Apache Kafka, managed by AWS"`` -> ``"11 · Amazon MSK"``; a colon
    inside parentheses does not count.
    """
    depth = 0
    for i, char in enumerate(title):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ":" and depth == 0 and title[i + 1:i + 2] in (" ", ""):
            return title[:i].strip()
    return title


def _notebook_title(nb) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = first_heading(cell.source)
            if found:
                return found
    return None


def _read(root: Path, source: str, kind: str, label: str | None = None, number: str = "") -> Page:
    import nbformat

    path = root / source
    if source.endswith(".ipynb"):
        content = nbformat.read(path, as_version=4)
        title = _notebook_title(content)
    else:
        content = path.read_text(encoding="utf-8")
        title = first_heading(content)
    title = title or Path(source).stem.replace("_", " ")
    output = str(Path(source).with_suffix(".html").as_posix())
    return Page(source, output, kind, title, label or short_title(title), number, content)


def plan(root: Path = PROJECT_ROOT) -> list[Page]:
    """Every page of the site, in navigation order (the index first)."""
    pages = []
    for path in sorted(root.glob("notebooks/[0-9][0-9]_*.ipynb")):
        pages.append(_read(root, f"notebooks/{path.name}", "chapter", number=path.name[:2]))
    if (root / "labs" / "README.md").is_file():
        pages.append(_read(root, "labs/README.md", "labs", label="Overview"))
    for lab in sorted(p for p in root.glob("labs/[0-9][0-9]_*") if p.is_dir()):
        folder = f"labs/{lab.name}"
        if (lab / "README.md").is_file():
            pages.append(_read(root, f"{folder}/README.md", "lab", number=lab.name[:2]))
        for solution in sorted(lab.glob("[0-9][0-9]_*.ipynb")):
            pages.append(_read(root, f"{folder}/{solution.name}", "solution", label="solution",
                               number=lab.name[:2]))
    for source, label in STUDY_PAGES:
        if (root / source).is_file():
            pages.append(_read(root, source, "study", label=label))
    index = Page("README.md", "index.html", "index", course_title(root), "Contents")
    return [index, *pages]


def course_title(root: Path) -> str:
    """README.md's first heading: the course's title."""
    try:
        return first_heading((root / "README.md").read_text(encoding="utf-8")) or "The course"
    except OSError:
        return "The course"


# --------------------------------------------------------------------- links between pages

class LinkMap:
    """Where each source file of the repository is in the site, and how links reach it."""

    def __init__(self, pages: list[Page]):
        self.targets = {page.source: page.output for page in pages}
        for page in pages:                   # a link to a folder opens the folder's README
            if posixpath.basename(page.source) == "README.md":
                self.targets.setdefault(posixpath.dirname(page.source), page.output)

    def resolve(self, href: str, source: str, output: str) -> str | None:
        """The link ``href`` of the page made from ``source`` (at ``output`` in the site), as it
        must read in the site: unchanged when external or within the page, rewritten to the
        target's page, or None when it points to a file the site does not contain."""
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path:
            return href                      # https://..., mailto:..., #fragment, ?query
        path = unquote(parts.path)
        if path.startswith("/"):
            return None
        target = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        target = "" if target == "." else target
        if target == ".." or target.startswith("../") or target not in self.targets:
            return None
        new = posixpath.relpath(self.targets[target], posixpath.dirname(output) or ".")
        return new + (f"#{parts.fragment}" if parts.fragment else "")

    _ANCHOR = re.compile(r"<a\b(?P<attrs>[^>]*)>(?P<inner>.*?)</a\s*>", re.S | re.I)
    _HREF = re.compile(r"""\bhref\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""", re.I)

    def rewrite(self, page_html: str, source: str, output: str) -> tuple[str, list[str]]:
        """``page_html`` with every ``<a href>`` resolved (see :meth:`resolve`); links to files
        outside the site become their bare text. Returns the HTML and the hrefs dropped."""
        dropped = []

        def replace(match: re.Match) -> str:
            attrs = match.group("attrs")
            found = self._HREF.search(attrs)
            if not found:
                return match.group(0)        # <a id="claim-ATH-9"></a>: an anchor, not a link
            href = html.unescape(found.group("dq") if found.group("dq") is not None
                                 else found.group("sq"))
            new = self.resolve(href, source, output)
            if new == href:
                return match.group(0)
            if new is None:
                dropped.append(href)
                return match.group("inner")
            attrs = f'{attrs[:found.start()]}href="{html.escape(new)}"{attrs[found.end():]}'
            return f"<a{attrs}>{match.group('inner')}</a>"

        return self._ANCHOR.sub(replace, page_html), dropped


# --------------------------------------------------------------------- the index page

def _claim_key(claim_id: str) -> tuple[str, int]:
    prefix, _, number = claim_id.rpartition("-")
    return prefix, int(number)


def services(root: Path) -> dict[str, str]:
    """Claim-id prefix -> service name, from the ``# --- ATH: Amazon Athena (...)`` lines."""
    try:
        text = (root / "docs" / "curriculum_ids.yml").read_text(encoding="utf-8")
    except OSError:
        return {}
    return {prefix: name for prefix, name in SERVICE_LINE.findall(text)}


def claim_texts(root: Path) -> dict[str, str]:
    """Claim id -> the claim's sentence (shown as the link's tooltip on the index)."""
    try:
        import yaml
        data = yaml.safe_load((root / "docs" / "curriculum_ids.yml").read_text(encoding="utf-8"))
    except (OSError, ImportError):
        return {}
    return {key: str(value.get("claim", "")) for key, value in (data or {}).items()
            if isinstance(value, dict)}


def claims_of(nb) -> list[str]:
    """The claim ids a notebook both tags (``claim-<ID>`` cell tags) and anchors, in id order."""
    tagged, anchored = set(), set()
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            if re.fullmatch(r"claim-[A-Za-z]+-\d+", tag):
                tagged.add(tag[len("claim-"):])
        if cell.cell_type == "markdown":
            anchored.update(a[len("claim-"):] for a in CLAIM_ANCHOR.findall(cell.source))
    return sorted(tagged & anchored, key=_claim_key)


def _readme_chapters(root: Path) -> dict[str, str]:
    """README.md's chapter table: notebook path -> its "Services" cell (markdown)."""
    try:
        text = (root / "README.md").read_text(encoding="utf-8")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3:
            path = re.fullmatch(r"`?(notebooks/[^`]+\.ipynb)`?", cells[1])
            if path:
                found[path.group(1)] = cells[2]
    return found


def _md_link(text: str, href: str, title: str = "") -> str:
    """A markdown link (safe inside a table row): ``[text](href "title")``."""
    text = text.replace("[", "\\[").replace("]", "\\]").replace("|", "\\|")
    title = title.replace('"', "'").replace("\n", " ").replace("|", "\\|")
    return f'[{text}]({href} "{title}")' if title else f"[{text}]({href})"


def index_markdown(root: Path, pages: list[Page]) -> str:
    """The index page's markdown (links in it are repository paths, rewritten like any page's)."""
    chapters = [p for p in pages if p.kind == "chapter"]
    labs = {p.number: p for p in pages if p.kind == "lab"}
    solutions = {p.number: p for p in pages if p.kind == "solution"}
    names, texts = services(root), claim_texts(root)
    readme_services = _readme_chapters(root)
    claims = {page.source: claims_of(page.content) for page in chapters}

    def prefixes(page: Page) -> list[str]:
        return list(dict.fromkeys(_claim_key(c)[0] for c in claims[page.source]))

    lines = [f"# {course_title(root)}", ""]
    try:
        readme = (root / "README.md").read_text(encoding="utf-8")
        intro = readme.split("\n\n")[1].strip() if "\n\n" in readme else ""
    except OSError:
        intro = ""
    if intro and not intro.startswith(("#", "|", "```")):
        lines += [intro, ""]
    lines += ["This is the course as a book: every chapter and lab with the outputs committed "
              "in the repository, which CI re-executes and compares. To run them yourself: "
              "`make lab`.", ""]
    lines += ["## Chapters", "", "| # | Chapter | Services | Lab |", "| --- | --- | --- | --- |"]
    for page in chapters:
        name = re.sub(r"^\d\d\s*·\s*", "", page.title)
        what = readme_services.get(page.source) or ", ".join(
            names.get(p, p) for p in prefixes(page))
        lab = labs.get(page.number)
        lab = _md_link(f"Lab {page.number}", lab.source) if lab else ""
        lines.append(f"| {page.number} | {_md_link(name, page.source)} | {what} | {lab} |")
    lines.append("")

    if labs or solutions:
        lines += ["## Labs", "", "Graded exercises with automatic checks "
                  f"({_md_link('how to do a lab', 'labs/README.md')}).", "",
                  "| # | Lab | Solution |", "| --- | --- | --- |"]
        for number in sorted(set(labs) | set(solutions)):
            lab, solution = labs.get(number), solutions.get(number)
            title = _md_link(lab.title, lab.source) if lab else ""
            lines.append(f"| {number} | {title} | "
                         f"{_md_link('solution', solution.source) if solution else ''} |")
        lines.append("")

    study = [p for p in pages if p.kind == "study"]
    if study:
        lines += ["## Study pages", ""]
        lines += [f"- {_md_link(p.label, p.source)}: {p.title}" for p in study]
        lines.append("")

    lines += ['<a id="services"></a>', "", "## By service", "",
              "Each link lands on the cell of a chapter that shows one point of the curriculum "
              "(its id, e.g. ATH-9: hover for the point itself).", ""]
    order = list(names) + sorted({p for page in chapters for p in prefixes(page)} - set(names))
    for prefix in order:
        carrying = [page for page in chapters if prefix in prefixes(page)]
        if not carrying:
            continue
        lines += [f"### {names.get(prefix, prefix)}", ""]
        for page in carrying:
            ids = [c for c in claims[page.source] if _claim_key(c)[0] == prefix]
            links = " ".join(_md_link(c, f"{page.source}#claim-{c}", texts.get(c, ""))
                             for c in ids)
            lines.append(f"- {_md_link(page.label, page.source)}: {links}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------- navigation

def nav_html(pages: list[Page], current: Page) -> str:
    """The navigation every page carries, its links relative to ``current``."""
    here = posixpath.dirname(current.output) or "."

    def link(page: Page, text: str | None = None, fragment: str = "") -> str:
        href = posixpath.relpath(page.output, here) + fragment
        mark = ' aria-current="page"' if page is current and not fragment else ""
        return f'<a href="{html.escape(href)}"{mark}>{html.escape(text or page.label)}</a>'

    index = pages[0]
    out = ['<nav class="book-nav" aria-label="Book">',
           f'<a class="book-title" href="{html.escape(posixpath.relpath(index.output, here))}">'
           f"{html.escape(index.title)}</a>",
           "<ul>", f"<li>{link(index, 'Contents')}</li>",
           f"<li>{link(index, 'By service', '#services')}</li>", "</ul>"]
    chapters = [p for p in pages if p.kind == "chapter"]
    if chapters:
        out += ["<h2>Chapters</h2>", "<ul>", *(f"<li>{link(p)}</li>" for p in chapters), "</ul>"]
    labs = [p for p in pages if p.kind in ("labs", "lab", "solution")]
    if labs:
        out += ["<h2>Labs</h2>", "<ul>"]
        for page in labs:
            if page.kind == "solution":
                if out[-1].endswith("</li>") and out[-1].startswith("<li>"):
                    out[-1] = out[-1][:-5] + f' <span class="book-sub">({link(page)})</span></li>'
                else:
                    out.append(f'<li>Lab {page.number} <span class="book-sub">({link(page)})'
                               "</span></li>")
            else:
                out.append(f"<li>{link(page)}</li>")
        out.append("</ul>")
    study = [p for p in pages if p.kind == "study"]
    if study:
        out += ["<h2>Study</h2>", "<ul>", *(f"<li>{link(p)}</li>" for p in study), "</ul>"]
    out.append("</nav>")
    return "\n".join(out)


# --------------------------------------------------------------------- rendering

def mermaid_blocks(page: Page) -> int:
    """How many Mermaid diagrams the page's source holds (markdown fences and outputs)."""
    if not page.is_notebook:
        return len(MERMAID_FENCE.findall(page.content or ""))
    count = 0
    for cell in page.content.cells:
        if cell.cell_type == "markdown":
            count += len(MERMAID_FENCE.findall(cell.source))
        for output in cell.get("outputs", []):
            count += "text/vnd.mermaid" in output.get("data", {})
    return count


#: Output types whose display needs a script the book does not serve (they would show as
#: nothing, or fall back to their text/png form): reported, never loaded from a CDN.
NEEDS_SCRIPT = ("application/vnd.jupyter.widget-view+json", "application/javascript")


class Renderer:
    """nbconvert's HTMLExporter with the book's template; one per build."""

    def __init__(self):
        from nbconvert import HTMLExporter

        self.exporter = HTMLExporter(template_name="book",
                                     extra_template_basedirs=[str(TEMPLATES)])
        # The template replaces the blocks that use these; emptied too, so that no block
        # inherited from nbconvert can ever point a page at a CDN.
        for trait in ("require_js_url", "mathjax_url", "jquery_url", "jupyter_widgets_base_url",
                      "widget_renderer_url", "mermaid_layout_elk_js_url"):
            setattr(self.exporter, trait, "")
        self.exporter.mermaid_js_url = "static/mermaid.min.js"

    def lab_css(self) -> dict[str, Path]:
        """JupyterLab's stylesheets from nbconvert's lab template: site path -> file."""
        for folder in map(Path, self.exporter.template_paths):
            if (folder / "static" / "index.css").is_file() and folder.name == "lab":
                return {f"static/lab/{name}": folder / "static" / name
                        for name in ("index.css", "theme-light.css")}
        raise BuildError("nbconvert's lab template (static/index.css) was not found; "
                         "reinstall nbconvert (make clean && make)")

    def render(self, page: Page, notebook, nav: str) -> str:
        """``notebook`` (the page's content) as the page's HTML, with ``nav`` as navigation."""
        import nbformat

        notebook = nbformat.from_dict(notebook)          # a copy: the title is set below
        notebook.metadata["title"] = page.title + (" (solution)" if page.kind == "solution" else "")
        resources = {"metadata": {"name": Path(page.output).stem,
                                  "path": str(Path(page.source).parent)},
                     "book": {"root": "../" * page.output.count("/"), "nav": nav,
                              "mermaid": mermaid_blocks(page) > 0}}
        body, _ = self.exporter.from_notebook_node(notebook, resources=resources)
        return body


def render_page(page: Page, pages: list[Page], renderer: Renderer,
                links: LinkMap) -> tuple[str, list[str], list[str]]:
    """The page's HTML, the hrefs it lost (files outside the site) and warnings."""
    warnings = []
    if page.is_notebook:
        notebook = page.content
        kinds = {k for c in notebook.cells for o in c.get("outputs", [])
                 for k in o.get("data", {}) if k in NEEDS_SCRIPT}
        if kinds:
            warnings.append(f"{page.source}: outputs of type {', '.join(sorted(kinds))} need "
                            "a script the book does not serve; they show their text form")
    else:
        notebook = _markdown_notebook(page.content)
    # The navigation's links are the site's own already: it goes in after the rewrite.
    body = renderer.render(page, notebook, NAV_SLOT)
    body, lost = links.rewrite(body, page.source, page.output)
    return body.replace(NAV_SLOT, nav_html(pages, page), 1), lost, warnings


def _markdown_notebook(text: str):
    """A markdown file as a notebook of one markdown cell (its id fixed: same bytes each build)."""
    import nbformat.v4 as v4

    return v4.new_notebook(cells=[v4.new_markdown_cell(text, id="page")],
                           metadata={"language_info": {"name": "python"}})


def web_dir() -> Path:
    """Where ``tools/fetch_web_assets.py`` installed the web assets."""
    configured = os.environ.get("LOCALAWS_WEB_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [PROJECT_ROOT / ".venv" / "web", Path(sys.prefix) / "web"]
    for folder in candidates:
        if (folder / "mermaid" / MERMAID_FILES["static/mermaid.min.js"]).is_file():
            return folder
    return candidates[0]


def _prepare(out: Path) -> None:
    """Empty ``out`` for a new build, refusing a folder that is not a previous site."""
    if out.exists():
        ours = (out / MARKER).is_file() or (out / "index.html").is_file() or not any(out.iterdir())
        if not out.is_dir() or not ours:
            raise BuildError(f"refusing to replace {out}: it is not a site built by "
                             f"tools/book/build.py (no {MARKER} or index.html in it)")
        shutil.rmtree(out)
    out.mkdir(parents=True)


@dataclass
class Report:
    """What a build wrote."""
    out: Path
    pages: list[Page]
    dropped: dict[str, list[str]]          # page output -> hrefs kept as text
    warnings: list[str]
    seconds: float


def build(root: Path = PROJECT_ROOT, out: Path = DEFAULT_OUT, assets: Path | None = None) -> Report:
    """Render every page of ``root`` into ``out`` (replaced); see the module docstring."""
    started = time.monotonic()
    root, out = Path(root).resolve(), Path(out).resolve()
    pages = plan(root)
    diagrams = sum(mermaid_blocks(p) for p in pages if p.kind != "index")
    assets = Path(assets) if assets else web_dir()
    mermaid = {site: assets / "mermaid" / inside for site, inside in MERMAID_FILES.items()}
    if diagrams and not all(path.is_file() for path in mermaid.values()):
        raise BuildError(f"Mermaid is not installed in {assets / 'mermaid'} (the pages hold "
                         f"{diagrams} diagrams): run `make`, or "
                         "`.venv/bin/python tools/fetch_web_assets.py`")
    renderer = Renderer()
    _prepare(out)
    copies = {**renderer.lab_css(), "static/book.css": STATIC / "book.css",
              "static/book.js": STATIC / "book.js"}
    if diagrams:
        copies.update(mermaid)
    for site_path, source in copies.items():
        (out / site_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / site_path)

    pages[0].content = index_markdown(root, pages)
    dropped, warnings = {}, []
    links = LinkMap(pages)
    for page in pages:
        body, lost, notes = render_page(page, pages, renderer, links)
        target = out / page.output
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        if lost:
            dropped[page.output] = lost
        warnings += notes
    (out / MARKER).write_text("A site built by tools/book/build.py; a rebuild replaces this "
                              "folder.\n", encoding="utf-8")
    return Report(out, pages, dropped, warnings, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the site's folder, replaced (default: _build/html)")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT,
                        help="the course repository to render (default: this one)")
    args = parser.parse_args(argv)
    try:
        report = build(args.root, args.out)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for page, hrefs in sorted(report.dropped.items()):
        print(f"{page}: kept as text, not in the site: {', '.join(sorted(set(hrefs)))}")
    kinds = [p.kind for p in report.pages]
    print(f"book: {len(report.pages)} pages ({kinds.count('chapter')} chapters, "
          f"{kinds.count('lab')} labs, {kinds.count('solution')} lab solutions, "
          f"{kinds.count('study')} study pages) in {report.out} "
          f"({report.seconds:.1f} s). Open {report.out / 'index.html'}, or run make book-serve.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
