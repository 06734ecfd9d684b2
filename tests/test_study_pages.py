"""The study pages (tools/study_pages.py): up to date, complete, every link lands, every key right.

``docs/cheat_sheet.md``, ``docs/changed_since_2023.md`` and
``docs/exam_questions.md`` are generated from the chapters. These tests
regenerate them in memory and compare with the committed files, check that
each of the 131 curriculum ids has exactly one cheat-sheet row whose link
lands on its anchor, that every link of the three pages lands, and that
every chapter's exam questions pass ``check_quiz`` with the chapter's own
letters. The second half builds a tiny course in ``tmp_path`` and shows the
generator refuses a wrong answer key, a missing anchor and an unmapped id.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

from localaws.grading import check_quiz
from test_claims import _anchors, curriculum_ids

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    spec = importlib.util.spec_from_file_location("study_pages", ROOT / "tools" / "study_pages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study_pages"] = module          # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


study_pages = _load_generator()

ROW_LINK = re.compile(r"^\| \[(?P<id>[A-Z]+-\d+)\]\((?P<target>[^)\s]+)\) \|", re.MULTILINE)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
HTML_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


@pytest.fixture(scope="module")
def generated():
    """The pages as the chapters give them now, and the generator's report (built once)."""
    return study_pages.build_pages(ROOT)


def link_problems(pages: dict[str, str], root: Path = ROOT) -> list[str]:
    """Every relative link of the ``pages`` (path under the repo -> text) that lands nowhere.

    A link to a sibling page is resolved against ``pages`` first, so pages
    built in memory are checked before they are written.
    """
    problems = []
    for page, text in pages.items():
        base = root / Path(page).parent
        for m in LINK.finditer(text):
            target = m.group("target")
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue
            path, _, fragment = target.partition("#")
            file = (base / path).resolve() if path else (root / page).resolve()
            rel = file.relative_to(root.resolve()).as_posix() if file.is_relative_to(root.resolve()) else None
            if rel in pages:
                if fragment and fragment not in HTML_ANCHOR.findall(pages[rel]):
                    problems.append(f"{page}: {target}: no such anchor in the page")
            elif not file.is_file():
                problems.append(f"{page}: {target}: no such file")
            elif fragment and file.suffix == ".ipynb":
                if fragment not in _anchors(nbformat.read(str(file), as_version=4)):
                    problems.append(f"{page}: {target}: no such anchor in the notebook")
            elif fragment and fragment not in HTML_ANCHOR.findall(file.read_text(encoding="utf-8")):
                problems.append(f"{page}: {target}: no such anchor in the page")
    return problems


# --------------------------------------------------------------------------
# The real pages.

def test_committed_pages_are_up_to_date(generated):
    pages, _ = generated
    assert sorted(pages) == sorted(study_pages.PAGES)
    stale = study_pages.stale_pages(ROOT, pages)
    assert not stale, f"out of date: {', '.join(stale)}; run .venv/bin/python tools/study_pages.py"


def test_every_id_has_one_cheat_sheet_row_linked_to_its_anchor(generated):
    pages, _ = generated
    rows = ROW_LINK.findall(pages["docs/cheat_sheet.md"])
    ids = [claim_id for claim_id, _ in rows]
    assert sorted(ids) == sorted(curriculum_ids()), "cheat-sheet ids differ from docs/curriculum_ids.yml"
    assert len(ids) == len(set(ids)) == 131
    for claim_id, target in rows:
        path, _, fragment = target.partition("#")
        assert fragment == f"claim-{claim_id}", target
        notebook = (ROOT / "docs" / path).resolve()
        assert fragment in _anchors(nbformat.read(str(notebook), as_version=4)), f"{target} lands nowhere"


def test_every_link_of_the_pages_lands(generated):
    pages, _ = generated
    problems = link_problems(pages)
    assert not problems, "\n".join(problems)


def test_every_chapters_questions_pass_check_quiz_with_its_letters():
    quizzes = {}
    for path in study_pages.course_notebooks(ROOT):
        chapter = study_pages.read_chapter(path, ROOT)
        found = study_pages.find_quizzes(chapter)
        if any(c.cell_type == "code" and "check_quiz(" in c.source for c in chapter.cells):
            assert found, f"{chapter.rel} calls check_quiz but no questions cell was found"
        for quiz in found:
            check_quiz(quiz.questions, quiz.letters)        # raises LabCheckFailed on a wrong key
            quizzes[chapter.rel] = quizzes.get(chapter.rel, 0) + len(quiz.questions)
    chapters = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(rel for rel in quizzes if rel.startswith("notebooks/")) == chapters, \
        "every chapter ends with exam questions (docs/chapter_conventions.md)"
    page = (ROOT / "docs" / "exam_questions.md").read_text(encoding="utf-8")
    assert page.count("<details>") == sum(quizzes.values())


