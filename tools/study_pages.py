"""Study pages: the exam cheat-sheet, the "Changed since 2023" index and the exam questions.

    .venv/bin/python tools/study_pages.py           # (re)write the three pages under docs/
    .venv/bin/python tools/study_pages.py --check   # exit 1, naming the pages that are out of date

The chapters (``notebooks/NN_*.ipynb``) and labs (``labs/NN_*/*.ipynb``) are the
source; these pages collect what a learner revises from before an exam, and are
generated, never edited by hand:

``docs/cheat_sheet.md``
    Every curriculum id of ``docs/curriculum_ids.yml``, grouped by service in
    curriculum order, one row each: the id, linked to the cell that proves it
    (the ``claim-ID`` anchor of docs/chapter_conventions.md); its kind (Show,
    Explain, Correct); the one-line fact the chapter's own exam cheat-sheet row
    gives (``| [ATH-9](#claim-ATH-9) | the point | ... |``), or, where no
    chapter has a row for the id, the 2023 claim of the curriculum, marked so;
    the chapters that tag it; and a link to its "Changed since 2023" box(es).

``docs/changed_since_2023.md``
    Every ``**Changed since 2023 (ID).**`` box of the chapters and labs: the
    id(s), the chapter, a one-line summary taken from the box (its title when
    it has one, else its first sentence, plus the next one when the first only
    says what the notes said), the box's sources, and a link to the place.

``docs/exam_questions.md``
    Every chapter's exam questions, with the choices and, folded away in a
    ``<details>`` block so a learner can try first, the answer and why each
    choice is right or wrong. The questions are not parsed from text: the cell
    that builds them is *executed* (only that cell, in a fresh namespace, and
    without its bare expression statements such as ``show_quiz(...)``), and
    the chapter's own answer key, the letters of its ``check_quiz(questions,
    [...])`` call, is checked with that same ``check_quiz``. A wrong key stops
    the generation.

Where a link would land nowhere (an id with no tagged cell, or a notebook
without the ``<a id="claim-ID"></a>`` anchor) or a key is wrong, generation
raises :class:`StudyPagesError` rather than write a page that lies. The same
input gives the same bytes: everything is in curriculum or notebook order,
and the pages hold no dates.

Links are relative to ``docs/`` (``../notebooks/01_athena_basics.ipynb#claim-ATH-1``),
the form GitHub follows; the book builder (``make book``) rewrites ``.ipynb``
links to its own pages.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:            # the questions cells import localaws.grading
    sys.path.insert(0, str(ROOT))

PAGES = ("docs/cheat_sheet.md", "docs/changed_since_2023.md", "docs/exam_questions.md")
NOTEBOOK_DIRS = ("notebooks", "labs")    # chapters first, then labs: the course order

CLAIM_TAG = re.compile(r"^claim-([A-Z]+-\d+)$")
ANCHOR = re.compile(r'<a id="claim-([A-Z]+-\d+)"></a>')
GROUP_COMMENT = re.compile(r"^# --- ([A-Z]+): (.+?)(?: \(.*\))?\s*$", re.MULTILINE)
# A row of a chapter's exam cheat-sheet: | [ATH-9](#claim-ATH-9) | the point | where |
CHEAT_ROW = re.compile(r"^\|\s*\[(?P<id>[A-Z]+-\d+)\]\([^)\s]*#claim-(?P=id)\)\s*\|")
TABLE_SEPARATOR = re.compile(r"(?<!\\)\|")
# The heading of a box: **Changed since 2023 (RS-15, RS-25).**  or  **Changed since 2023 (OS-1): a title.**
BOX_HEADING = re.compile(r"\*\*Changed since 2023 \((?P<ids>[A-Z]+-\d+(?:\s*,\s*[A-Z]+-\d+)*)\)"
                         r"(?P<title>[^*]*)\*\*")
MD_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<url>[^)\s]+)\)")
BARE_URL = re.compile(r"https?://[^\s<>()\]]+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*\"(`\[])")
OLD_CLAIM_OPENERS = ("The notes", "Older material", "Older notes")


class StudyPagesError(Exception):
    """A page cannot be generated truthfully: a link would land nowhere, or a key is wrong."""


# ----------------------------------------------------------------------------- reading the course
@dataclass
class Chapter:
    """One notebook of the course (a chapter or a lab), read once."""

    path: Path
    rel: str                                    # "notebooks/01_athena_basics.ipynb", from the repo root
    title: str                                  # its first heading, "01 · Athena basics: SQL on files in S3"
    cells: list
    anchors: set[str] = field(default_factory=set)              # ids with <a id="claim-ID"></a>
    tagged: dict[str, list[int]] = field(default_factory=dict)  # id -> indices of its cells

    @property
    def label(self) -> str:
        """Short name for tables: ``01`` for a chapter, ``lab 01`` for a lab."""
        number = self.path.name[:2]
        return f"lab {number}" if self.rel.startswith("labs/") else number

    @property
    def is_lab(self) -> bool:
        return self.rel.startswith("labs/")


def course_notebooks(root: Path = ROOT) -> list[Path]:
    """The committed chapters, then the lab solutions (no student copies, no checkpoints)."""
    found = []
    for folder in NOTEBOOK_DIRS:
        for path in sorted((root / folder).rglob("*.ipynb")):
            parts = path.relative_to(root).parts
            if "student" not in parts and ".ipynb_checkpoints" not in parts:
                found.append(path)
    return found


def read_chapter(path: Path, root: Path = ROOT) -> Chapter:
    nb = nbformat.read(str(path), as_version=4)
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    heading = next((line for line in first.splitlines() if line.startswith("# ")), f"# {path.stem}")
    chapter = Chapter(path=path, rel=path.relative_to(root).as_posix(), title=heading[2:].strip(),
                      cells=nb.cells)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            chapter.anchors.update(ANCHOR.findall(cell.source))
        for tag in cell.metadata.get("tags", []):
            m = CLAIM_TAG.match(tag)
            if m:
                chapter.tagged.setdefault(m.group(1), []).append(index)
    return chapter


@dataclass
class Course:
    root: Path
    ids: dict                                   # docs/curriculum_ids.yml, in curriculum order
    groups: dict[str, str]                      # "ATH" -> "Amazon Athena", in curriculum order
    chapters: list[Chapter]
    places: dict[str, list[tuple[Chapter, list[int]]]]   # id -> (chapter, its cells) in course order


def load_course(root: Path = ROOT) -> Course:
    """The curriculum, the claims map (tags and docs/claims.yml) and every notebook."""
    ids_text = (root / "docs" / "curriculum_ids.yml").read_text(encoding="utf-8")
    ids = yaml.safe_load(ids_text) or {}
    groups = {prefix: name for prefix, name in GROUP_COMMENT.findall(ids_text)}
    for claim_id in ids:
        groups.setdefault(prefix_of(claim_id), prefix_of(claim_id))
    chapters = [read_chapter(path, root) for path in course_notebooks(root)]
    by_rel = {c.rel: c for c in chapters}

    cells: dict[str, dict[str, set[int]]] = {}
    for chapter in chapters:
        for claim_id, indices in chapter.tagged.items():
            cells.setdefault(claim_id, {}).setdefault(chapter.rel, set()).update(indices)
    claims_file = root / "docs" / "claims.yml"
    claims = (yaml.safe_load(claims_file.read_text(encoding="utf-8")) if claims_file.is_file() else None) or {}
    for claim_id, entries in (claims.items() if isinstance(claims, dict) else []):
        for entry in entries if isinstance(entries, list) else []:
            chapter = by_rel.get(str(entry.get("notebook"))) if isinstance(entry, dict) else None
            if chapter is None:
                continue                        # tests/test_claims.py reports mappings that point nowhere
            for index, cell in enumerate(chapter.cells):
                if cell.get("id") == entry.get("cell") or entry.get("cell") in cell.metadata.get("tags", []):
                    cells.setdefault(claim_id, {}).setdefault(chapter.rel, set()).add(index)
    places = {claim_id: [(c, sorted(cells[claim_id][c.rel])) for c in chapters if c.rel in cells[claim_id]]
              for claim_id in cells}
    return Course(root=root, ids=ids, groups=groups, chapters=chapters, places=places)


def prefix_of(claim_id: str) -> str:
    return claim_id.rsplit("-", 1)[0]


def kinds_of(course: Course, claim_id: str) -> list[str]:
    return list(course.ids[claim_id].get("kind") or [])


# ----------------------------------------------------------------------------- links
def page_link(course: Course, target: Path, fragment: str = "") -> str:
    """A link from a page in docs/ to ``target`` (a path), GitHub's relative form."""
    rel = Path(os.path.relpath(target, course.root / "docs")).as_posix()
    return f"{rel}#{fragment}" if fragment else rel


