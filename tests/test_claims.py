"""The claims map: every curriculum id, and the notebook cells that cover it.

``docs/curriculum_ids.yml`` lists the 119 claims of the curriculum with their
kind (Show / Explain / Correct). ``docs/claims.yml`` maps an id to the cells
that show, explain or correct it (format at the top of that file). These
tests keep the two honest: a mapping that points nowhere fails; an id that
is not mapped yet is only counted.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from test_notebook_hygiene import course_notebooks

ROOT = Path(__file__).resolve().parents[1]
IDS_FILE = ROOT / "docs" / "curriculum_ids.yml"
CLAIMS_FILE = ROOT / "docs" / "claims.yml"

EXPECTED_ID_COUNT = 119
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
