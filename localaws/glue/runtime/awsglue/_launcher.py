"""How the local runner starts a Glue script: ``python _launcher.py <script.py> <Glue's arguments>``.

Glue runs the job's script as the driver's main program, with Glue's
arguments in ``sys.argv``. This launcher does the same (``runpy``: the
script runs as ``__main__``, ``sys.argv[0]`` is the script) and adds what
Glue's console shows when a run fails: the exception, as
``ErrorMessage`` (``error.json``), and the traceback, for the run's
``/aws-glue/jobs/error`` log stream (``traceback.txt``). The shape of the
message follows the ErrorMessage of Glue 4.0 and later runs::

    Error Category: UNCLASSIFIED_ERROR; Failed Line Number: 12; NameError: name 'x' is not defined

A Spark error raised through Py4J reads ``An error occurred while calling
o123.method. <the Java exception's message>``, as on Glue.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path


def failed_line(exc: BaseException, script: str) -> int | None:
    """The line of ``script`` the exception came from (a SyntaxError's own line)."""
    if isinstance(exc, SyntaxError) and exc.filename == script:
        return exc.lineno
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == script:
            line = lineno
    return line


def script_traceback(exc: BaseException, script: str) -> list[str]:
    """The traceback from the script's first frame on (this launcher's frames left out)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    return traceback.format_exception(type(exc), exc, tb)


def describe(exc: BaseException) -> str:
    """``NameError: ...``; a Py4J error as ``An error occurred while calling oN.m. <Java message>``."""
    java = getattr(exc, "java_exception", None)
    if java is not None and type(exc).__name__ == "Py4JJavaError":
        try:
            message = java.getMessage() or java.toString()
        except Exception:           # noqa: BLE001 - the JVM may be gone
            message = str(exc).split("\n", 2)[1] if "\n" in str(exc) else str(exc)
        return f"{exc.errmsg.rstrip()} {message}".strip()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main() -> int:
    script = str(Path(sys.argv[1]).resolve())
    sys.argv = [script, *sys.argv[2:]]
    sys.path[0] = str(Path(script).parent)          # as if the script were run directly
    folder = os.environ.get("LOCALAWS_GLUE_RUN_DIR")
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code in (None, 0):
            return 0
        error = exc
    except BaseException as exc:  # noqa: BLE001 - every failure is the run's ErrorMessage
        error = exc
    else:
        return 0
    line = failed_line(error, script)
    message = "Error Category: UNCLASSIFIED_ERROR; "
    message += f"Failed Line Number: {line}; " if line else ""
    message += describe(error)
    if folder:
        Path(folder, "traceback.txt").write_text("".join(script_traceback(error, script)))
        Path(folder, "error.json").write_text(json.dumps({"ErrorMessage": message}))
    else:
        sys.stderr.write("".join(script_traceback(error, script)))
    return 1


if __name__ == "__main__":
    sys.exit(main())
