"""Local-only teaching hooks are marked, in the library and in the notebooks.

Chapter 00 promises that with ``LOCALAWS_TARGET=aws`` the notebooks run
against a real account. What cannot (killing a Spot worker, advancing the
clock, counting the S3 objects a query opened) lives under ``stack.local``:

- every ``@local_hook`` says what to do on AWS instead, and the AWS target's
  ``stack.local`` raises that text;
- every notebook cell that uses ``stack.local`` carries the ``local-only``
  tag, and no cell carries it without cause;
- a cell that creates a resource AWS bills by the hour says so, and the
  notebook deletes it later (or the resource ends by itself).
"""
from __future__ import annotations

import re

import nbformat
import pytest

from localaws.core.plane import LocalOnlyError
from localaws.stack import PLANES, AwsStack
from test_notebook_hygiene import course_notebooks

LOCAL_TAG = "local-only"
USES_LOCAL = re.compile(r"\bstack\.local\.")
# Calls that create something AWS bills per hour until it is deleted -> the call that deletes it.
BILLED = {"run_job_flow(": "terminate_job_flows(", "create_domain(": "delete_domain("}
SAYS_COST = re.compile(r"#.*Costs money on AWS")
ENDS_ITSELF = re.compile(r'"KeepJobFlowAliveWhenNoSteps":\s*False')


def code_cells(path):
    nb = nbformat.read(str(path), as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("plane", PLANES, ids=lambda p: p.name)
def test_every_teaching_hook_says_what_to_do_on_aws(plane):
    for name, on_aws in plane.local_hooks().items():
        assert on_aws.startswith("On AWS"), f"{plane.name}.{name}: {on_aws!r}"
        assert name not in {op for op in plane.operations().values()}


def test_the_aws_target_refuses_every_hook_with_its_advice(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws = AwsStack("us-east-1")
    for plane in PLANES:
        for name, on_aws in plane.local_hooks().items():
            with pytest.raises(LocalOnlyError) as info:
                getattr(getattr(aws.local, plane.name), name)
            assert on_aws in str(info.value) and f"stack.local.{plane.name}.{name}" in str(info.value)
    with pytest.raises(LocalOnlyError, match="cannot be advanced"):
        aws.local.clock.advance(60)


def test_the_local_namespace_offers_only_hooks(stack):
    assert "wait" in dir(stack.local.athena) and "clock" in dir(stack.local)
    with pytest.raises(AttributeError, match="no teaching hook 'start_query_execution'"):
        stack.local.athena.start_query_execution
    with pytest.raises(AttributeError, match="stack.local.emr"):
        stack.emr                       # the old spelling points to the new one


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_cells_using_local_hooks_are_tagged(path):
    wrong = []
    for i, cell in enumerate(code_cells(path)):
        tagged = LOCAL_TAG in cell.metadata.get("tags", [])
        uses = bool(USES_LOCAL.search(cell.source))
        if uses != tagged:
            wrong.append(f"code cell {i}: {'untagged use of stack.local' if uses else 'tag without a hook'}")
    assert not wrong, f"{path.name}: " + "; ".join(wrong)


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_billed_resources_say_so_and_are_torn_down(path):
    cells = code_cells(path)
    problems = []
    for i, cell in enumerate(cells):
        for create, delete in BILLED.items():
            if create not in cell.source:
                continue
            if not SAYS_COST.search(cell.source):
                problems.append(f"code cell {i} calls {create}) without a '# Costs money on AWS' comment")
            later = any(delete in c.source for c in cells[i:])
            if not later and not ENDS_ITSELF.search(cell.source):
                problems.append(f"code cell {i} calls {create}) and no later cell calls {delete})")
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_rules_fire_on_a_bad_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("stack.local.emr.interrupt_spot(c, g)"),
                nbformat.v4.new_code_cell("emr.run_job_flow(Name='x')")]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(AssertionError, match="untagged use"):
        test_cells_using_local_hooks_are_tagged(path)
    with pytest.raises(AssertionError, match="Costs money.*no later cell calls terminate_job_flows"):
        test_billed_resources_say_so_and_are_torn_down(path)
