"""One way to wait for something to happen, with a deadline.

On AWS you wait by *polling*: call DescribeCluster or GetQueryExecution
every few seconds until the state changes (boto3's waiters do exactly that).
Inside the stack we know more, so we wait better:

- work we submitted to a thread pool is a ``Future``: wait on it, no polling;
- state we change ourselves (a buffer emptied, an invocation finished) is
  guarded by a ``threading.Condition``: the code that changes it calls
  ``notify_all()``, and waiters wake at once;
- state that lives in another process (a Spark worker registering with its
  master, a server opening its port) can only be observed: poll it, at a
  stated interval, until a deadline.

:func:`wait_until` covers all three, and returns False (never raises) when
the deadline passes, so the caller decides what a timeout means.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Callable


def wait_until(predicate: Callable[[], bool] | None = None, timeout: float | None = 60, *,
               future: concurrent.futures.Future | None = None,
               condition: threading.Condition | None = None,
               poll: float = 0.1) -> bool:
    """Wait until ``predicate()`` holds (or ``future`` is done); True if it did in time.

    - ``future``: wait for it to finish (its result or exception is the
      caller's business); ``predicate`` is then optional.
    - ``condition``: ``predicate`` is checked under it and re-checked each
      time someone calls ``condition.notify_all()``.
    - neither: ``predicate`` is polled every ``poll`` seconds.

    ``timeout=None`` waits for ever.
    """
    if future is not None:
        concurrent.futures.wait([future], timeout=timeout)
        return future.done() and (predicate is None or predicate())
    if predicate is None:
        raise TypeError("wait_until needs a predicate or a future")
    if condition is not None:
        with condition:
            return condition.wait_for(predicate, timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