def relink(course: Course, chapter: Chapter, markdown: str) -> str:
    """Rewrite the relative links of text taken from ``chapter`` so they work from docs/."""
    def fix(m: re.Match) -> str:
        text, url = m.group("text"), m.group("url")
        if re.match(r"^[a-z][a-z0-9+.-]*:", url) or url.startswith("/"):
            return m.group(0)
        path, _, fragment = url.partition("#")
        target = chapter.path if not path else (chapter.path.parent / path).resolve()
        return f"[{text}]({page_link(course, target, fragment)})"
    return MD_LINK.sub(fix, markdown)


def home_of(course: Course, claim_id: str) -> tuple[Chapter, list[int]]:
    """The place the cheat-sheet links an id to: the cell that proves it.

    The first notebook (course order) with a tagged *code* cell when the id's
    kind includes Show (a chapter may mention a Show claim in prose before the
    chapter that runs it), else the first notebook that tags it.
    """
    places = course.places.get(claim_id)
    if not places:
        raise StudyPagesError(f"{claim_id}: no cell is tagged claim-{claim_id} (nor mapped in "
                              "docs/claims.yml): the cheat-sheet has nothing to link to")
    if "Show" in kinds_of(course, claim_id):
        for chapter, indices in places:
            if any(chapter.cells[i].cell_type == "code" for i in indices):
                return chapter, indices
    return places[0]


