"""CloudWatch metrics of a service, sent from a background thread so that its calls stay fast.

Services publish what they measured to CloudWatch under their own namespace
and one dimension naming the resource: Kinesis ``AWS/Kinesis`` with
``StreamName`` (IncomingRecords, GetRecords.IteratorAgeMilliseconds...),
Firehose ``AWS/Firehose`` with ``DeliveryStreamName`` (IncomingRecords,
DeliveryToS3.Records, DeliveryToRedshift.Success...). AWS aggregates them per
minute and they appear a minute or so later; here each data point carries the
stack's time of the moment that measured it and reaches CloudWatch a few
milliseconds later.

Sending it inside the call would make every PutRecord about three times
slower (a second HTTP request each), so the data points wait in a queue that
one thread sends through the CloudWatch API, as any client would: it lets the
calls of 50 ms gather, then sends them in batches of up to 1,000 (the
PutMetricData limit). ``flush`` sends at once; ``stop`` sends what is left.

One :class:`MetricsPublisher` per plane: ``MetricsPublisher(cloudwatch,
"AWS/Firehose", "DeliveryStreamName")`` where ``cloudwatch(region)`` returns a
boto3 CloudWatch client of the stack.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Callable

log = logging.getLogger("localaws")
BATCH = 1000             # MetricData entries per PutMetricData call
GATHER_SECONDS = 0.05    # real time a burst of calls may gather into one request


class MetricsPublisher:
    """``publish`` queues data points; a thread (started on first use) sends them."""

    def __init__(self, cloudwatch: Callable[[str], object], namespace: str, dimension: str):
        self._cloudwatch = cloudwatch          # region -> CloudWatch client
        self.namespace = namespace             # "AWS/Kinesis", "AWS/Firehose"
        self.dimension = dimension             # "StreamName", "DeliveryStreamName"
        self._cond = threading.Condition()
        self._queue: list[tuple[str, dict]] = []   # (region, MetricData entry)
        self._sending = False
        self._flushing = 0                       # callers of flush() waiting: send at once
        self._stopped = False
        self._thread: threading.Thread | None = None

    def publish(self, region: str, resource: str, metrics: list[tuple[str, float, str]], when,
                more: dict[str, str] | None = None) -> None:
        """Queue ``[(metric name, value, unit)]`` of one resource (a stream), measured at ``when``;
        ``more`` adds dimensions after the resource's (MSK: ``{"Broker ID": "1"}``)."""
        dims = [{"Name": self.dimension, "Value": resource}]
        dims += [{"Name": name, "Value": value} for name, value in (more or {}).items()]
        entries = [(region, {"MetricName": n, "Dimensions": dims, "Value": v, "Unit": u, "Timestamp": when})
                   for n, v, u in metrics]
        with self._cond:
            if self._stopped or not entries:
                return
            self._queue.extend(entries)
            if self._thread is None:
                name = "localaws-metrics-" + self.namespace.split("/")[-1].lower()
                self._thread = threading.Thread(target=self._run, name=name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopped)
                if not self._queue:
                    return                         # stopped, nothing left to send
                self._cond.wait_for(lambda: self._stopped or self._flushing, GATHER_SECONDS)
                batch, self._queue, self._sending = self._queue, [], True
            try:
                self._send(batch)
            except Exception:                      # a lost metric must not stop the next ones
                log.debug("could not publish %s metrics", self.namespace, exc_info=True)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _send(self, batch: list[tuple[str, dict]]) -> None:
        by_region = defaultdict(list)
        for region, entry in batch:
            by_region[region].append(entry)
        for region, entries in by_region.items():
            for i in range(0, len(entries), BATCH):
                self._cloudwatch(region).put_metric_data(Namespace=self.namespace,
                                                         MetricData=entries[i:i + BATCH])

    def flush(self, timeout: float = 10) -> bool:
        """Wait until every queued data point was sent (True), or ``timeout`` seconds passed."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: not self._queue and not self._sending, timeout)
            finally:
                self._flushing -= 1

    def stop(self) -> None:
        """Send what is queued, then end the thread."""
        self.flush(5)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
