"""Shared pytest setup for the whole repository.

`make test` runs::

    pytest --nbval --nbval-sanitize-with nbval_sanitize.cfg -p no:cacheprovider \
           --ignore-glob='*/student/*' tests notebooks labs

so this file serves two kinds of test at once:

- the notebooks and lab solutions, which nbval re-executes cell by cell in a
  fresh Jupyter kernel and compares with their committed outputs;
- the unit tests in ``tests/``, which get a running local stack from the
  ``stack`` fixture below.

What it does for the notebooks:

1. **One environment for every kernel.** Kernels are child processes and
   inherit ``os.environ``. We pin what changes printed output from one
   machine to the next (hash seed, time zone, AWS region and credentials,
   no ``~/.aws`` files), remove what would change how cells behave (a
   developer's ``MPLBACKEND``, ``TQDM_*``, ``AWS_ENDPOINT_URL`` or
   ``LOCALAWS_TARGET=aws``), and put the checkout first on
   ``PYTHONPATH`` so ``import localaws`` finds this tree even before
   ``pip install -e .``.
2. **The kernel runs the pytest interpreter** (nbval's ``--nbval-current-env``)
   unless a kernel was named on the command line: a ``python3`` kernelspec in
   the user's home would otherwise win and run another Python.
3. **A cell timeout of 600 s** (nbval's default is 2000 s) unless another
   was given: long enough for the Spark and EMR cells, short enough that a hung
   cell fails the run in minutes rather than most of an hour.
4. **Cells run as Jupyter runs them.** nbval 0.11 sends each cell with
   ``store_history=False``; IPython then decides whether a trailing ``;``
   silences the result by looking at the *previous* cell, and ``_``/``Out``
   do not advance. So ``plt.plot(x);`` displays ``[<Line2D ...>]`` under
   nbval but not in JupyterLab or nbconvert. We send cells with
   ``store_history=True``, as nbclient and JupyterLab do.
5. **Two run-time sanitizers** in front of those in ``nbval_sanitize.cfg``:
   the absolute path of this checkout becomes ``<REPO>`` and the home
   directory ``<HOME>`` (a static file cannot know either).

stderr: nbval 0.11 compares ``stderr`` streams exactly like ``stdout``; it
has no option to ignore them. It does collapse carriage returns, keeping the
last state of each line, so a finished tqdm bar compares as one line, and the
sanitizers mask its timings and drawing. Warnings printed to stderr are real
differences and are meant to fail: fix the cause, do not hide it.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

CELL_TIMEOUT_SECONDS = 600
NBVAL_DEFAULT_CELL_TIMEOUT = 2000  # nbval 0.11's default for --nbval-cell-timeout

# Student versions of labs are generated, git-ignored and fail on purpose.
collect_ignore_glob = ["labs/*/student/*"]

# Variables whose value ends up in printed output (ARNs carry the region,
# datetimes the time zone, set order the hash seed).
PINNED_ENV = {
    "PYTHONHASHSEED": "0",
    "TZ": "UTC",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # Dummy credentials: botocore signs every request, and nothing run by the
    # tests may reach a real account by accident.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    # Nor may a developer's ~/.aws/config (a default endpoint_url, a region).
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

# Variables that would change behaviour: a real-AWS target, a profile with
# real credentials, an endpoint of another emulator, a non-inline matplotlib backend (ipykernel picks the
# inline one only when MPLBACKEND is unset; "Agg" would print a warning and
# no figure), tqdm overrides (TQDM_DISABLE, TQDM_NCOLS...).
REMOVED_ENV = ("LOCALAWS_TARGET", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL",
               "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "MPLBACKEND")
REMOVED_ENV_PREFIXES = ("TQDM_",)


def _deterministic_environment() -> None:
    os.environ.update(PINNED_ENV)
    for name in list(os.environ):
        if name in REMOVED_ENV or name.startswith(REMOVED_ENV_PREFIXES):
            del os.environ[name]
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *paths])


def _execute_cells_like_jupyter() -> None:
    from nbval.kernel import RunningKernel

    def execute_cell_input(self, cell_input, allow_stdin=None):
        return self.kc.execute(cell_input, store_history=True,
                               allow_stdin=allow_stdin, stop_on_error=False)

    RunningKernel.execute_cell_input = execute_cell_input


# Output fields that legitimately differ between two runs of the same cell.
VOLATILE_OUTPUT_FIELDS = ("metadata", "execution_count", "traceback",
                          "application/vnd.jupyter.widget-view+json")


def canonical_outputs(outputs, sanitize) -> str:
    """A cell's outputs as one string, after the sanitizers, for a byte-for-byte comparison.

    nbval compares the text of each MIME type, but as lists per type: it does not see
    the order of a print and a table, and it skips images. This keeps the order (streams
    merged per name, as nbval and Jupyter do), every MIME type, images byte for byte
    (their base64 text, unsanitized), and drops only ``VOLATILE_OUTPUT_FIELDS``.
    """
    import json

    from nbval.plugin import coalesce_streams

    canon = []
    for output in coalesce_streams([o.copy() for o in outputs]):
        kind = output.get("output_type")
        item = {"output_type": "result" if kind in ("execute_result", "display_data") else kind}
        for key, value in output.items():
            if key in VOLATILE_OUTPUT_FIELDS or key == "output_type":
                continue
            if key == "data":
                item["data"] = {
                    mime: (v if mime.startswith("image/") else sanitize(v if isinstance(v, str) else json.dumps(v, sort_keys=True)))
                    for mime, v in value.items() if mime not in VOLATILE_OUTPUT_FIELDS}
            else:
                item[key] = sanitize(value) if isinstance(value, str) else value
        canon.append(item)
    return json.dumps(canon, sort_keys=True, indent=1)


def _compare_byte_for_byte() -> None:
    """After nbval's own comparison passes, also require identical canonical outputs.

    So each ``make test`` proves that a fresh run of every notebook gives its committed
    outputs byte for byte after the sanitizers (``# NBVAL_IGNORE_OUTPUT`` cells aside):
    two runs in a row therefore give the same outputs as each other.
    """
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.compare_outputs, "byte_for_byte", False):
        return
    nbval_compare = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        if not nbval_compare(self, test, ref, skip_compare):
            return False
        fresh, committed = (canonical_outputs(o, self.sanitize) for o in (test, ref))
        if fresh == committed:
            return True
        import difflib
        self.comparison_traceback.append(
            "The outputs agree MIME type by MIME type, but not byte for byte (order, output kind "
            "or an image differs); committed -> fresh:")
        self.comparison_traceback.extend(
            line[:300] for line in difflib.unified_diff(committed.splitlines(), fresh.splitlines(),
                                                        "committed", "fresh", n=1, lineterm=""))
        return False

    compare_outputs.byte_for_byte = True
    IPyNbCell.compare_outputs = compare_outputs


def pytest_configure(config: pytest.Config) -> None:
    _deterministic_environment()
    option = config.option
    if not hasattr(option, "nbval_cell_timeout"):  # nbval not installed
        return
    _execute_cells_like_jupyter()
    _compare_byte_for_byte()
    if option.nbval_cell_timeout == NBVAL_DEFAULT_CELL_TIMEOUT:  # not set by the user
        option.nbval_cell_timeout = CELL_TIMEOUT_SECONDS
    if not (option.nbval_kernel_name or option.nbval_current_env
            or getattr(option, "current_env", False)):
        option.nbval_current_env = True


def _runtime_sanitizers() -> OrderedDict:
    """Regexes for machine paths only known at run time, longest first."""
    places = {}
    for path, label in ((ROOT, "<REPO>"), (Path.home(), "<HOME>")):
        for variant in {str(path), os.path.realpath(path)}:
            if len(variant) > 1:  # never "/"
                places[variant] = label
    return OrderedDict((re.escape(p), places[p])
                       for p in sorted(places, key=len, reverse=True))


# How `make test` shares the files between its two processes (pytest-xdist, --dist loadscope).
# Each file is one unit of work (a notebook's cells share one kernel), except the files that
# run Spark: they form a single unit, run one after another by one process, because two Spark
# clusters side by side on 2 cores slow each other down more than they gain. The units are
# handed out longest first (summed test time per file measured with two processes on 2 cores,
# 2026-11-30), so the two processes finish together; every other file keeps its place after
# them. An approximate order is enough.
SPARK_FILES = (
    "notebooks/06_emr.ipynb", "tests/test_emr.py", "notebooks/08_glue.ipynb", "tests/test_lab08_checks.py",
    "tests/test_glue_streaming.py", "tests/test_glue_jobs.py", "labs/06_emr/06_emr.ipynb",
    "labs/08_glue/08_glue.ipynb", "tests/test_jars_s3a.py", "tests/test_awsglue_runtime.py",
    "tests/test_glue_job_bad_input.py", "tests/test_lakeformation_glue_jobs.py",
)
RUN_FIRST = (
    "spark", "notebooks/12_capstone_pipeline.ipynb", "tests/test_capstone_pipeline.py",
    "notebooks/11_msk_kafka.ipynb", "tests/test_labs.py", "tests/test_flink_api.py",
    "notebooks/10_kinesis_and_stream_analytics.ipynb", "tests/test_msk_consumers.py",
    "tests/test_msk_reliability.py", "tests/test_flink_hooks.py", "notebooks/04_redshift.ipynb",
    "tests/test_lab11_checks.py", "notebooks/02_athena_performance.ipynb", "tests/test_msk_bad_input.py",
    "tests/test_flink_cluster.py", "notebooks/05_opensearch.ipynb", "tests/test_lambda_sqs.py",
    "tests/test_book.py", "labs/10_streams/10_streams.ipynb",
)


def unit_of_work(nodeid: str) -> str:
    """The unit a test belongs to: its file, or "spark" for the files that run Spark."""
    path = nodeid.split("::", 1)[0]
    return "spark" if path in SPARK_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """(pytest-xdist, on the controller) --dist loadscope, with ``unit_of_work`` as the scope."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CourseScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

    return CourseScheduling(config, log)


def _longest_first(items) -> None:
    rank = {unit: i for i, unit in enumerate(RUN_FIRST)}
    place = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(unit_of_work(item.nodeid), len(RUN_FIRST)), place[id(item)]))