def anchor_link(course: Course, chapter: Chapter, claim_id: str) -> str:
    """The link to ``claim_id``'s anchor in ``chapter``; raises when the anchor is missing."""
    if claim_id not in chapter.anchors:
        raise StudyPagesError(f'{chapter.rel}: tags claim-{claim_id} but has no <a id="claim-{claim_id}"></a>: '
                              "a link to it would land nowhere (docs/chapter_conventions.md, Claims)")
    return page_link(course, chapter.path, f"claim-{claim_id}")


# ----------------------------------------------------------------------------- the cheat-sheet
def cheat_sheet_rows(chapter: Chapter) -> dict[str, str]:
    """id -> "the point" column of the chapter's own exam cheat-sheet rows (first row wins)."""
    rows: dict[str, str] = {}
    for cell in chapter.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            m = CHEAT_ROW.match(line.strip())
            if m:
                columns = [c.strip() for c in TABLE_SEPARATOR.split(line.strip())[1:-1]]
                if len(columns) >= 2 and columns[1]:
                    rows.setdefault(m.group("id"), columns[1])
    return rows


@dataclass
class CheatEntry:
    claim_id: str
    kinds: list[str]
    link: str                   # to the proving cell's anchor
    fact: str                   # markdown, links already relative to docs/
    fact_from: str              # the chapter's rel, or "" when the curriculum's 2023 claim stands in
    chapters: list[tuple[str, str]]   # (label, link) of every notebook that tags the id


def cheat_sheet_entries(course: Course) -> list[CheatEntry]:
    rows = {c.rel: cheat_sheet_rows(c) for c in course.chapters}
    entries = []
    for claim_id in course.ids:
        home, _ = home_of(course, claim_id)
        link = anchor_link(course, home, claim_id)
        chapters = [(c.label, anchor_link(course, c, claim_id)) for c, _ in course.places[claim_id]]
        # The home chapter's row first, then any other chapter's row, in course order.
        sources = [home] + [c for c in course.chapters if c is not home]
        fact, fact_from = "", ""
        for chapter in sources:
            if claim_id in rows[chapter.rel]:
                fact, fact_from = relink(course, chapter, rows[chapter.rel][claim_id]), chapter.rel
                break
        if not fact:
            fact = "*2023 note:* " + escape_cell(course.ids[claim_id]["claim"].strip())
        entries.append(CheatEntry(claim_id, kinds_of(course, claim_id), link, fact, fact_from, chapters))
    return entries