def test_the_report_accounts_for_every_box(generated):
    pages, report = generated
    rows = [line for line in pages["docs/changed_since_2023.md"].splitlines()
            if line.startswith("| ") and not line.startswith("| Id ")]
    assert len(rows) == len(report.boxes) > 0
    boxed = {claim_id for box in report.boxes for claim_id in box.ids}
    marked = set(re.findall(r"changed_since_2023\.md#changed-([A-Z]+-\d+)", pages["docs/cheat_sheet.md"]))
    assert marked == boxed


# --------------------------------------------------------------------------
# The generator on a tiny course.

IDS_YML = """\
# --- ATH: Amazon Athena (notebooks: Athena basics)
ATH-1:
  kind: [Show]
  claim: "Serverless query service for data stored in S3 buckets."
  course: "Show."
ATH-3:
  kind: [Correct, Explain]
  claim: "Built on the Presto engine."
  course: "Correct."
"""

QUESTIONS = '''\
from localaws.grading import Question, check_quiz, show_quiz

questions = [
    Question("Where does Athena read data <from>?",
             {"A": "S3", "B": "An EBS volume"},
             "A",
             {"A": "External tables over S3 prefixes.", "B": "Athena has no volumes."}),
]
show_quiz(questions)
'''


def tiny_course(root: Path, *, letters: str = '"A"', anchor: bool = True) -> Path:
    """A course of one chapter: ATH-1 shown and in the cheat-sheet, ATH-3 only in a box, one question."""
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "docs" / "curriculum_ids.yml").write_text(IDS_YML, encoding="utf-8")
    (root / "docs" / "claims.yml").write_text("{}\n", encoding="utf-8")
    shown = nbformat.v4.new_code_cell("print(1 + 1)")
    shown.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    shown.metadata["tags"] = ["claim-ATH-1"]
    box = nbformat.v4.new_markdown_cell(
        '<a id="claim-ATH-3"></a>\n\n> **Changed since 2023 (ATH-3).** The notes say Presto. Engine v3 '
        "follows Trino.\n>\n> Source: [Engine v3](https://docs.aws.amazon.com/athena/latest/ug/engine-versions.html)")
    box.metadata["tags"] = ["claim-ATH-3"]
    cells = [nbformat.v4.new_markdown_cell("# 01 · Tiny chapter"),
             nbformat.v4.new_markdown_cell('<a id="claim-ATH-1"></a>\n\n## 1. Serverless' if anchor
                                           else "## 1. Serverless"),
             shown, box,
             nbformat.v4.new_markdown_cell("## Exam cheat-sheet\n\n| Id | The point | Where |\n|---|---|---|\n"
                                           "| [ATH-1](#claim-ATH-1) | No server: SQL on S3 | §1 |"),
             nbformat.v4.new_code_cell(QUESTIONS),
             nbformat.v4.new_code_cell(f"check_quiz(questions, [{letters}])")]
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    (root / "notebooks").mkdir(exist_ok=True)
    nbformat.write(nb, str(root / "notebooks" / "01_tiny.ipynb"))
    return root


def test_tiny_course_pages(tmp_path):
    pages, report = study_pages.build_pages(tiny_course(tmp_path))
    cheat = pages["docs/cheat_sheet.md"]
    assert "## ATH · Amazon Athena" in cheat
    assert ("| [ATH-1](../notebooks/01_tiny.ipynb#claim-ATH-1) | Show | No server: SQL on S3 | "
            "[01](../notebooks/01_tiny.ipynb#claim-ATH-1) |  |") in cheat
    assert ("| [ATH-3](../notebooks/01_tiny.ipynb#claim-ATH-3) | Correct, Explain | *2023 note:* Built on the "
            "Presto engine. | [01](../notebooks/01_tiny.ipynb#claim-ATH-3) | "
            "[box](changed_since_2023.md#changed-ATH-3) |") in cheat
    assert report.fallback_ids == ["ATH-3"]
    assert ('| <a id="changed-ATH-3"></a>ATH-3 | [01 · Tiny chapter](../notebooks/01_tiny.ipynb#claim-ATH-3) | '
            "The notes say Presto. Engine v3 follows Trino. | "
            "[Engine v3](https://docs.aws.amazon.com/athena/latest/ug/engine-versions.html) |"
            ) in pages["docs/changed_since_2023.md"]
    questions = pages["docs/exam_questions.md"]
    assert "**Q1.** Where does Athena read data &lt;from&gt;?" in questions
    assert "- **A)** S3\n- **B)** An EBS volume" in questions
    assert "<summary>Answer</summary>\n\n**A)** External tables over S3 prefixes.\n\n- Not B: Athena has no volumes." \
        in questions
    assert report.questions_per_chapter == {"notebooks/01_tiny.ipynb": 1}
    assert link_problems(pages, tmp_path) == []
    assert study_pages.build_pages(tmp_path)[0] == pages            # same input, same bytes


