"""The claims map: every curriculum id, and the notebook cells that prove it.

``docs/curriculum_ids.yml`` lists the 131 claims of the course (the
curriculum's 119 and the 12 ICE ids the course added for Apache Iceberg) with
their kind (Show / Explain / Correct). A cell tagged ``claim-<ID>`` maps its id by
itself; ``docs/claims.yml`` maps an id to further cells (a cell id, or a tag
in a second notebook; format at the top of that file). The rules, as
docs/chapter_conventions.md ("Claims") states them for authors:

1. **Mappings point somewhere.** Every claims.yml entry names a real notebook
   and cell; every ``claim-<ID>`` tag names a curriculum id.
2. **Every id is mapped.** An id with no tagged cell and no claims.yml entry
   fails (all 131 are mapped: keep it so).
3. **Every id is proved the way its kind asks.** An id with several kinds
   meets each of them:

   - *Show*: at least one mapped **code** cell that is non-empty and has
     outputs or an ``assert`` / check call (``check(...)``,
     ``check_equal(...)``, ``grading.check_...``, ``check_quiz(...)``). A
     Show id tagged only on markdown fails: prose does not show.
   - *Correct*: a markdown cell of a chapter (``notebooks/``) holds a
     ``**Changed since 2023 (ID).**`` box naming the id (one box may name
     several: ``(RS-15, RS-25)``). A lab's box alone does not count, nor a
     box under another heading (``**Correction (ID).**``).
   - *Explain*: any mapped cell, markdown included.
4. **Anchors and links.** Every tagged id has its ``<a id="claim-ID"></a>``
   above its first cell, anchors are unique, every ``#claim-ID`` link lands,
   and a chapter's cheat-sheet links every id it tags.
5. **Boxes are complete.** A "Changed since 2023" box names its id and cites
   a source (``https://...``).

The second half of the file proves each rule fires, on tiny notebooks built
here. A failure of rule 2 or 3 is reported per id
(``test_claim_is_proved_by_its_kind[RS-10]``), naming the cells it found.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from test_notebook_hygiene import course_notebooks

ROOT = Path(__file__).resolve().parents[1]
IDS_FILE = ROOT / "docs" / "curriculum_ids.yml"
CLAIMS_FILE = ROOT / "docs" / "claims.yml"

EXPECTED_ID_COUNT = 131
KINDS = {"Show", "Explain", "Correct"}
ID_PATTERN = re.compile(r"^[A-Z]+-\d+$")
CLAIM_TAG = re.compile(r"^claim-(.+)$")


def load_yaml(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def curriculum_ids() -> dict:
    return load_yaml(IDS_FILE)


def claims_map(path: Path = CLAIMS_FILE) -> dict:
    return load_yaml(path) or {}


def _cell_handles(notebook: Path) -> set[str]:
    """Everything an entry's ``cell`` may name: cell ids and tags."""
    nb = nbformat.read(str(notebook), as_version=4)
    handles = set()
    for cell in nb.cells:
        if cell.get("id"):
            handles.add(cell["id"])
        handles.update(cell.metadata.get("tags", []))
    return handles


def mapping_problems(claims: dict, known_ids, root: Path = ROOT) -> list[str]:
    """Every entry of ``claims`` that is malformed or points nowhere."""
    if not isinstance(claims, dict):
        return [f"claims.yml must be a mapping of id -> list of places, got {type(claims).__name__}"]
    problems = []
    handles_cache: dict[Path, set[str]] = {}
    for claim_id, places in claims.items():
        if claim_id not in known_ids:
            problems.append(f"{claim_id}: not a curriculum id (see docs/curriculum_ids.yml)")
        if not isinstance(places, list) or not places:
            problems.append(f"{claim_id}: needs a non-empty list of {{notebook, cell}} entries")
            continue
        for place in places:
            if not isinstance(place, dict) or set(place) != {"notebook", "cell"}:
                problems.append(f"{claim_id}: entry {place!r} must have exactly the keys notebook and cell")
                continue
            notebook = root / str(place["notebook"])
            if notebook.suffix != ".ipynb" or not notebook.is_file():
                problems.append(f"{claim_id}: notebook {place['notebook']} does not exist")
                continue
            if "student" in notebook.relative_to(root).parts:
                problems.append(f"{claim_id}: {place['notebook']} is a generated student copy")
                continue
            if notebook not in handles_cache:
                handles_cache[notebook] = _cell_handles(notebook)
            if str(place["cell"]) not in handles_cache[notebook]:
                problems.append(f"{claim_id}: no cell tagged or with id {place['cell']!r} "
                                f"in {place['notebook']}")
    return problems


