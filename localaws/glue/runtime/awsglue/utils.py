"""``getResolvedOptions``: the job's arguments, as Glue hands them to a script.

Glue starts the script as ``script.py --JOB_ID j_... --JOB_RUN_ID jr_...
--JOB_NAME <name> --job-bookmark-option job-bookmark-disable [--TempDir s3://...]
--<key> <value> ...``: the job's ``DefaultArguments`` merged with the run's
``Arguments`` (the run's win) and ``NonOverridableArguments`` (which win over
both). A script reads the ones it needs::

    args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
    args["source"]          # the value of --source

Names are given without the leading ``--``. A name the command line lacks is
an error (``GlueArgumentError``, an ``argparse`` style message), as on Glue;
every argument the script does not ask for is ignored. This module needs no
Spark, so Python shell jobs use it too.
"""
from __future__ import annotations

__all__ = ["GlueArgumentError", "getResolvedOptions"]

#: The values Glue accepts for ``--job-bookmark-option``.
BOOKMARK_OPTIONS = ("job-bookmark-enable", "job-bookmark-disable", "job-bookmark-pause")


class GlueArgumentError(Exception):
    """A required job argument is missing, or one has no value."""


def _pairs(argv: list[str]) -> dict[str, str]:
    """``["s.py", "--a", "1", "--b", "x y"]`` -> ``{"a": "1", "b": "x y"}`` (the last one wins).

    ``--name=value`` is accepted too; a ``--name`` followed by another option
    (or by nothing) has the value ``""``.
    """
    found: dict[str, str] = {}
    i = 1
    while i < len(argv):
        item = argv[i]
        if item.startswith("--"):
            name, eq, value = item[2:].partition("=")
            if eq:
                found[name] = value
                i += 1
                continue
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                found[name] = argv[i + 1]
                i += 2
            else:
                found[name] = ""
                i += 1
        else:
            i += 1          # a stray word: Glue never passes one
    return found


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:  # noqa: N802 - Glue's name
    """The values of ``options`` (names without ``--``) in ``args`` (the script's ``sys.argv``).

    Raises :class:`GlueArgumentError` naming every option the command line
    lacks. ``job-bookmark-option``, when asked for, must be one of Glue's
    three values.
    """
    found = _pairs(list(args))
    missing = [name for name in options if name not in found]
    if missing:
        raise GlueArgumentError("the following arguments are required: "
                                + ", ".join(f"--{name}" for name in missing))
    resolved = {name: found[name] for name in options}
    option = resolved.get("job-bookmark-option")
    if option is not None and option not in BOOKMARK_OPTIONS:
        raise GlueArgumentError(f"argument --job-bookmark-option: invalid choice: {option!r} "
                                f"(choose from {', '.join(map(repr, BOOKMARK_OPTIONS))})")
    return resolved
