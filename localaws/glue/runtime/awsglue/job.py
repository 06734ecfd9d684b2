"""``Job``: the start and end of a Glue ETL script, where job bookmarks are read and committed.

A bookmarked script reads::

    job = Job(glueContext)
    job.init(args["JOB_NAME"], args)
    ... reads with a transformation_ctx, transforms, writes ...
    job.commit()

``init`` loads the bookmark the last successful run committed (from the
local runner, see ``_run.py``) when the run's ``--job-bookmark-option`` is
``job-bookmark-enable`` or ``job-bookmark-pause``; reads with a
``transformation_ctx`` then take only what that bookmark does not cover.
``commit`` hands the new bookmark back; Glue keeps it only if the run
succeeds, and only under ``job-bookmark-enable`` (``pause`` reads past the
bookmark without moving it). Outside a local run (a notebook) both are
no-ops, as bookmarks belong to job runs.
"""
from __future__ import annotations

from awsglue import _run
from awsglue.context import RunBookmark

__all__ = ["Job"]


class Job:
    def __init__(self, glue_context):
        self.glue_context = glue_context
        self._name: str | None = None
        self._bookmark: RunBookmark | None = None

    def init(self, job_name: str, args: dict | None = None) -> None:
        info = _run.info()
        self._name = job_name
        option = info.get("bookmark_option", "job-bookmark-disable")
        if option in ("job-bookmark-enable", "job-bookmark-pause"):
            self._bookmark = RunBookmark(option, info.get("bookmark"))
            self.glue_context._bookmark = self._bookmark

    def commit(self) -> None:
        """Hand this run's bookmark to the runner (kept if the run succeeds, under ``enable`` only)."""
        if self._bookmark is not None and self._bookmark.option == "job-bookmark-enable":
            _run.save_bookmark(self._bookmark.merged())

    def isInitialized(self) -> bool:  # noqa: N802 - Glue's name
        return self._name is not None
