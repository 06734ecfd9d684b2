"""A stream's CloudWatch metrics: the shared publisher of ``localaws/core/metrics.py``.

Kinesis publishes its stream-level metrics to CloudWatch (namespace
``AWS/Kinesis``, dimension ``StreamName``): IncomingRecords, IncomingBytes,
WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded,
GetRecords.Records, GetRecords.Bytes, GetRecords.IteratorAgeMilliseconds...
(https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html).
They are queued and sent from a background thread (see the core module for why).
"""
from __future__ import annotations

from typing import Callable

from localaws.core.metrics import MetricsPublisher as _Publisher


class MetricsPublisher(_Publisher):
    """The core publisher, for namespace ``AWS/Kinesis`` and dimension ``StreamName``."""

    def __init__(self, cloudwatch: Callable[[str], object]):
        super().__init__(cloudwatch, "AWS/Kinesis", "StreamName")
