"""The book (``make book``): the course as a static site, built offline and read in a browser.

- unit tests, no browser: how links between files become links between pages
  (``LinkMap``), the navigation labels, and ``tools/fetch_web_assets.py`` against a
  "registry" made of local files (integrity refused when wrong, nothing re-downloaded
  when installed, a clear error offline, the registry chosen like npm chooses it);
- a small stand-in course in a temporary folder: built with every socket refused
  (the build is offline), twice with the same bytes, and read in the browser to prove
  that the link check below reports a link to an anchor that does not exist;
- the real course, built once into a temporary folder (not ``_build/``) and served on
  127.0.0.1: **every page** opened in headless Chromium (Debian's, through
  ``localaws.core.browser``) must load, log no error, request nothing from any other
  host, draw every Mermaid diagram of its source as an SVG, and every link of every
  page must land on a page of the site and on an element with the link's ``#id``.

Without a browser the browser tests skip, except under ``CI=true`` where they fail,
as in ``test_quicksight_browser.py``.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import os
import re
import socket
import sys
import tarfile
import textwrap
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import nbformat.v4 as v4
import pytest

from localaws.core.browser import missing_reason, open_browser
from tools.book import build, serve

ROOT = Path(__file__).resolve().parents[1]
REASON = missing_reason()
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*mermaid\b", re.M)


def _load_fetcher():
    """tools/fetch_web_assets.py is a script, not a package module: load it by path."""
    spec = importlib.util.spec_from_file_location("fetch_web_assets",
                                                  ROOT / "tools" / "fetch_web_assets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module       # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


fetch = _load_fetcher()


# --------------------------------------------------------------------- links, no browser

def _pages(*sources: str) -> list[build.Page]:
    pages = [build.Page("README.md", "index.html", "index", "Course", "Contents")]
    for source in sources:
        output = str(Path(source).with_suffix(".html").as_posix())
        pages.append(build.Page(source, output, "chapter", source, source))
    return pages


LINKS = build.LinkMap(_pages("notebooks/01_athena_basics.ipynb", "notebooks/02_perf.ipynb",
                             "labs/README.md", "labs/01_athena/README.md",
                             "labs/01_athena/01_athena.ipynb", "docs/cheat_sheet.md"))


@pytest.mark.parametrize("source, href, expected", [
    # a chapter's link to another chapter, with its claim anchor
    ("docs/cheat_sheet.md", "../notebooks/02_perf.ipynb#claim-ATH-9",
     "../notebooks/02_perf.html#claim-ATH-9"),
    ("notebooks/01_athena_basics.ipynb", "02_perf.ipynb#claim-ATH-9", "02_perf.html#claim-ATH-9"),
    ("notebooks/01_athena_basics.ipynb", "#claim-ATH-1", "#claim-ATH-1"),      # same page
    ("labs/README.md", "01_athena/README.md", "01_athena/README.html"),
    ("labs/README.md", "01_athena/", "01_athena/README.html"),                # a folder
    ("notebooks/02_perf.ipynb", "../labs/01_athena/01_athena.ipynb",
     "../labs/01_athena/01_athena.html"),
    ("labs/01_athena/README.md", "../../README.md", "../../index.html"),
    ("labs/01_athena/README.md", "../../notebooks/01_athena_basics.ipynb#claim-ATH-1",
     "../../notebooks/01_athena_basics.html#claim-ATH-1"),
    ("README.md", "notebooks/02_perf.ipynb", "notebooks/02_perf.html"),       # the index
    ("docs/cheat_sheet.md", "https://docs.aws.amazon.com/athena/",
     "https://docs.aws.amazon.com/athena/"),
    ("docs/cheat_sheet.md", "mailto:someone@example.com", "mailto:someone@example.com"),
    # files and folders the site does not hold: no link
    ("labs/README.md", "../localaws/grading.py", None),
    ("notebooks/01_athena_basics.ipynb", "../localaws/athena/", None),
    ("notebooks/01_athena_basics.ipynb", "../../outside.md", None),
    ("notebooks/01_athena_basics.ipynb", "/etc/passwd", None),
    ("notebooks/01_athena_basics.ipynb", "03_missing.ipynb", None),
])
def test_links_between_files_become_links_between_pages(source, href, expected):
    output = "index.html" if source == "README.md" else str(Path(source).with_suffix(".html"))
    assert LINKS.resolve(href, source, output) == expected


def test_links_outside_the_site_keep_their_text_and_anchors_stay():
    page = ('<p><a id="claim-ATH-9"></a></p><p>See <a href="../localaws/grading.py">'
            '<code>grading.py</code></a> and <a class="x" href=\'02_perf.ipynb#claim-ATH-9\'>'
            'ATH-9</a> and <a href="https://aws.amazon.com/athena/?a=1&amp;b=2">AWS</a>.</p>')
    html, dropped = LINKS.rewrite(page, "notebooks/01_athena_basics.ipynb",
                                  "notebooks/01_athena_basics.html")
    assert html == ('<p><a id="claim-ATH-9"></a></p><p>See <code>grading.py</code> and '
                    '<a class="x" href="02_perf.html#claim-ATH-9">ATH-9</a> and '
                    '<a href="https://aws.amazon.com/athena/?a=1&amp;b=2">AWS</a>.</p>')
    assert dropped == ["../localaws/grading.py"]


def test_navigation_labels_are_the_heading_before_its_colon():
    assert build.short_title("11 · Amazon MSK: Apache Kafka, managed by AWS") == "11 · Amazon MSK"
    assert build.short_title("07 · Amazon QuickSight (today: Amazon Quick Sight): dashboards") \
        == "07 · Amazon QuickSight (today: Amazon Quick Sight)"
    assert build.short_title("10 · Kinesis Data Streams") == "10 · Kinesis Data Streams"
    assert build.first_heading("intro\n\n## 2. Formats ##\n# later") == "2. Formats"


# --------------------------------------------------------------------- the asset fetcher, offline

def _tarball(files: dict[str, bytes]) -> bytes:
    """An npm-style tarball (top folder ``package/``) holding ``files``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture()