def test_generator_refuses_a_wrong_answer_key(tmp_path):
    with pytest.raises(study_pages.StudyPagesError, match=r"01_tiny.ipynb: cell 6: the answer key \['B'\] "
                                                          r"fails check_quiz: wrong answers: Q1"):
        study_pages.build_pages(tiny_course(tmp_path, letters='"B"'))


def test_generator_refuses_a_missing_anchor(tmp_path):
    with pytest.raises(study_pages.StudyPagesError, match=r'tags claim-ATH-1 but has no <a id="claim-ATH-1"></a>'):
        study_pages.build_pages(tiny_course(tmp_path, anchor=False))


def test_generator_refuses_an_unmapped_id(tmp_path):
    root = tiny_course(tmp_path)
    with open(root / "docs" / "curriculum_ids.yml", "a", encoding="utf-8") as f:
        f.write('ATH-2:\n  kind: [Show]\n  claim: "Standard SQL."\n  course: "Show."\n')
    with pytest.raises(study_pages.StudyPagesError, match="ATH-2: no cell is tagged claim-ATH-2"):
        study_pages.build_pages(root)


def test_questions_in_a_lab_and_in_one_cell_with_the_check(tmp_path):
    root = tiny_course(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab 01 — Tiny lab"),
                nbformat.v4.new_code_cell(QUESTIONS + 'print()\ncheck_quiz(questions, ["A"])')]
    (root / "labs" / "01_tiny").mkdir(parents=True)
    nbformat.write(nb, str(root / "labs" / "01_tiny" / "01_tiny.ipynb"))
    pages, report = study_pages.build_pages(root)
    assert report.questions_per_chapter == {"notebooks/01_tiny.ipynb": 1, "labs/01_tiny/01_tiny.ipynb": 1}
    assert "## Lab 01 — Tiny lab\n\nFrom [labs/01_tiny/01_tiny.ipynb](../labs/01_tiny/01_tiny.ipynb)." \
        in pages["docs/exam_questions.md"]


def test_cli_check_names_stale_pages(tmp_path, capsys):
    root = tiny_course(tmp_path)
    assert study_pages.main(["--check"], root=root) == 1
    assert "docs/cheat_sheet.md, docs/changed_since_2023.md, docs/exam_questions.md" in capsys.readouterr().err
    assert study_pages.main([], root=root) == 0
    assert study_pages.main(["--check"], root=root) == 0
    (root / "docs" / "exam_questions.md").write_text("edited by hand\n", encoding="utf-8")
    assert study_pages.main(["--check"], root=root) == 1
    assert capsys.readouterr().err.strip().endswith(": docs/exam_questions.md")
    tiny_course(root, letters='"B"')
    assert study_pages.main(["--check"], root=root) == 2
    assert "fails check_quiz" in capsys.readouterr().err


def test_link_checker_fires(tmp_path):
    root = tiny_course(tmp_path)
    page = ("[ok](../notebooks/01_tiny.ipynb#claim-ATH-1) [no anchor](../notebooks/01_tiny.ipynb#claim-ATH-9) "
            "[no file](../notebooks/02_gone.ipynb) [no page anchor](#nowhere) [web](https://aws.amazon.com/)")
    assert link_problems({"docs/x.md": page}, root) == [
        "docs/x.md: ../notebooks/01_tiny.ipynb#claim-ATH-9: no such anchor in the notebook",
        "docs/x.md: ../notebooks/02_gone.ipynb: no such file",
        "docs/x.md: #nowhere: no such anchor in the page"]