def pytest_collection_modifyitems(config: pytest.Config, items) -> None:
    """Longest units of work first under pytest-xdist; the run-time sanitizers first for every notebook.

    nbval reads nbval_sanitize.cfg when a notebook starts (after collection)
    and appends its patterns to ``sanitize_patterns``; ours, inserted now,
    therefore run first, before the generic /home and /tmp rules.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _longest_first(items)
    patterns = _runtime_sanitizers()
    seen = set()
    for item in items:
        notebook = item.parent
        if not hasattr(notebook, "sanitize_patterns") or id(notebook) in seen:
            continue
        seen.add(id(notebook))
        merged = OrderedDict(patterns)
        merged.update(notebook.sanitize_patterns)
        notebook.sanitize_patterns = merged


@pytest.fixture(scope="session")
def stack():
    """A running local AWS stack for the whole test session.

    ``stack.endpoint`` is the one URL every boto3 client talks to;
    ``stack.client("s3")`` builds such a client. Imported here, not at the top
    of the file, so that this conftest loads even where localaws is broken.
    """
    import localaws

    s = localaws.start()
    stop = s.stop

    def refuse_to_stop():
        # localaws.start() hands every caller this same running stack: a test that stops it
        # (``with localaws.start() as s:``) would break every test after it. Start a stack of
        # your own in a subprocess instead.
        raise RuntimeError("the session's shared stack must not be stopped by a test")

    s.stop = refuse_to_stop
    try:
        yield s
    finally:
        stop()


_SUMMARY_KEY = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def course_summary(pytestconfig):
    """A list of lines printed at the end of the run (e.g. the claims count).

    Tests append to it; the lines appear in pytest's terminal summary even
    without ``-s``.
    """
    return pytestconfig.stash.setdefault(_SUMMARY_KEY, [])


def pytest_sessionfinish(session) -> None:
    """Under pytest-xdist a worker hands its summary lines to the controller, which prints them."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["course_summary"] = list(session.config.stash.get(_SUMMARY_KEY, []))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """(pytest-xdist, on the controller) collect a finished worker's summary lines."""
    lines = getattr(node, "workeroutput", {}).get("course_summary", [])
    node.config.stash.setdefault(_SUMMARY_KEY, []).extend(lines)


# file -> seconds its tests took (setup, call and teardown), for the summary. Filled on the
# process that reports: the controller under pytest-xdist, where files run side by side.
_file_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::", 1)[0]
    _file_seconds[path] = _file_seconds.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = config.stash.get(_SUMMARY_KEY, [])
    if lines:
        terminalreporter.section("course")
        for line in lines:
            terminalreporter.write_line(line)
    if _file_seconds:
        notebooks = {p: t for p, t in _file_seconds.items() if p.endswith(".ipynb")}
        others = sorted(((t, p) for p, t in _file_seconds.items() if p not in notebooks), reverse=True)
        terminalreporter.section("seconds per file (each file's own tests, added up)")
        for path, seconds in sorted(notebooks.items()):
            terminalreporter.write_line(f"{seconds:7.1f}  {path}")
        for seconds, path in others[:20]:
            terminalreporter.write_line(f"{seconds:7.1f}  {path}")
        terminalreporter.write_line(f"{sum(_file_seconds.values()):7.1f}  in all "
                                    f"({len(notebooks)} notebooks, {len(others)} test files)")