def escape_cell(text: str) -> str:
    """Plain text made safe for a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_cheat_sheet(course: Course, entries: list[CheatEntry], boxes: list[Box]) -> str:
    boxed = {claim_id for box in boxes for claim_id in box.ids}
    lines = [
        "# Exam cheat-sheet",
        "",
        "<!-- Generated by tools/study_pages.py from the chapters; do not edit by hand. -->",
        "",
        f"Every curriculum id ({len(entries)}), grouped by service in curriculum order, one row each.",
        "**Id** links to the cell that proves it; **Kind** is what the course owes the claim "
        "(*Show*: a cell runs it, *Explain*: the chapter explains it, *Correct*: a \"Changed since 2023\" "
        "box corrects the 2023 notes); **The point** is the chapter's own cheat-sheet row "
        "(\"*2023 note:*\" where no chapter has a row: the claim as the notes gave it); "
        "**Chapters** are every notebook that tags the id; **Changed** links to the "
        "[Changed since 2023](changed_since_2023.md) index.",
        "",
        "See also: [exam-style questions](exam_questions.md).",
    ]
    for prefix, name in course.groups.items():
        group = [e for e in entries if prefix_of(e.claim_id) == prefix]
        if not group:
            continue
        lines += ["", f"## {prefix} · {name}", "",
                  "| Id | Kind | The point | Chapters | Changed |",
                  "|---|---|---|---|---|"]
        for e in group:
            chapters = ", ".join(f"[{label}]({link})" for label, link in e.chapters)
            changed = f"[box](changed_since_2023.md#changed-{e.claim_id})" if e.claim_id in boxed else ""
            lines.append(f"| [{e.claim_id}]({e.link}) | {', '.join(e.kinds)} | {e.fact} | {chapters} | {changed} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- Changed since 2023
@dataclass
class Box:
    """One "Changed since 2023" box: a blockquote (or alert div) in a markdown cell."""

    chapter: Chapter
    cell: int
    ids: tuple[str, ...]
    title: str                  # the text inside the bold heading after the ids, often empty
    body: str                   # the box's text after the heading, quote marks removed
    text: str                   # the whole box, quote marks removed

    @property
    def summary(self) -> str:
        """One line: the box's title, else its first sentence (and the next when the first
        only restates the notes)."""
        if self.title:
            return self.title
        paragraph = re.split(r"\n\s*\n", self.body.strip(), maxsplit=1)[0]
        sentences = SENTENCE_END.split(" ".join(paragraph.split()))
        summary = sentences[0]
        if summary.startswith(OLD_CLAIM_OPENERS) and len(sentences) > 1:
            summary += " " + sentences[1]
        return summary

    @property
    def sources(self) -> list[tuple[str, str]]:
        """(text, url) of every web link in the box, in order, each URL once."""
        found, seen = [], set()
        spans = []
        for m in MD_LINK.finditer(self.text):
            if m.group("url").startswith(("http://", "https://")):
                spans.append((m.start(), m.group("text"), m.group("url")))
        bare_text = MD_LINK.sub(lambda m: " " * len(m.group(0)), self.text)
        for m in BARE_URL.finditer(bare_text):
            url = m.group(0).rstrip(".,;:")
            spans.append((m.start(), url.split("://", 1)[1].rstrip("/"), url))
        for _, text, url in sorted(spans):
            if url not in seen:
                seen.add(url)
                found.append((text, url))
        return found


def find_boxes(chapter: Chapter) -> list[Box]:
    """Every "Changed since 2023 (ID...)" box in the markdown cells of ``chapter``."""
    boxes = []
    for index, cell in enumerate(chapter.cells):
        if cell.cell_type != "markdown" or "Changed since 2023" not in cell.source:
            continue
        lines = cell.source.splitlines()
        for number, line in enumerate(lines):
            heading = BOX_HEADING.search(line)
            if not heading:
                continue
            if line.lstrip().startswith(">"):       # a blockquote: its contiguous '>' lines
                start = end = number
                while start > 0 and lines[start - 1].lstrip().startswith(">"):
                    start -= 1
                while end + 1 < len(lines) and lines[end + 1].lstrip().startswith(">"):
                    end += 1
                block = [re.sub(r"^\s*>\s?", "", l) for l in lines[start:end + 1]]
            else:                                   # e.g. <div class="alert">: up to </div> or a heading
                end = number
                while end + 1 < len(lines) and not lines[end + 1].strip().startswith(("</div>", "#")):
                    end += 1
                block = lines[number:end + 1]
            text = "\n".join(block)
            after = text[text.index(heading.group(0)) + len(heading.group(0)):]
            ids = tuple(i.strip() for i in heading.group("ids").split(","))
            title = heading.group("title").lstrip(":.").strip()
            boxes.append(Box(chapter, index, ids, title, after, text))
    return boxes


def course_boxes(course: Course) -> list[Box]:
    """All boxes, in course order (chapters, then labs; cells in order)."""
    return [box for chapter in course.chapters for box in find_boxes(chapter)]


def box_place(course: Course, box: Box) -> tuple[str, bool]:
    """(link, anchored): the first of the box's ids with a claim anchor in its notebook; else
    the notebook itself (``anchored`` False: the box has no anchor to land on)."""
    for claim_id in box.ids:
        if claim_id in box.chapter.anchors:
            return page_link(course, box.chapter.path, f"claim-{claim_id}"), True
    return page_link(course, box.chapter.path), False


def curriculum_order(course: Course, box: Box) -> tuple[int, int, int]:
    order = {claim_id: n for n, claim_id in enumerate(course.ids)}
    return (min(order.get(i, len(order)) for i in box.ids), course.chapters.index(box.chapter), box.cell)


def render_changed(course: Course, boxes: list[Box]) -> str:
    lines = [
        "# Changed since 2023",
        "",
        "<!-- Generated by tools/study_pages.py from the chapters; do not edit by hand. -->",
        "",
        f"The source notes of this course date from mid-2023. Where AWS changed since, a chapter has a "
        f"\"Changed since 2023\" box that states what is true today and cites the AWS page it was checked "
        f"against. This index lists all {len(boxes)} of them, in curriculum order; **Where** opens the "
        "notebook at the claim's anchor. Ids of kind *Correct* are those the curriculum knows to be "
        "outdated; a box may also update a *Show* claim.",
        "",
        "See also: [exam cheat-sheet](cheat_sheet.md).",
        "",
        "| Id | Where | What changed | Sources |",
        "|---|---|---|---|",
    ]
    anchored: set[str] = set()
    for box in sorted(boxes, key=lambda b: curriculum_order(course, b)):
        anchors = "".join(f'<a id="changed-{i}"></a>' for i in box.ids if i not in anchored)
        anchored.update(box.ids)
        link, _ = box_place(course, box)
        where = f"[{box.chapter.label} · {escape_cell(short_title(box.chapter))}]({link})"
        sources = ", ".join(f"[{escape_cell(text)}]({url})" for text, url in box.sources)
        summary = relink(course, box.chapter, escape_cell(box.summary))
        lines.append(f"| {anchors}{', '.join(box.ids)} | {where} | {summary} | {sources} |")
    return "\n".join(lines) + "\n"


def short_title(chapter: Chapter) -> str:
    """The chapter's title without its number: ``Athena basics: SQL on files in S3``."""
    return re.sub(r"^(Lab\s+)?\d+\s*[·—-]\s*", "", chapter.title)