def registry(tmp_path):
    """A registry of local files holding ``demo`` 1.0.0, 1.2.0 and 2.0.0; a lock of 1.0.0."""
    root = tmp_path / "registry"
    documents = {}
    for version in ("1.0.0", "1.2.0", "2.0.0"):
        data = _tarball({"dist/demo.min.js": f"window.demo = '{version}';".encode(),
                         "LICENSE": b"MIT", "README.md": b"not kept"})
        path = root / "demo" / "-" / f"demo-{version}.tgz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        url = f"https://registry.example/demo/-/demo-{version}.tgz"
        documents[version] = {"dist": {"integrity": fetch.sri_sha512(data), "tarball": url}}
    (root / "demo" / "index.json").write_text(json.dumps({"versions": documents}))
    js, lic = b"window.demo = '1.0.0';", b"MIT"
    lock = tmp_path / "web_assets.lock"
    lock.write_text(textwrap.dedent(f"""\
        # a comment
        [demo]
        version\t1.0.0
        range\t1
        tarball\tdemo/-/demo-1.0.0.tgz
        integrity\t{documents['1.0.0']['dist']['integrity']}
        file\tdist/demo.min.js\t{hashlib.sha256(js).hexdigest()}\t{len(js)}
        file\tLICENSE\t{hashlib.sha256(lic).hexdigest()}\t{len(lic)}
    """))
    return root, lock


def test_integrity_is_npm_sri_sha512():
    assert fetch.sri_sha512(b"abc") == "sha512-" + base64.b64encode(
        hashlib.sha512(b"abc").digest()).decode()


def test_fetcher_installs_only_the_locked_files_and_then_downloads_nothing(registry, tmp_path):
    root, lock = registry
    dest = tmp_path / "web"
    url = root.as_uri() + "/"
    fetch.install(lock, dest, None, url)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) \
        == ["demo/LICENSE", "demo/dist/demo.min.js"]
    assert (dest / "demo" / "dist" / "demo.min.js").read_bytes() == b"window.demo = '1.0.0';"
    (dest / "demo" / "stale.js").write_text("left over")
    (root / "demo" / "-" / "demo-1.0.0.tgz").unlink()            # the registry is gone...
    package = fetch.read_lock(lock)["demo"]
    assert fetch.install_package(package, dest / "demo", url) == "already there"   # ...not needed
    assert not (dest / "demo" / "stale.js").exists()


def test_fetcher_refuses_a_tarball_whose_sha512_is_not_the_locked_one(registry, tmp_path):
    root, lock = registry
    (root / "demo" / "-" / "demo-1.0.0.tgz").write_bytes(
        _tarball({"dist/demo.min.js": b"window.demo = 'tampered';", "LICENSE": b"MIT"}))
    dest = tmp_path / "web"
    with pytest.raises(fetch.FetchError, match="refusing it") as caught:
        fetch.install(lock, dest, None, root.as_uri() + "/")
    assert "sha512-" in str(caught.value)
    assert not (dest / "demo" / "dist" / "demo.min.js").exists()


