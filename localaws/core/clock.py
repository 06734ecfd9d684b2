"""The stack's clock: real time by default, simulated time on request.

Some lessons are about *time*: Firehose delivers a buffer when its
``IntervalInSeconds`` (60 s or more) has passed, a Kinesis stream keeps
records for its retention period (24 hours by default). Waiting that long in
a notebook teaches nothing, so every stand-in that reasons about time asks
the stack's :class:`Clock` instead of ``time.time()``:

- by default the clock *is* real time;
- ``clock.freeze()`` stops it: from then on time only moves when a notebook
  calls ``clock.advance(60)``, and everything waiting for a deadline in that
  minute (a Firehose buffer, say) wakes up and acts at once, through the same
  code path as in real time;
- ``clock.resume()`` lets it run again from where it stands (ahead of the
  wall clock if it was advanced).

A stand-in's background thread waits on its own ``threading.Condition``
through :meth:`Clock.wait`, after registering it with :meth:`Clock.watch`, so
that ``advance`` can wake it. This is local-only: AWS's clock cannot be
advanced (``stack.local.clock`` raises on the AWS target).
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

#: Readings are large floats: 0.2 s after 847586.3032002954 is 0.19999999995 s
#: after it, and ``t + 899 + 1`` need not equal ``t + 900``. Deadlines and rates
#: compare with this much slack (a microsecond), so "advance by the interval"
#: always reaches the interval.
RESOLUTION = 1e-6


def reached(now: float, deadline: float) -> bool:
    """Whether the reading ``now`` is at or past ``deadline``, to :data:`RESOLUTION`."""
    return now + RESOLUTION >= deadline


class Clock:
    """Monotonic and wall-clock time for the stand-ins, which a notebook may freeze and advance."""

    def __init__(self):
        self._lock = threading.Lock()
        self._offset = 0.0                 # seconds ahead of the real clocks
        self._frozen_at: float | None = None   # monotonic reading while frozen
        self._watched: list[threading.Condition] = []

    # -- reading -----------------------------------------------------------------
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (like ``time.monotonic``)."""
        with self._lock:
            return self._frozen_at if self._frozen_at is not None else time.monotonic() + self._offset

    def time(self) -> float:
        """Seconds since the epoch, as the stand-ins see it (like ``time.time``)."""
        return time.time() + (self.monotonic() - time.monotonic())

    def now(self) -> datetime:
        """The current UTC date and time, timezone-aware."""
        return datetime.fromtimestamp(self.time(), timezone.utc)

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    # -- changing ----------------------------------------------------------------
    def freeze(self) -> None:
        """Stop time where it is; only :meth:`advance` moves it from now on."""
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = time.monotonic() + self._offset
        self._wake()

    def resume(self) -> None:
        """Let time run again, from the (possibly advanced) reading it has now."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.monotonic()
                self._frozen_at = None
        self._wake()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every stand-in waiting on it."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        self._wake()

    # -- waiting -----------------------------------------------------------------
    def watch(self, condition: threading.Condition) -> None:
        """Have :meth:`advance`, :meth:`freeze` and :meth:`resume` notify ``condition``."""
        with self._lock:
            self._watched.append(condition)

    def unwatch(self, condition: threading.Condition) -> None:
        with self._lock:
            if condition in self._watched:
                self._watched.remove(condition)

    def wait(self, condition: threading.Condition, seconds: float | None) -> None:
        """Wait on ``condition`` (held by the caller) for ``seconds`` of *this* clock.

        Frozen, only a notification (a put, ``advance``...) ends the wait:
        real seconds passing do not move a frozen clock.
        """
        if seconds is not None and self.frozen:
            seconds = None
        condition.wait(timeout=None if seconds is None else max(0.0, seconds))

    def _wake(self) -> None:
        with self._lock:
            watched = list(self._watched)
        for condition in watched:
            with condition:
                condition.notify_all()