# ----------------------------------------------------------------------------- exam questions
@dataclass
class Quiz:
    chapter: Chapter
    cell: int                   # the cell that builds the questions
    check_cell: int             # the cell with check_quiz(questions, [...])
    questions: list             # localaws.grading.Question objects, as the cell built them
    letters: list[str]          # the chapter's answer key


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == name]


def _builds_questions(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "questions"
                                                  for t in n.targets) and _calls(n.value, "Question")
               for n in ast.walk(tree))


def find_quizzes(chapter: Chapter) -> list[Quiz]:
    """Execute each questions cell of ``chapter`` and check its key with ``check_quiz``.

    A questions cell assigns ``questions = [Question(...), ...]``. Only that
    cell runs, in a fresh namespace, without its bare expression statements
    (``show_quiz(questions)``, ``print()``, ``check_quiz(...)``): its imports
    and assignments build the questions. The key is the letter list of the
    first ``check_quiz(questions, [...])`` call in that cell or a later code
    cell, and it is checked by the ``check_quiz`` the cell imported.
    """
    parsed = []
    for index, cell in enumerate(chapter.cells):
        if cell.cell_type == "code" and ("Question(" in cell.source or "check_quiz" in cell.source):
            try:
                parsed.append((index, ast.parse(cell.source)))
            except SyntaxError as exc:
                raise StudyPagesError(f"{chapter.rel}: cell {index} does not parse: {exc}") from None
    quizzes = []
    for position, (index, tree) in enumerate(parsed):
        if not _builds_questions(tree):
            continue
        key_call, check_cell = None, None
        for later_index, later_tree in parsed[position:]:
            if later_index != index and _builds_questions(later_tree):
                break
            calls = _calls(later_tree, "check_quiz")
            if calls:
                key_call, check_cell = calls[0], later_index
                break
        if key_call is None or len(key_call.args) != 2:
            raise StudyPagesError(f"{chapter.rel}: cell {index} builds questions but no check_quiz(questions, "
                                  "[...]) call follows it: the answer key cannot be checked")
        try:
            letters = ast.literal_eval(key_call.args[1])
        except ValueError:
            raise StudyPagesError(f"{chapter.rel}: cell {check_cell}: the answers of check_quiz must be a "
                                  "literal list of letters") from None
        namespace = run_questions_cell(chapter, index, tree)
        questions = namespace.get("questions")
        checker = namespace.get("check_quiz")
        if checker is None:
            from localaws.grading import check_quiz as checker
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                checker(questions, list(letters))
        except AssertionError as exc:        # LabCheckFailed is an AssertionError
            raise StudyPagesError(f"{chapter.rel}: cell {check_cell}: the answer key {list(letters)} fails "
                                  f"check_quiz: {exc}") from None
        quizzes.append(Quiz(chapter, index, check_cell, list(questions), [str(x).strip().upper() for x in letters]))
    return quizzes