def test_fetcher_says_what_to_do_when_the_registry_cannot_be_reached(registry, tmp_path):
    _, lock = registry
    with socket.socket() as probe:                 # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(fetch.FetchError, match="could not download .*NPM_CONFIG_REGISTRY"):
        fetch.install(lock, tmp_path / "web", None, f"http://127.0.0.1:{port}/")
    assert fetch.main(["--lock-file", str(lock), "--dest", str(tmp_path / "web"),
                       "--package", "nope"]) == 1


def test_registry_comes_from_the_environment_then_npmrc(tmp_path):
    assert fetch.registry_url({}, tmp_path) == "https://registry.npmjs.org/"
    (tmp_path / ".npmrc").write_text("fund=false\nregistry = https://npm.mirror.example/repo\n")
    assert fetch.registry_url({}, tmp_path) == "https://npm.mirror.example/repo/"
    env = {"NPM_CONFIG_REGISTRY": "http://127.0.0.1:4873"}
    assert fetch.registry_url(env, tmp_path) == "http://127.0.0.1:4873/"
    assert fetch.registry_url({"npm_config_registry": "https://x.example/"}, tmp_path) \
        == "https://x.example/"


def test_relock_picks_the_newest_release_of_the_locked_major(registry, monkeypatch):
    root, lock = registry
    real_get = fetch._get
    monkeypatch.setattr(fetch, "_get", lambda url, what, accept=None: real_get(
        url + "/index.json" if url.endswith("/demo") else url, what, accept))
    fetch.relock(lock, root.as_uri() + "/")
    package = fetch.read_lock(lock)["demo"]
    assert (package.version, package.range) == ("1.2.0", "1")
    assert package.tarball == "demo/-/demo-1.2.0.tgz"
    assert [f.path for f in package.files] == ["dist/demo.min.js", "LICENSE"]
    with pytest.raises(ValueError, match="line 2"):
        fetch.parse_lock("[demo]\nfile\t../escape.js\t" + "0" * 64 + "\t1\n")


# --------------------------------------------------------------------- a stand-in course