def unknown_claim_tags(known_ids, root: Path = ROOT) -> list[str]:
    """``claim-<ID>`` tags in the course's notebooks whose id does not exist."""
    found = []
    for path in course_notebooks(root):
        for tag in sorted(_cell_handles(path)):
            m = CLAIM_TAG.match(tag)
            if m and m.group(1) not in known_ids:
                found.append(f"{path.relative_to(root)}: tag {tag!r} names no curriculum id")
    return found


def tagged_ids(root: Path = ROOT) -> dict[str, list[str]]:
    """id -> notebooks with a cell tagged ``claim-<id>``: a tag maps its id by itself."""
    found: dict[str, list[str]] = {}
    for path in course_notebooks(root):
        for tag in sorted(_cell_handles(path)):
            m = CLAIM_TAG.match(tag)
            if m:
                found.setdefault(m.group(1), []).append(str(path.relative_to(root)))
    return found


ANCHOR = re.compile(r'<a id="(claim-[A-Z]+-\d+)"></a>')
LINK = re.compile(r"\]\(([^)#\s]*)#(claim-[A-Z]+-\d+)\)")


def _anchors(nb) -> list[str]:
    return [a for cell in nb.cells if cell.cell_type == "markdown" for a in ANCHOR.findall(cell.source)]


def anchor_problems(path: Path, root: Path = ROOT) -> list[str]:
    """The anchor convention (docs/chapter_conventions.md) in one notebook.

    Every id tagged on a cell has ``<a id="claim-ID"></a>`` in the tagged cell
    itself (markdown) or in the markdown just above its first tagged cell;
    anchors are unique; every ``](#claim-ID)`` or ``](other.ipynb#claim-ID)``
    link lands on an anchor; and a chapter links every id it tags (its
    cheat-sheet), so a learner can jump from the summary to the proof.
    """
    nb = nbformat.read(str(path), as_version=4)
    rel = path.relative_to(root)
    problems, first = [], {}
    for index, cell in enumerate(nb.cells):
        for tag in cell.metadata.get("tags", []):
            if CLAIM_TAG.match(tag) and tag not in first:
                first[tag] = index
    anchors = _anchors(nb)
    for anchor in sorted({a for a in anchors if anchors.count(a) > 1}):
        problems.append(f"{rel}: anchor {anchor} appears {anchors.count(anchor)} times")
    for tag, index in first.items():
        above, i = [nb.cells[index]], index - 1
        while i >= 0 and nb.cells[i].cell_type == "markdown":
            above.append(nb.cells[i])
            i -= 1
        if not any(tag in ANCHOR.findall(c.source) for c in above if c.cell_type == "markdown"):
            problems.append(f"{rel}: cell {index} is tagged {tag} but the markdown above it has no "
                            f'<a id="{tag}"></a>')
    linked = set()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for target, anchor in LINK.findall(cell.source):
            if not target:
                linked.add(anchor)
                if anchor not in anchors:
                    problems.append(f"{rel}: link to #{anchor} lands nowhere")
                continue
            other = (path.parent / target).resolve()
            if not other.is_file():
                problems.append(f"{rel}: link to {target} names no notebook")
            elif anchor not in _anchors(nbformat.read(str(other), as_version=4)):
                problems.append(f"{rel}: link to {target}#{anchor} lands nowhere")
    if rel.parts[0] == "notebooks":
        for tag in sorted(set(first) - linked):
            problems.append(f"{rel}: {tag} is tagged but never linked (add it to the cheat-sheet)")
    return problems


BOX = re.compile(r"\*\*Changed since 2023([^*]{0,12})")
BOX_ID = re.compile(r"^ \([A-Z]+-\d+")