def run_questions_cell(chapter: Chapter, index: int, tree: ast.Module) -> dict:
    """Run one questions cell's imports and assignments in a fresh namespace; return it."""
    body = [node for node in tree.body if not isinstance(node, ast.Expr)]
    module = ast.Module(body=body, type_ignores=[])
    namespace: dict = {"__name__": "study_pages_questions"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(module, f"{chapter.rel} cell {index}", "exec"), namespace)
    except Exception as exc:
        raise StudyPagesError(f"{chapter.rel}: cell {index}: building the questions failed: "
                              f"{type(exc).__name__}: {exc}") from None
    if not isinstance(namespace.get("questions"), list):
        raise StudyPagesError(f"{chapter.rel}: cell {index}: `questions` is not a list after the cell ran")
    return namespace


def course_quizzes(course: Course) -> list[Quiz]:
    return [quiz for chapter in course.chapters for quiz in find_quizzes(chapter)]


INLINE_CODE = re.compile(r"(`[^`]*`)")
WORD_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")   # customer_id stays as typed


def escape_text(text: str) -> str:
    """Question text (plain) as markdown: ``<x>``, stars and word-edge underscores shown as typed.

    Code spans are kept; an underscore inside a word (``customer_id``) needs no escape in GFM.
    """
    parts = INLINE_CODE.split(text)
    for n in range(0, len(parts), 2):               # even parts are outside code spans
        parts[n] = WORD_EDGE_UNDERSCORE.sub(r"\\_", parts[n].replace("<", "&lt;").replace(">", "&gt;")
                                            .replace("*", "\\*"))
    return " ".join("".join(parts).split())


def render_questions(course: Course, quizzes: list[Quiz]) -> str:
    chapters = []
    for quiz in quizzes:
        if quiz.chapter not in chapters:
            chapters.append(quiz.chapter)
    total = sum(len(q.questions) for q in quizzes)
    lines = [
        "# Exam-style questions",
        "",
        "<!-- Generated by tools/study_pages.py from the chapters; do not edit by hand. -->",
        "",
        f"All {total} exam-style questions of the course, from {describe(chapters)}, in course order. "
        "Choose, then open **Answer**: it gives the right choice and why each "
        "choice is right or wrong. Each key here is the chapter's own, checked with `check_quiz` "
        "when this page was generated; in the notebook, put your letters in the `check_quiz` call.",
        "",
        "See also: [exam cheat-sheet](cheat_sheet.md), [Changed since 2023](changed_since_2023.md).",
        "",
    ]
    for chapter in chapters:
        count = sum(len(q.questions) for q in quizzes if q.chapter is chapter)
        lines.append(f"- [{chapter.title}](#questions-{slug(chapter)}) ({count})")
    for chapter in chapters:
        lines += ["", f'<a id="questions-{slug(chapter)}"></a>', "", f"## {chapter.title}", "",
                  f"From [{chapter.rel}]({page_link(course, chapter.path)})."]
        number = 0
        for quiz in (q for q in quizzes if q.chapter is chapter):
            for question in quiz.questions:
                number += 1
                lines += ["", f"**Q{number}.** {escape_text(question.text)}", ""]
                lines += [f"- **{letter})** {escape_text(choice)}" for letter, choice in question.choices.items()]
                lines += ["", "<details>", "<summary>Answer</summary>", "",
                          f"**{question.answer})** {escape_text(question.why[question.answer])}", ""]
                lines += [f"- Not {letter}: {escape_text(question.why[letter])}"
                          for letter in question.choices if letter != question.answer]
                lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def describe(chapters: list[Chapter]) -> str:
    """``13 chapters`` or ``12 chapters and 2 labs``."""
    labs = sum(c.is_lab for c in chapters)
    text = f"{len(chapters) - labs} chapter{'s' * (len(chapters) - labs != 1)}"
    return text + (f" and {labs} lab{'s' * (labs != 1)}" if labs else "")


