"""The work behind the Glue plane's crawlers: each crawl in a background thread.

``api.py`` answers the requests; this module runs the crawls they start and
keeps what moto does not: each crawl's state, outcome and timings, and what
the next crawl of the same crawler needs (the folders already crawled, for
``RecrawlPolicy`` ``CRAWL_NEW_FOLDERS_ONLY``). The crawling itself (reading
S3, classifying, writing the catalog) is ``crawler.crawl``. Job runs are
``jobs.py``'s.

A crawler's life, as Glue reports it:

- ``GetCrawler`` ``State``: ``READY`` -> ``RUNNING`` (StartCrawler) ->
  ``STOPPING`` (the crawl is finishing, or StopCrawler was called) -> ``READY``;
- ``LastCrawl.Status``: ``SUCCEEDED``, ``CANCELLED`` (stopped) or ``FAILED``
  (with ``ErrorMessage``);
- ``ListCrawls``: one entry per crawl, ``State`` ``RUNNING``, ``COMPLETED``,
  ``STOPPED`` or ``FAILED``, with a ``Summary`` of what changed.
"""
from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from localaws.core import cwlogs

LOG_GROUP = "/aws-glue/crawlers"        # Glue's log group for every crawler; the stream is the crawler's name


@dataclass
class Crawl:
    """One crawl of one crawler."""
    crawler: str
    crawl_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "RUNNING"              # RUNNING, STOPPING, COMPLETED, STOPPED, FAILED
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended: datetime | None = None
    started_mono: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    error: str | None = None
    outcome: object | None = None       # crawler.CrawlOutcome
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def crawler_state(self) -> str:
        """The crawler's ``State`` while this is its latest crawl."""
        return self.state if self.state in ("RUNNING", "STOPPING") else "READY"

    @property
    def last_status(self) -> str:
        """``LastCrawl.Status``: SUCCEEDED, CANCELLED or FAILED (RUNNING while it runs)."""
        return {"COMPLETED": "SUCCEEDED", "STOPPED": "CANCELLED"}.get(self.state, self.state)

    def elapsed_ms(self) -> int:
        end = self.seconds if self.seconds is not None else time.monotonic() - self.started_mono
        return int(end * 1000)

    def summary(self) -> str:
        """What ListCrawls' ``Summary`` holds: the changes, as a JSON string."""
        o = self.outcome
        if o is None:
            return json.dumps({})
        return json.dumps({"TABLE": {"ADD": {"Count": len(o.tables_created)},
                                     "UPDATE": {"Count": len(o.tables_updated)},
                                     "DELETE": {"Count": len(o.tables_deleted)}},
                           "PARTITION": {"ADD": {"Count": o.partitions_created},
                                         "UPDATE": {"Count": o.partitions_updated},
                                         "DELETE": {"Count": o.partitions_deleted}}}, sort_keys=True)


class Engine:
    """The crawls of the stack's crawlers, by (Region, crawler name)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.crawls: dict[tuple[str, str], list[Crawl]] = {}
        self.by_id: dict[str, Crawl] = {}           # crawl id -> crawl (moto's FakeCrawl has the same id)
        self.recrawl_state: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()

    def latest(self, region: str, name: str) -> Crawl | None:
        found = self.crawls.get((region, name))
        return found[-1] if found else None

    def start(self, region: str, crawler: dict, classifiers: list[dict]) -> Crawl:
        """Begin a crawl of ``crawler`` (GetCrawler's dict) in a thread; returns at once."""
        key = (region, crawler["Name"])
        crawl = Crawl(crawler["Name"])
        with self._lock:
            self.crawls.setdefault(key, []).append(crawl)
            self.by_id[crawl.crawl_id] = crawl
        crawl.thread = threading.Thread(target=self._run, args=(region, crawler, classifiers, crawl),
                                        name=f"glue-crawl-{crawler['Name']}", daemon=True)
        crawl.thread.start()
        return crawl

    def request_stop(self, crawl: Crawl) -> None:
        """StopCrawler: the crawl finishes the table in hand, writes nothing more, ends STOPPED."""
        crawl.stop.set()
        if crawl.state == "RUNNING":
            crawl.state = "STOPPING"

    def _run(self, region: str, crawler: dict, classifiers: list[dict], crawl: Crawl) -> None:
        key = (region, crawler["Name"])
        lines: list[str] = []
        log = lines.append
        log(f"[{crawl.crawl_id}] BENCHMARK : Running Start Crawl for Crawler {crawler['Name']}")
        try:
            from .crawler import crawl as run_crawl
            outcome = run_crawl(self.ctx.client("glue", region_name=region), self.ctx.client("s3"),
                                crawler, classifiers, self.recrawl_state.get(key), crawl.stop,
                                lambda line: log(f"[{crawl.crawl_id}] {line}"))
            crawl.outcome = outcome
            crawl.error = outcome.error
        except Exception as exc:       # noqa: BLE001 - a crawl's failure is reported, never raised
            crawl.error = f"Internal Service Exception: {type(exc).__name__}: {exc}"
        if crawl.state == "RUNNING":
            crawl.state = "STOPPING"      # Glue's crawler passes through STOPPING after every crawl
        if crawl.error is None and not crawl.stop.is_set() and crawl.outcome is not None:
            self.recrawl_state[key] = crawl.outcome.state
        log(f"[{crawl.crawl_id}] BENCHMARK : Crawler has finished running and is in state READY")
        try:
            cwlogs.append(self.ctx.client("logs", region_name=region), LOG_GROUP, crawler["Name"], lines)
        except Exception:             # noqa: BLE001 - a log that cannot be written must not fail the crawl
            pass
        crawl.seconds = time.monotonic() - crawl.started_mono
        crawl.ended = datetime.now(timezone.utc)
        crawl.state = "FAILED" if crawl.error else ("STOPPED" if crawl.stop.is_set() else "COMPLETED")

    def metrics(self, region: str, name: str) -> dict:
        """GetCrawlerMetrics' entry for one crawler, from its finished crawls."""
        crawls = self.crawls.get((region, name), [])
        done = [c for c in crawls if c.seconds is not None]
        last = done[-1] if done else None
        running = crawls[-1] if crawls and crawls[-1].seconds is None else None
        outcome = last.outcome if last is not None else None
        median = statistics.median(c.seconds for c in done) if done else 0.0
        return {
            "CrawlerName": name,
            "TimeLeftSeconds": 0.0,
            "StillEstimating": running is not None,
            "LastRuntimeSeconds": round(last.seconds, 3) if last else 0.0,
            "MedianRuntimeSeconds": round(median, 3),
            "TablesCreated": len(outcome.tables_created) if outcome else 0,
            "TablesUpdated": len(outcome.tables_updated) if outcome else 0,
            "TablesDeleted": len(outcome.tables_deleted) if outcome else 0,
        }

    def stop(self) -> None:
        """Stop every crawl in progress and wait for its thread (each checks ``stop`` between tables)."""
        crawls = [c for found in self.crawls.values() for c in found if c.thread is not None]
        for crawl in crawls:
            crawl.stop.set()
        for crawl in crawls:
            crawl.thread.join(timeout=30)
