"""Shared plumbing of the local stack, used by every service package.

- ``plane.py``: how a service plugs in (``Plane``, ``@operation``, ``@moto_hook``, ``@local_hook``);
- ``context.py``: what a plane gets (clients per principal, env, S3, clock, processes);
- ``errors.py``: AWS-shaped errors; ``server.py`` + ``wire.py``: the one HTTP endpoint;
- ``s3.py``: S3 URIs, reads, writes and the byte meter; ``principals.py``: who signed a request;
- ``tables.py``: one encoder of Arrow tables into data files (Parquet, ORC, Avro, CSV, JSON lines);
- ``iceberg.py``: Apache Iceberg tables in the Glue catalog (pyiceberg on the local endpoint);
- ``clock.py``, ``waiting.py``: time and waiting; ``processes.py``: child processes by PID;
- ``metrics.py``: a service's CloudWatch metrics, queued and sent by one background thread;
- ``cwlogs.py``: a service's CloudWatch Logs lines (group, stream, events);
- ``grok.py``: grok patterns as Python regexes (Glue's Grok classifiers, Athena's Grok SerDe);
- ``browser.py``: headless Chromium through Playwright (dashboard pages, browser tests);
- ``limits.py``: memory and CPU bounds of every engine; ``java.py``, ``jvm.py``, ``spark.py``:
  the JVM, locked jar sets, Spark settings.

``core`` imports no service package; service packages import ``core``
(and never each other). The stack's front door is ``localaws/stack.py``.
"""
from .errors import AWSError, not_emulated
from .plane import Plane, local_hook, moto_hook, moto_property, operation

__all__ = ["AWSError", "Plane", "local_hook", "moto_hook", "moto_property", "not_emulated", "operation"]