def slug(chapter: Chapter) -> str:
    return ("lab-" if chapter.is_lab else "chapter-") + chapter.path.name[:2]


# ----------------------------------------------------------------------------- the pages
@dataclass
class Report:
    """What a generation found: for the CLI's summary and the tests."""

    fallback_ids: list[str]
    boxes: list[Box]
    unanchored_boxes: list[Box]
    questions_per_chapter: dict[str, int]


def build_pages(root: Path = ROOT) -> tuple[dict[str, str], Report]:
    """The three pages (path from the repo root -> text) and a report; raises StudyPagesError."""
    course = load_course(root)
    entries = cheat_sheet_entries(course)
    boxes = course_boxes(course)
    unknown = sorted({i for box in boxes for i in box.ids} - set(course.ids))
    if unknown:
        raise StudyPagesError(f"a Changed since 2023 box names ids that are not in the curriculum: {unknown}")
    quizzes = course_quizzes(course)
    pages = {
        "docs/cheat_sheet.md": render_cheat_sheet(course, entries, boxes),
        "docs/changed_since_2023.md": render_changed(course, boxes),
        "docs/exam_questions.md": render_questions(course, quizzes),
    }
    per_chapter: dict[str, int] = {}
    for quiz in quizzes:
        per_chapter[quiz.chapter.rel] = per_chapter.get(quiz.chapter.rel, 0) + len(quiz.questions)
    report = Report(fallback_ids=[e.claim_id for e in entries if not e.fact_from], boxes=boxes,
                    unanchored_boxes=[b for b in boxes if not box_place(course, b)[1]],
                    questions_per_chapter=per_chapter)
    return pages, report


def stale_pages(root: Path = ROOT, pages: dict[str, str] | None = None) -> list[str]:
    """The pages whose committed text differs from what the chapters give now."""
    pages = pages if pages is not None else build_pages(root)[0]
    stale = []
    for rel, text in pages.items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(rel)
    return stale


def write_pages(root: Path = ROOT, pages: dict[str, str] | None = None) -> list[str]:
    """Write the pages that changed; return their paths."""
    pages = pages if pages is not None else build_pages(root)[0]
    written = stale_pages(root, pages)
    for rel in written:
        with open(root / rel, "w", encoding="utf-8", newline="\n") as f:
            f.write(pages[rel])
    return written


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    """The command line: write the pages (exit 0), or ``--check`` them (exit 1 when stale).

    Exit 2 when a page cannot be generated (:class:`StudyPagesError`, printed).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is out of date; write nothing")
    args = parser.parse_args(argv)
    try:
        pages, report = build_pages(root)
    except StudyPagesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_pages(root, pages)
        if stale:
            print("out of date (run .venv/bin/python tools/study_pages.py): " + ", ".join(stale), file=sys.stderr)
            return 1
        print("study pages up to date: " + ", ".join(PAGES))
        return 0
    written = write_pages(root, pages)
    print(("wrote " + ", ".join(written)) if written else "study pages already up to date")
    print(f"cheat-sheet: {len(report.fallback_ids)} id(s) use the curriculum's claim (no chapter row): "
          + (", ".join(report.fallback_ids) or "none"))
    print(f"Changed since 2023: {len(report.boxes)} boxes; without a claim anchor to land on: "
          + (", ".join(f"{b.chapter.rel} cell {b.cell} ({', '.join(b.ids)})" for b in report.unanchored_boxes)
             or "none"))
    print("questions: " + ", ".join(f"{rel}: {n}" for rel, n in report.questions_per_chapter.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