def _stand_in(root: Path) -> None:
    """A course of two chapters, a lab and a cheat sheet with one link to an anchor nobody wrote."""
    (root / "notebooks").mkdir(parents=True)
    (root / "labs" / "01_demo").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "README.md").write_text("# Demo course\n\nA course.\n\n## Chapters\n\n"
                                    "| # | Notebook | Services | Status |\n|---|---|---|---|\n"
                                    "| 01 | `notebooks/01_demo.ipynb` | Athena | ready |\n")
    (root / "docs" / "curriculum_ids.yml").write_text(
        "# --- ATH: Amazon Athena (notebooks: demo)\nATH-1:\n  claim: \"Serverless SQL.\"\n")
    one = v4.new_notebook(cells=[
        v4.new_markdown_cell("# 01 · Demo: a chapter\n\n```mermaid\nflowchart LR\n  a --> b\n```",
                             id="c1"),
        v4.new_markdown_cell('<a id="claim-ATH-1"></a>\n\n## 1. Serverless\n\n'
                             "[next chapter](02_more.ipynb), [code](../localaws/x.py)", id="c2"),
        v4.new_code_cell("print(1)", id="c3", metadata={"tags": ["claim-ATH-1"]},
                         outputs=[v4.new_output("stream", name="stdout", text="1\n")])])
    two = v4.new_notebook(cells=[
        v4.new_markdown_cell("# 02 · More\n\n[back](01_demo.ipynb#claim-ATH-1)", id="d1")])
    nbformat.write(one, root / "notebooks" / "01_demo.ipynb")
    nbformat.write(two, root / "notebooks" / "02_more.ipynb")
    (root / "labs" / "README.md").write_text("# Labs\n\n[Lab 01](01_demo/README.md)\n")
    # Two faults the browser checks must see: a picture from another host, a diagram that
    # does not parse.
    (root / "labs" / "01_demo" / "README.md").write_text(
        '# Lab 01 — Demo: do it\n\n<img alt="remote" src="https://example.invalid/logo.png">\n')
    nbformat.write(v4.new_notebook(cells=[v4.new_markdown_cell(
        "# Lab 01 — Demo\n\n```mermaid\nflowchart LR\n  a -->\n```", id="l1")]),
        root / "labs" / "01_demo" / "01_demo.ipynb")
    (root / "docs" / "cheat_sheet.md").write_text(
        "# Cheat sheet\n\n| Id | Chapter |\n|---|---|\n"
        "| [ATH-1](../notebooks/01_demo.ipynb#claim-ATH-1) | 01 |\n"
        "| [ATH-2](../notebooks/01_demo.ipynb#claim-ATH-2) | nobody wrote this anchor |\n")


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    root = tmp_path_factory.mktemp("standin")
    _stand_in(root)
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stand_in_builds_offline_and_the_same_bytes_twice(stand_in, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"the build opened a network connection: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    first = build.build(stand_in, tmp_path / "a")
    build.build(stand_in, tmp_path / "b")
    site = _files(tmp_path / "a")
    assert site == _files(tmp_path / "b")
    assert {p.output for p in first.pages} == {
        "index.html", "notebooks/01_demo.html", "notebooks/02_more.html", "labs/README.html",
        "labs/01_demo/README.html", "labs/01_demo/01_demo.html", "docs/cheat_sheet.html"}
    assert {"static/mermaid.min.js", "static/book.js", "static/book.css",
            "static/lab/index.css"} <= set(site)
    assert first.dropped == {"notebooks/01_demo.html": ["../localaws/x.py"]}
    chapter = site["notebooks/01_demo.html"].decode()
    assert '<a id="claim-ATH-1"></a>' in chapter
    assert '<a href="02_more.html">next chapter</a>' in chapter
    assert ", code</p>" in chapter and "x.py" not in chapter     # no link, the text stays
    index = site["index.html"].decode()
    assert "Amazon Athena" in index and 'href="notebooks/01_demo.html#claim-ATH-1"' in index
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", chapter + index)
    assert 'src="https://example.invalid/logo.png"' in site["labs/01_demo/README.html"].decode()


def test_build_refuses_to_replace_a_folder_it_did_not_build(stand_in, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(build.BuildError, match="refusing to replace"):
        build.build(stand_in, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------- in the browser

@pytest.fixture(scope="module")
def browser():
    if REASON:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no browser: {REASON}")
        pytest.skip(f"no browser for the book's page tests: {REASON}")
    with open_browser() as b:
        yield b


SNAPSHOT = """() => ({
    ready: document.body.dataset.bookReady,
    blocks: document.querySelectorAll('.jp-Mermaid > pre.mermaid').length,
    svgs: document.querySelectorAll('.jp-Mermaid > pre.mermaid > svg').length,
    ids: [...document.querySelectorAll('[id]')].map(e => e.id)
          .concat([...document.querySelectorAll('a[name]')].map(e => e.name)),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    nav: document.querySelectorAll('nav.book-nav a').length,
})"""


class Tab:
    """One page of the site in a browser tab, recording console and page errors and
    aborting (and recording) every request to a host other than the site's."""

    def __init__(self, context, base: str, path: str):
        self.path, self.errors, self.foreign = path, [], []
        self.tab = context.new_page()
        self.tab.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.tab.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.tab.route("**/*", lambda route: self._only(route, base))
        self.response = self.tab.goto(base + path, wait_until="commit")

    def _only(self, route, base: str) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def finish(self) -> dict:
        """Wait until book.js has drawn the diagrams; then what the page shows."""
        self.tab.wait_for_selector("body[data-book-ready]", state="attached", timeout=120_000)
        found = {"status": self.response.status, "errors": self.errors,
                 "foreign": self.foreign, **self.tab.evaluate(SNAPSHOT)}
        self.tab.close()
        return found


def visit_all(browser, server: serve.BookServer, pages: list[build.Page],
              at_once: int = 3) -> dict[str, dict]:
    """Open every page, ``at_once`` tabs loading side by side; per page: HTTP status, errors,
    requests to other hosts, diagrams (``pre.mermaid`` blocks and the SVGs drawn in them),
    element ids and link targets."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    seen, open_tabs = {}, []
    try:
        for page in pages:
            open_tabs.append(Tab(context, server.url, page.output))
            if len(open_tabs) == at_once:
                tab = open_tabs.pop(0)
                seen[tab.path] = tab.finish()
        for tab in open_tabs:
            seen[tab.path] = tab.finish()
    finally:
        context.close()
    return seen


def broken_links(seen: dict[str, dict], base: str) -> list[str]:
    """Links of the site's pages that miss: no such page, or no element with the ``#id``."""
    broken = []
    for page, found in seen.items():
        for link in found["links"]:
            if not link.startswith(base):
                continue                                  # another host: not the site's to check
            target = urlsplit(link)
            path = target.path[len(urlsplit(base).path):]
            if path not in seen:
                broken.append(f"{page} -> {link}: no such page")
            elif target.fragment and unquote(target.fragment) not in seen[path]["ids"] \
                    and target.fragment not in seen[path]["ids"]:
                broken.append(f"{page} -> {path}#{target.fragment}: no element has that id")
    return sorted(set(broken))


def source_diagrams(root: Path, page: build.Page) -> int:
    """The ```mermaid blocks in a page's source (markdown cells of a notebook, or the file)."""
    if page.kind == "index":
        return 0
    path = root / page.source
    if path.suffix == ".md":
        return len(FENCE.findall(path.read_text(encoding="utf-8")))
    nb = nbformat.read(path, as_version=4)
    return sum(len(FENCE.findall(c.source)) for c in nb.cells if c.cell_type == "markdown")


def test_the_browser_checks_see_a_broken_anchor_a_remote_request_and_a_bad_diagram(
        browser, stand_in, tmp_path):
    report = build.build(stand_in, tmp_path / "site")
    server = serve.start(tmp_path / "site")
    try:
        seen = visit_all(browser, server, report.pages)
    finally:
        server.stop()
    assert broken_links(seen, server.url) == [
        "docs/cheat_sheet.html -> notebooks/01_demo.html#claim-ATH-2: no element has that id"]
    chapter = seen["notebooks/01_demo.html"]
    assert (chapter["blocks"], chapter["svgs"], chapter["ready"]) == (1, 1, "true")
    assert chapter["errors"] == []
    lab = seen["labs/01_demo/README.html"]
    assert lab["foreign"] == ["https://example.invalid/logo.png"]      # asked for, and refused
    solution = seen["labs/01_demo/01_demo.html"]
    assert (solution["blocks"], solution["svgs"], solution["ready"]) == (1, 0, "error")
    assert any("book:" in error for error in solution["errors"])
    clean = set(seen) - {"labs/01_demo/README.html", "labs/01_demo/01_demo.html"}
    assert all(seen[p]["foreign"] == [] and seen[p]["errors"] == [] for p in clean)
    assert all(found["status"] == 200 for found in seen.values())


# --------------------------------------------------------------------- the real course

PAGES = build.plan(ROOT)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The real course, built once into a temporary folder and served on 127.0.0.1."""
    out = tmp_path_factory.mktemp("book") / "html"
    report = build.build(ROOT, out)
    server = serve.start(out)
    try:
        yield report, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def seen(site, browser):
    report, server = site
    return visit_all(browser, server, report.pages)


def test_the_site_has_a_page_for_every_chapter_lab_and_study_page(site):
    report, _ = site
    outputs = {p.output for p in report.pages}
    expected = {"index.html", "labs/README.html"}
    expected |= {f"notebooks/{p.stem}.html" for p in ROOT.glob("notebooks/[0-9][0-9]_*.ipynb")}
    for lab in ROOT.glob("labs/[0-9][0-9]_*/"):
        expected |= {f"labs/{lab.name}/README.html", f"labs/{lab.name}/{lab.name}.html"}
    for study in ("cheat_sheet", "changed_since_2023", "exam_questions"):
        if (ROOT / "docs" / f"{study}.md").exists():
            expected.add(f"docs/{study}.html")
    assert outputs == expected
    assert all((report.out / output).is_file() for output in outputs)
    assert report.warnings == []


@pytest.mark.parametrize("page", PAGES, ids=[p.output for p in PAGES])
def test_page_loads_cleanly_offline_and_draws_its_diagrams(seen, page):
    found = seen[page.output]
    assert found["status"] == 200
    assert found["errors"] == [], f"console or page errors on {page.output}"
    assert found["foreign"] == [], f"{page.output} requested other hosts"
    assert found["ready"] == "true"
    diagrams = source_diagrams(ROOT, page)
    assert found["blocks"] == diagrams and found["svgs"] == diagrams
    assert found["nav"] == seen["index.html"]["nav"]          # the same navigation everywhere


def test_every_internal_link_lands_on_a_page_and_an_id(seen, site):
    _, server = site
    assert broken_links(seen, server.url) == []
    claims = [link for link in seen["index.html"]["links"] if "#claim-" in link]
    assert len(claims) > 50                                  # the index's "by service" links


def test_claim_anchors_survive_and_the_index_names_every_service(seen):
    for page in PAGES:
        if page.kind == "chapter":
            anchors = {a for cell in page.content.cells if cell.cell_type == "markdown"
                       for a in build.CLAIM_ANCHOR.findall(cell.source)}
            assert anchors <= set(seen[page.output]["ids"]), page.output
    text = (ROOT / "docs" / "curriculum_ids.yml").read_text(encoding="utf-8")
    services = build.SERVICE_LINE.findall(text)
    index_ids = seen["index.html"]["ids"]
    assert services and "services" in index_ids
    links = " ".join(seen["index.html"]["links"])
    for prefix, _ in services:
        assert f"#claim-{prefix}-" in links, prefix
