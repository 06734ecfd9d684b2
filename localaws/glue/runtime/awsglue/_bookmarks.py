"""Job bookmarks for Amazon S3 sources: which objects a run reads, and what it remembers.

Glue's documented behaviour for S3 (``monitor-continuations.html``,
``maxBand`` in the S3 connection options):

- a bookmark is kept per source, keyed by the read's ``transformation_ctx``
  (a read without one is not bookmarked);
- Glue tracks objects by their **last modified time**: an object modified
  after the bookmark's high timestamp is new (a rewritten object is read
  again);
- because a listing may miss objects written just before it (S3 used to be
  eventually consistent), objects whose time falls within ``maxBand``
  milliseconds (default 900,000: 15 minutes) before the high timestamp are
  tracked **by name** as well: one in that band whose name the bookmark
  does not hold is new too;
- ``job-bookmark-enable`` reads what is new and, when the run commits,
  moves the bookmark; ``job-bookmark-pause`` reads what is new since the
  last committed bookmark but leaves the bookmark where it is;
  ``job-bookmark-disable`` reads everything and remembers nothing.

An object the bookmark remembers but that was deleted since simply drops out
of the next state. This module is plain Python (no Spark): the reader
(``_sources.py``) lists the objects and passes them in.
"""
from __future__ import annotations

DEFAULT_BAND_MS = 900_000


def select(objects: list[dict], previous: dict | None, band_ms: int = DEFAULT_BAND_MS) -> list[dict]:
    """The objects a bookmarked read takes: all of them without a previous state, else the new ones.

    ``objects``: ``{"uri": ..., "mtime_ms": ...}`` dicts (a listing);
    ``previous``: the state :func:`state` returned for this source last time.
    """
    if not previous:
        return list(objects)
    high = previous["high_ms"]
    seen = set(previous.get("in_band", ()))
    return [o for o in objects
            if o["mtime_ms"] > high or (o["mtime_ms"] > high - band_ms and o["uri"] not in seen)]


def state(objects: list[dict], listed_at_ms: int, paths: list[str], band_ms: int = DEFAULT_BAND_MS) -> dict:
    """The source's state after a run that processed every object of ``objects`` (its listing).

    ``high_ms`` is when the listing was taken; ``in_band`` the names of the
    objects modified within ``band_ms`` before it. ``paths`` records what
    was read, so that a changed source starts afresh, as on Glue.
    """
    return {"high_ms": listed_at_ms, "paths": list(paths),
            "in_band": sorted(o["uri"] for o in objects if o["mtime_ms"] > listed_at_ms - band_ms)}