def box_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Every "Changed since 2023" box names its claim id and cites a page."""
    nb = nbformat.read(str(path), as_version=4)
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for found in BOX.finditer(cell.source):
            if not BOX_ID.match(found.group(1)):
                problems.append(f"{path.relative_to(root)}: cell {index}: a Changed since 2023 box "
                                "names no id: **Changed since 2023 (ATH-6).**")
            if "https://" not in cell.source:
                problems.append(f"{path.relative_to(root)}: cell {index}: a Changed since 2023 box "
                                "cites no source (https://...)")
    return problems


SHOW_CHECK = re.compile(r"\bassert\b|\bcheck\w*\s*\(")
BOX_IDS = re.compile(r"\*\*Changed since 2023 \((?P<ids>[A-Z]+-\d+(?:\s*,\s*[A-Z]+-\d+)*)\)")


def mapped_cells(claims: dict, root: Path = ROOT) -> dict[str, list[tuple[str, int, dict]]]:
    """id -> every cell that maps it, as (notebook, cell index, cell): tags and claims.yml entries."""
    found: dict[str, list[tuple[str, int, dict]]] = {}
    seen = set()

    def add(claim_id, rel, index, cell):
        if (claim_id, rel, index) not in seen:
            seen.add((claim_id, rel, index))
            found.setdefault(claim_id, []).append((rel, index, cell))

    notebooks = {}
    for path in course_notebooks(root):
        rel = str(path.relative_to(root))
        notebooks[rel] = nbformat.read(str(path), as_version=4)
        for index, cell in enumerate(notebooks[rel].cells):
            for tag in cell.metadata.get("tags", []):
                m = CLAIM_TAG.match(tag)
                if m:
                    add(m.group(1), rel, index, cell)
    for claim_id, places in (claims if isinstance(claims, dict) else {}).items():
        for place in places if isinstance(places, list) else []:
            if not isinstance(place, dict) or str(place.get("notebook")) not in notebooks:
                continue                    # mapping_problems reports it
            for index, cell in enumerate(notebooks[str(place["notebook"])].cells):
                if cell.get("id") == place.get("cell") or place.get("cell") in cell.metadata.get("tags", []):
                    add(claim_id, str(place["notebook"]), index, cell)
    return found


def chapter_boxes(root: Path = ROOT) -> dict[str, list[str]]:
    """id -> the chapter cells (``notebooks/``) whose "Changed since 2023 (ID...)" box names it."""
    found: dict[str, list[str]] = {}
    for path in course_notebooks(root):
        rel = path.relative_to(root)
        if rel.parts[0] != "notebooks":
            continue
        nb = nbformat.read(str(path), as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                for box in BOX_IDS.finditer(cell.source):
                    for claim_id in re.split(r"\s*,\s*", box.group("ids")):
                        found.setdefault(claim_id, []).append(f"{rel} cell {index}")
    return found


def _shows(cell) -> bool:
    """A code cell that runs something and lets you see or trust the result."""
    return (cell.cell_type == "code" and bool(cell.source.strip())
            and (bool(cell.get("outputs")) or bool(SHOW_CHECK.search(cell.source))))


def _describe(rel: str, index: int, cell) -> str:
    if cell.cell_type != "code":
        what = cell.cell_type
    elif not cell.source.strip():
        what = "empty code"
    elif not cell.get("outputs"):
        what = "code, no outputs and no assert/check call"
    else:
        what = "code"
    return f"{rel} cell {index} ({what})"


def _near_miss_boxes(claim_id: str, root: Path) -> list[str]:
    """Chapter cells with a bold heading naming the id that is not a Changed since 2023 box."""
    heading = re.compile(r"\*\*[^*\n]*\(\s*(?:[A-Z]+-\d+\s*,\s*)*" + re.escape(claim_id) + r"\b[^*\n]*\*\*")
    found = []
    for path in course_notebooks(root):
        rel = path.relative_to(root)
        nb = nbformat.read(str(path), as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                for m in heading.finditer(cell.source):
                    if not m.group(0).startswith("**Changed since 2023"):
                        found.append(f"{rel} cell {index} has {m.group(0)!r}")
    return found


def proof_problems(claim_id: str, kinds, cells: list, boxes: dict, root: Path = ROOT) -> list[str]:
    """Why ``claim_id`` is not proved the way its ``kinds`` ask (rules 2 and 3); empty when it is."""
    if not cells:
        return [f"{claim_id}: mapped to no cell: tag the cell that proves it claim-{claim_id} "
                "(or add an entry to docs/claims.yml)"]
    problems = []
    if "Show" in kinds and not any(_shows(cell) for _, _, cell in cells):
        problems.append(f"{claim_id} (Show): no mapped code cell shows it (non-empty, with outputs or an "
                        "assert/check call); mapped: " + "; ".join(_describe(*place) for place in cells))
    if "Correct" in kinds and claim_id not in boxes:
        hint = _near_miss_boxes(claim_id, root)
        problems.append(f'{claim_id} (Correct): no chapter has a "**Changed since 2023 ({claim_id}).**" box'
                        + (" (found instead: " + "; ".join(hint) + ")" if hint else ""))
    return problems


def kind_problems(ids: dict, claims: dict, root: Path = ROOT) -> dict[str, list[str]]:
    """id -> its problems under rules 2 and 3, for every curriculum id."""
    cells = mapped_cells(claims, root)
    boxes = chapter_boxes(root)
    return {claim_id: proof_problems(claim_id, entry.get("kind") or [], cells.get(claim_id, []), boxes, root)
            for claim_id, entry in ids.items()}


@functools.lru_cache(maxsize=1)
def _real_kind_problems() -> dict[str, list[str]]:
    return kind_problems(curriculum_ids(), claims_map())


# --------------------------------------------------------------------------
# The real files.

@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_changed_since_2023_boxes_cite_a_source(path):
    problems = box_problems(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_claim_anchors_and_links(path):
    problems = anchor_problems(path)
    assert not problems, "\n".join(problems)


def test_curriculum_ids_are_complete_and_well_formed():
    ids = curriculum_ids()
    assert len(ids) == EXPECTED_ID_COUNT, f"expected {EXPECTED_ID_COUNT} curriculum ids, found {len(ids)}"
    for claim_id, entry in ids.items():
        assert ID_PATTERN.match(claim_id), claim_id
        assert entry["claim"].strip(), f"{claim_id}: empty claim"
        assert entry["kind"] and set(entry["kind"]) <= KINDS, f"{claim_id}: kind {entry['kind']}"


def test_every_mapping_points_to_a_real_cell(course_summary):
    ids = curriculum_ids()
    claims = claims_map()
    problems = mapping_problems(claims, ids)
    mapped = len((set(claims) | set(tagged_ids())) & set(ids))
    line = f"claims mapped: {mapped} of {len(ids)}"
    print(line)
    course_summary.append(line)
    assert not problems, "docs/claims.yml:\n  " + "\n  ".join(problems)


def test_every_curriculum_id_is_mapped():
    unmapped = [p[0] for p in _real_kind_problems().values() if p and "mapped to no cell" in p[0]]
    assert not unmapped, "unmapped curriculum ids:\n  " + "\n  ".join(unmapped)


@pytest.mark.parametrize("claim_id", list(curriculum_ids()))
def test_claim_is_proved_by_its_kind(claim_id):
    problems = _real_kind_problems()[claim_id]
    assert not problems, "\n".join(problems)


def test_claim_tags_name_known_ids():
    problems = unknown_claim_tags(curriculum_ids())
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# The checker itself, on a small notebook built here.

@pytest.fixture
def tiny_course(tmp_path):
    nb = nbformat.v4.new_notebook()
    shown = nbformat.v4.new_code_cell("1 + 1")
    shown.metadata["tags"] = ["claim-ATH-1"]
    plain = nbformat.v4.new_code_cell("2 + 2")
    plain["id"] = "plain-cell"
    nb.cells = [shown, plain]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, str(tmp_path / "notebooks" / "01_x.ipynb"))
    return tmp_path


KNOWN = {"ATH-1": {}, "ATH-2": {}}


def test_checker_accepts_tags_and_cell_ids(tiny_course):
    claims = {"ATH-1": [{"notebook": "notebooks/01_x.ipynb", "cell": "claim-ATH-1"}],
              "ATH-2": [{"notebook": "notebooks/01_x.ipynb", "cell": "plain-cell"}]}
    assert mapping_problems(claims, KNOWN, tiny_course) == []


@pytest.mark.parametrize("claims, message", [
    ({"ATH-99": [{"notebook": "notebooks/01_x.ipynb", "cell": "claim-ATH-1"}]}, "not a curriculum id"),
    ({"ATH-1": [{"notebook": "notebooks/02_missing.ipynb", "cell": "claim-ATH-1"}]}, "does not exist"),
    ({"ATH-1": [{"notebook": "notebooks/01_x.ipynb", "cell": "claim-ATH-2"}]}, "no cell tagged"),
    ({"ATH-1": [{"notebook": "notebooks/01_x.ipynb"}]}, "exactly the keys"),
    ({"ATH-1": []}, "non-empty list"),
    (["ATH-1"], "must be a mapping"),
], ids=["unknown-id", "missing-notebook", "missing-cell", "missing-key", "empty", "not-a-mapping"])
def test_checker_rejects_mappings_that_point_nowhere(tiny_course, claims, message):
    problems = mapping_problems(claims, KNOWN, tiny_course)
    assert len(problems) == 1 and message in problems[0]


def test_tags_count_as_mappings(tiny_course):
    assert tagged_ids(tiny_course) == {"ATH-1": ["notebooks/01_x.ipynb"]}


def test_checker_finds_misspelt_claim_tags(tiny_course):
    assert unknown_claim_tags(KNOWN, tiny_course) == []
    assert unknown_claim_tags({"ATH-2": {}}, tiny_course) == [
        "notebooks/01_x.ipynb: tag 'claim-ATH-1' names no curriculum id"]


def test_anchor_checker_fires(tmp_path):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell("1")
    tagged.metadata["tags"] = ["claim-ATH-1"]
    unanchored = nbformat.v4.new_code_cell("2")
    unanchored.metadata["tags"] = ["claim-ATH-2"]
    nb.cells = [nbformat.v4.new_markdown_cell('<a id="claim-ATH-1"></a>\n\nExplained.'), tagged,
                unanchored,
                nbformat.v4.new_markdown_cell("| [ATH-1](#claim-ATH-1) | [ATH-9](#claim-ATH-9) |")]
    path = tmp_path / "notebooks" / "x.ipynb"
    nbformat.write(nb, str(path))
    problems = anchor_problems(path, root=tmp_path)
    assert len(problems) == 3, problems
    assert any("claim-ATH-2 but the markdown above" in p for p in problems)
    assert any("#claim-ATH-9 lands nowhere" in p for p in problems)
    assert any("claim-ATH-2 is tagged but never linked" in p for p in problems)


def test_box_checker_fires(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("> **Changed since 2023.** No id, no source."),
                nbformat.v4.new_markdown_cell("> **Changed since 2023 (ATH-6).** Cited.\n> "
                                              "Source: [page](https://docs.aws.amazon.com/athena/)")]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    assert [p.split(": ", 2)[2][:40] for p in box_problems(path, root=tmp_path)] == [
        "a Changed since 2023 box names no id: **", "a Changed since 2023 box cites no source"]


# --------------------------------------------------------------------------
# Rules 2 and 3 on tiny courses: each rule fires, and each passes when met.

def _tiny_nb(root: Path, rel: str, cells: list) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(root / rel))


def _tagged(cell, claim_id: str):
    cell.metadata["tags"] = [f"claim-{claim_id}"]
    return cell


def _ran(source: str, text: str = "4\n"):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def _kind_problems(root: Path, kinds: dict[str, list[str]], claims: dict | None = None) -> dict[str, list[str]]:
    return kind_problems({i: {"kind": k} for i, k in kinds.items()}, claims or {}, root)


def test_unmapped_id_fails(tmp_path):
    _tiny_nb(tmp_path, "notebooks/01_x.ipynb", [_tagged(_ran("print(2 + 2)"), "ATH-1")])
    problems = _kind_problems(tmp_path, {"ATH-1": ["Show"], "ATH-2": ["Explain"]})
    assert problems["ATH-1"] == []
    assert len(problems["ATH-2"]) == 1 and "ATH-2: mapped to no cell" in problems["ATH-2"][0]


@pytest.mark.parametrize("cell, passes", [
    (nbformat.v4.new_markdown_cell("Athena is serverless."), False),
    (nbformat.v4.new_code_cell("   \n"), False),
    (nbformat.v4.new_code_cell("x = 2 + 2"), False),
    (_ran("print(2 + 2)"), True),
    (nbformat.v4.new_code_cell("x = 2 + 2\nassert x == 4"), True),
    (nbformat.v4.new_code_cell("grading.check_equal(x, 4, 'x')"), True),
], ids=["markdown-only", "empty-code", "code-without-output-or-check", "code-with-output", "code-with-assert",
        "code-with-check-call"])
def test_show_needs_a_code_cell_that_shows(tmp_path, cell, passes):
    _tiny_nb(tmp_path, "notebooks/01_x.ipynb", [_tagged(cell, "ATH-1")])
    problems = _kind_problems(tmp_path, {"ATH-1": ["Show"]})["ATH-1"]
    if passes:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith("ATH-1 (Show): no mapped code cell shows it")
        assert "notebooks/01_x.ipynb cell 0" in problems[0]


def test_show_counts_a_code_cell_mapped_in_claims_yml(tmp_path):
    shown = _ran("print(2 + 2)")
    shown["id"] = "the-proof"
    _tiny_nb(tmp_path, "notebooks/01_x.ipynb", [_tagged(nbformat.v4.new_markdown_cell("prose"), "ATH-1"), shown])
    claims = {"ATH-1": [{"notebook": "notebooks/01_x.ipynb", "cell": "the-proof"}]}
    assert _kind_problems(tmp_path, {"ATH-1": ["Show"]}) == {"ATH-1": [
        "ATH-1 (Show): no mapped code cell shows it (non-empty, with outputs or an assert/check call); "
        "mapped: notebooks/01_x.ipynb cell 0 (markdown)"]}
    assert _kind_problems(tmp_path, {"ATH-1": ["Show"]}, claims) == {"ATH-1": []}


A_BOX = ("> **Changed since 2023 (ATH-3, ATH-6).** The notes say Presto; today Trino.\n>\n"
       "> Source: [engine v3](https://docs.aws.amazon.com/athena/latest/ug/engine-versions-reference-0003.html)")


@pytest.mark.parametrize("where, box, passes", [
    ("notebooks/01_x.ipynb", A_BOX, True),
    ("labs/01_x/01_x.ipynb", A_BOX, False),
    ("notebooks/01_x.ipynb", A_BOX.replace("Changed since 2023", "Correction"), False),
    ("notebooks/01_x.ipynb", A_BOX.replace("ATH-3, ", ""), False),
], ids=["chapter-box", "lab-box-only", "other-heading", "box-names-another-id"])
def test_correct_needs_a_changed_since_2023_box_in_a_chapter(tmp_path, where, box, passes):
    _tiny_nb(tmp_path, "notebooks/01_x.ipynb", [_tagged(nbformat.v4.new_markdown_cell("Engine v3."), "ATH-3")])
    if where.startswith("labs/"):
        _tiny_nb(tmp_path, where, [nbformat.v4.new_markdown_cell(box)])
    else:
        nb = nbformat.read(str(tmp_path / where), as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell(box))
        nbformat.write(nb, str(tmp_path / where))
    problems = _kind_problems(tmp_path, {"ATH-3": ["Correct", "Explain"]})["ATH-3"]
    if passes:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(
            'ATH-3 (Correct): no chapter has a "**Changed since 2023 (ATH-3).**" box')
    if "Correction" in box:
        assert "found instead: notebooks/01_x.ipynb cell 1 has '**Correction (ATH-3, ATH-6).**'" in problems[0]


def test_explain_may_be_markdown(tmp_path):
    _tiny_nb(tmp_path, "notebooks/01_x.ipynb", [_tagged(nbformat.v4.new_markdown_cell("Why not locally."), "RS-3")])
    assert _kind_problems(tmp_path, {"RS-3": ["Explain"]}) == {"RS-3": []}


def test_every_kind_of_an_id_is_checked(tmp_path):
    """An id of kinds Correct and Show needs both the box and a code cell that shows."""
    _tiny_nb(tmp_path, "notebooks/01_x.ipynb", [_tagged(nbformat.v4.new_markdown_cell("Sort keys."), "RS-10")])
    problems = _kind_problems(tmp_path, {"RS-10": ["Correct", "Show"]})["RS-10"]
    assert [p.split(":")[0] for p in problems] == ["RS-10 (Show)", "RS-10 (Correct)"]
