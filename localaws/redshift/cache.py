"""Redshift's result cache: the same query on unchanged tables is answered from memory.

Redshift keeps the results of recent SELECTs in the leader node's memory.
When a query arrives whose text is the same as a cached one, and none of
the tables it reads has changed since, the leader returns the cached rows
without running anything on the compute nodes. SVL_QLOG shows it: the
query's ``source_query`` is the ID of the query whose result was reused
(SYS_QUERY_HISTORY: ``result_cache_hit``). ``SET
enable_result_cache_for_session TO off`` turns it off.

How it works here:

- Each distributed table has a *version*, a number raised by every write to
  it (INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY, DROP, CREATE), and by
  VACUUM, which rewrites its blocks.
- A cached entry keeps the query's text and parameters, its result, the
  tables it read and their versions at the time it ran. A lookup succeeds
  only when every one of those versions is still the same: any write to
  a referenced table invalidates the entry.
- A result is stored only if no write to its tables happened while the
  query ran (the versions are read before and compared after).
- Transactions (``engine.Session``): a write inside a ``BEGIN`` ... block
  raises its tables' versions when the block COMMITs, just after DuckDB made
  its rows visible, never before (a query in between would store the old
  rows under the new versions); a ROLLBACK raises nothing, since nothing
  changed. A query inside a block neither reads nor fills the cache: it sees
  its own snapshot and its own uncommitted rows, which no other session may
  be served. So every cached result holds committed rows only.

Not cached, as on Redshift: queries with functions evaluated at each run
(GETDATE, RANDOM...), over system tables and views, over Spectrum's
external tables. And, a local simplification: queries over views or
temporary tables (only the distributed tables' versions are tracked). The
switch ``enable_result_cache_for_session`` is per session on Redshift;
here it applies to the whole cluster.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

#: Entries kept (the least recently used goes first); results larger than this many rows are not kept.
MAX_ENTRIES = 100
MAX_ROWS = 100_000

#: Functions whose value changes from one run to the next: their queries are never cached.
VOLATILE = re.compile(r"\b(getdate|sysdate|now|random|current_date|current_time|current_timestamp|"
                      r"timeofday|localtimestamp|uuid|gen_random_uuid|nextval)\b", re.IGNORECASE)

#: Prefixes of Redshift's system tables and views.
SYSTEM = ("stl_", "stv_", "svl_", "svv_", "sys_", "pg_", "svcs_", "stcs_", "information_schema")


@dataclass
class Entry:
    query_id: int                  # the query that computed the result (SVL_QLOG.source_query)
    versions: dict                 # (schema, table) -> version when it ran
    result: object                 # the engine's Result


class ResultCache:
    """The leader's cache of query results, keyed by query text and parameters."""

    def __init__(self):
        self.enabled = True
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.versions: dict[tuple, int] = {}

    @staticmethod
    def key(sql: str, params) -> tuple:
        return sql, tuple(repr(p) for p in params or ())

    @staticmethod
    def cacheable_text(sql: str) -> bool:
        """Can a query with this text be cached at all? (no volatile function, no system view)"""
        lowered = sql.lower()
        return VOLATILE.search(sql) is None and not any(re.search(rf"\b{p}", lowered) for p in SYSTEM)

    def snapshot(self, tables) -> dict:
        """The current versions of ``tables`` ((schema, name) pairs)."""
        with self.lock:
            return {t: self.versions.get(t, 0) for t in tables}

    def get(self, key: tuple) -> Entry | None:
        """The valid entry for ``key``, or None (an outdated entry is dropped)."""
        if not self.enabled:
            return None
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return None
            if any(self.versions.get(t, 0) != v for t, v in entry.versions.items()):
                del self.entries[key]
                return None
            self.entries.move_to_end(key)
            return entry

    def put(self, key: tuple, query_id: int, versions: dict, result) -> None:
        """Keep ``result`` if the tables are still at ``versions`` (no write ran meanwhile)."""
        if not self.enabled or len(result.rows) > MAX_ROWS:
            return
        with self.lock:
            if any(self.versions.get(t, 0) != v for t, v in versions.items()):
                return
            self.entries[key] = Entry(query_id, versions, result)
            self.entries.move_to_end(key)
            while len(self.entries) > MAX_ENTRIES:
                self.entries.popitem(last=False)

    def written(self, tables) -> None:
        """A write changed ``tables``: every entry that read one of them is now outdated."""
        with self.lock:
            for table in tables:
                self.versions[table] = self.versions.get(table, 0) + 1
