"""How AWS services deliver their logs to S3, and what every generator shares.

Many AWS services write logs straight into an S3 bucket you name: VPC Flow
Logs, Elastic Load Balancing access logs, CloudTrail, CloudFront, S3 server
access logs... They agree on a few habits, and the generators in this
package copy them so the files look exactly like what lands in a real bucket:

- **A fixed key layout** that starts with ``AWSLogs/<account-id>/<service>/
  <region>/YYYY/MM/DD/``. Athena tables and Glue crawlers partition on those
  path parts (``year``, ``month``, ``day``), which is why queries that say
  ``WHERE day = '2026/10/01'`` only read one day's files.
- **Batches, not single events**: a service buffers records for a few
  minutes (VPC Flow Logs and ALB every 5 minutes, CloudTrail about every 5
  minutes) and publishes one file per batch. A busy day is thousands of
  small gzip files -- the "many small files" problem in one sentence.
- **gzip compression** (``.log.gz``, ``.json.gz``). Readers decompress on the
  fly; Athena bills the compressed bytes it reads.
- **A unique suffix** in each file name (a hash or a random string) so two
  batches never overwrite each other. It carries no meaning.

Everything here is deterministic: generators take a ``seed`` and use
``random.Random(seed)``; times start from :data:`BASE_TIME`
(2026-10-01T00:00:00Z), never from the clock; gzip headers carry
``mtime=0``. The same seed therefore gives byte-identical files, which is
what lets notebooks show them under nbval.

Public IP addresses are drawn only from the ranges reserved for
documentation (RFC 5737: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), so
the generated logs never name a real host on the internet.
"""
from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path

from localaws.core.tables import compress

#: The local stack's defaults (moto's default account id and region).
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

#: Every generated data set starts here (a fixed date, never "now").
BASE_TIME = datetime(2026, 10, 1, tzinfo=timezone.utc)

#: How often VPC Flow Logs, ALB and CloudTrail publish a file.
DELIVERY_INTERVAL = timedelta(minutes=5)

_ALPHANUMERIC = string.ascii_letters + string.digits


def floor_time(moment: datetime, interval: timedelta = DELIVERY_INTERVAL) -> datetime:
    """The start of the ``interval``-long window that contains ``moment``."""
    seconds = int(interval.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=timezone.utc)


def compact_utc(moment: datetime) -> str:
    """``20261001T0005Z``: the minute-precision UTC stamp used in log file names."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%MZ")


def iso_utc(moment: datetime, *, micros: bool = False) -> str:
    """ISO 8601 in UTC with a ``Z``: ``2026-10-01T00:05:00Z`` (or ``...00.123456Z``)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micros else "%Y-%m-%dT%H:%M:%SZ")


def aws_logs_prefix(account_id: str, service: str, region: str, day: datetime) -> str:
    """``AWSLogs/<account>/<service>/<region>/YYYY/MM/DD``: the standard delivery folder."""
    return f"AWSLogs/{account_id}/{service}/{region}/{day:%Y/%m/%d}"


def write_gzip(path: Path, text: str) -> Path:
    """Write ``text`` gzip-compressed, with ``mtime=0`` so reruns give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(compress(text.encode("utf-8"), "gzip"))
    return path


def random_string(rng: random.Random, length: int, alphabet: str = _ALPHANUMERIC) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def random_hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def random_uuid(rng: random.Random) -> str:
    """A version-4-shaped UUID drawn from ``rng`` (so it is reproducible)."""
    h = random_hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"


def documentation_ip(rng: random.Random, networks=("192.0.2", "198.51.100")) -> str:
    """A public-looking IPv4 address from the RFC 5737 documentation ranges."""
    return f"{rng.choice(networks)}.{rng.randint(1, 254)}"


def spread_times(rng: random.Random, n: int, start: datetime, duration: timedelta) -> list[datetime]:
    """``n`` sorted random instants in ``[start, start + duration)``, microsecond precision."""
    span = int(duration.total_seconds() * 1_000_000)
    offsets = sorted(rng.randrange(span) for _ in range(n))
    return [start + timedelta(microseconds=offset) for offset in offsets]


def group_by_window(items, moment_of, interval: timedelta = DELIVERY_INTERVAL) -> dict:
    """Group ``items`` by the delivery window of ``moment_of(item)``, in time order."""
    groups: dict[datetime, list] = {}
    for item in items:
        groups.setdefault(floor_time(moment_of(item), interval), []).append(item)
    return dict(sorted(groups.items()))
