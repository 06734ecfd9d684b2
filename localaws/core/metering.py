"""Counting the bytes S3 really sends, per reader.

Athena bills by *bytes scanned*: what the engine actually read from S3, not
the size of the table. To report that honestly, the endpoint counts the
body bytes of every ``GetObject`` response (range requests included) as it
sends them, and attributes them to the **access key** that signed the
request. A data plane that wants a per-query figure gives each query its own
access key (the local endpoint accepts any key), wraps the work in
``meter.track(key)`` and reads the total afterwards::

    with ctx.s3_meter.track("ATHENAQ-1234") as usage:
        ... read s3://... signing with access key "ATHENAQ-1234" ...
    usage.bytes_read, usage.objects_opened, usage.requests

Concurrent queries use different keys, so each gets its own figure.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field


@dataclass
class Usage:
    """What one reader took from S3."""
    bytes_read: int = 0
    requests: int = 0
    objects: set = field(default_factory=set)   # (bucket, key) pairs read
    limit: int | None = None
    on_exceed: object = None
    exceeded: bool = False

    @property
    def objects_opened(self) -> int:
        return len(self.objects)


class S3Meter:
    def __init__(self):
        self._lock = threading.Lock()
        self._active: dict[str, Usage] = {}

    @contextlib.contextmanager
    def track(self, access_key: str, limit: int | None = None, on_exceed=None):
        """Count every GetObject signed with ``access_key`` while inside.

        With ``limit``, ``on_exceed()`` is called once, as soon as the count
        passes it (Athena's per-query bytes-scanned cutoff uses this).
        """
        usage = Usage(limit=limit, on_exceed=on_exceed)
        with self._lock:
            self._active[access_key] = usage
        try:
            yield usage
        finally:
            with self._lock:
                self._active.pop(access_key, None)

    def record(self, access_key: str | None, bucket: str, key: str, nbytes: int) -> None:
        """Called by the endpoint for each GetObject response it sends."""
        if access_key is None:
            return
        with self._lock:
            usage = self._active.get(access_key)
            if usage is not None:
                usage.bytes_read += nbytes
                usage.requests += 1
                usage.objects.add((bucket, key))
                fire = (usage.limit is not None and not usage.exceeded
                        and usage.bytes_read > usage.limit)
                usage.exceeded = usage.exceeded or fire
            else:
                fire = False
        if fire and usage.on_exceed is not None:
            usage.on_exceed()
