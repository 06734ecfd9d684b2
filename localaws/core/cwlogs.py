"""Writing CloudWatch Logs the way AWS services do: a group per service or resource, a stream per run.

Lambda writes ``/aws/lambda/<function>``, Glue ``/aws-glue/crawlers`` and
``/aws-glue/jobs/output``... Every stand-in writes its logs through the
stack's own ``logs`` API (moto keeps them), so a learner reads them with
``logs.get_log_events`` or ``filter_log_events`` exactly as on AWS.
"""
from __future__ import annotations

import time

#: CloudWatch Logs (and moto) refuse events more than 2 hours in the future. A stand-in that stamps its
#: lines with the stack's clock, advanced by a notebook, gets its lines kept at that limit instead.
FUTURE_LIMIT_MS = 2 * 3600 * 1000 - 60_000

#: Events per PutLogEvents call: AWS takes at most 10,000; long logs (a Spark driver's) go in several calls.
BATCH = 5000


def append(logs, group: str, stream: str, lines: list[str], timestamp_ms: int | None = None) -> None:
    """Add ``lines`` to ``group``/``stream`` (both made when missing), one log event per line,
    in as many PutLogEvents calls as :data:`BATCH` requires."""
    if not lines:
        return
    for create, kwargs in ((logs.create_log_group, {"logGroupName": group}),
                           (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
        try:
            create(**kwargs)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
    real = int(time.time() * 1000)
    now = real if timestamp_ms is None else min(timestamp_ms, real + FUTURE_LIMIT_MS)
    for start in range(0, len(lines), BATCH):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now, "message": line} for line in lines[start:start + BATCH]])
