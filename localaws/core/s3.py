"""Amazon S3 as every stand-in uses it: URIs, reads, writes, listings, and the byte meter.

S3 is where the analytics services meet: Athena reads tables from it, EMR
steps and Firehose write to it, Glue crawls it. Stand-ins reach it the way
AWS services do, through the S3 API of the stack's endpoint; this module
is the one place that does so.

**URIs.** ``s3://bucket/key`` (and the Hadoop spellings ``s3a://`` and
``s3n://``): :func:`split` and :func:`join`.

**Bytes scanned.** Athena bills by the bytes it actually read from S3, not
by the size of the table. To report that honestly, the endpoint counts the
body bytes of every ``GetObject`` response (range requests included) as it
sends them, and attributes them to the **access key** that signed the
request. A stand-in that wants a per-query figure signs its reads with a
key of its own (any key works locally), wraps the work in
``meter.track(key)`` and reads the total afterwards::

    with stack_s3.meter.track("ATHENAQ1234") as usage:
        stack_s3.read("s3://bucket/table/part-0.parquet", access_key="ATHENAQ1234")
    usage.bytes_read, usage.objects_opened, usage.requests

Concurrent queries use different keys, so each gets its own figure.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from urllib.parse import urlparse

SCHEMES = ("s3://", "s3a://", "s3n://")


# ------------------------------------------------------------------ URIs
def is_s3(uri: str) -> bool:
    return isinstance(uri, str) and uri.startswith(SCHEMES)


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b.csv`` -> ``("bucket", "a/b.csv")``; ValueError for other URIs."""
    if not is_s3(uri):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return bucket, key


def join(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def folder(uri: str) -> str:
    """``uri`` with exactly one trailing slash: the "folder" S3 prefixes stand for."""
    return uri if uri.endswith("/") else uri + "/"


# ------------------------------------------------------------------ metering
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


class Meter:
    """Counts GetObject body bytes per access key (the endpoint calls :meth:`record`)."""

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
            if usage is None:
                return
            usage.bytes_read += nbytes
            usage.requests += 1
            usage.objects.add((bucket, key))
            fire = usage.limit is not None and not usage.exceeded and usage.bytes_read > usage.limit
            usage.exceeded = usage.exceeded or fire
        if fire and usage.on_exceed is not None:
            usage.on_exceed()


# ------------------------------------------------------------------ access
class S3:
    """The stack's S3 for stand-ins: reads, writes and listings through the endpoint.

    ``client_for(access_key)`` makes (or reuses) a boto3 S3 client; with no
    key it signs as the stack's administrator. Reads signed with a tracked
    key are counted by :attr:`meter`.
    """

    def __init__(self, endpoint: str, region: str, client_for, meter: Meter | None = None):
        self.endpoint, self.region = endpoint, region
        self._client_for = client_for
        self.meter = meter or Meter()

    def client(self, access_key: str | None = None):
        return self._client_for(access_key)

    def bucket_exists(self, bucket: str) -> bool:
        s3 = self.client()
        try:
            s3.head_bucket(Bucket=bucket)
            return True
        except s3.exceptions.ClientError:
            return False

    def read(self, uri: str, start: int | None = None, end: int | None = None, *,
             access_key: str | None = None) -> bytes:
        """The object's bytes, or those from ``start`` to ``end`` (inclusive), as HTTP ranges go."""
        bucket, key = split(uri)
        kwargs = {}
        if start is not None or end is not None:
            kwargs["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        return self.client(access_key).get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()

    def download(self, uri: str, path: str, *, access_key: str | None = None) -> None:
        bucket, key = split(uri)
        self.client(access_key).download_file(bucket, key, path)

    def write(self, uri: str, body: bytes, **kwargs) -> str:
        """PutObject; returns ``uri``."""
        bucket, key = split(uri)
        self.client().put_object(Bucket=bucket, Key=key, Body=body, **kwargs)
        return uri

    def list(self, uri: str) -> list[dict]:
        """Every object under the prefix ``uri`` (ListObjectsV2 pages), as S3 returns them.

        A missing bucket raises the client's ``NoSuchBucket``.
        """
        bucket, prefix = split(uri)
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj for page in pages for obj in page.get("Contents", [])]

    def delete(self, uris) -> None:
        """Delete objects (DeleteObjects, 1,000 keys per request, as S3 allows)."""
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            bucket, key = split(uri)
            by_bucket.setdefault(bucket, []).append(key)
        s3 = self.client()
        for bucket, keys in by_bucket.items():
            for i in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})

    def filesystem(self, access_key: str):
        """A ``pyarrow.fs.S3FileSystem`` on the endpoint, signing with ``access_key``
        (so DuckDB and pyarrow readers are metered like any other reader)."""
        import pyarrow.fs as pafs
        host = self.endpoint.split("://", 1)[1]
        return pafs.S3FileSystem(access_key=access_key, secret_key="localaws", endpoint_override=host,
                                 scheme="http", region=self.region, allow_bucket_creation=False)


# --------------------------------------------------------------------- JVM engines (Hadoop S3A)

#: Hadoop's S3A connector classes: the FileSystem (``fs.<scheme>.impl``) and
#: the AbstractFileSystem that FileContext users (Structured Streaming
#: checkpoints) ask for (``fs.AbstractFileSystem.<scheme>.impl``).
S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
S3A_ABSTRACT_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3A"


def hadoop_s3a_settings(endpoint_url: str, access_key: str, secret_key: str,
                        region: str = "us-east-1") -> dict[str, str]:
    """Hadoop settings that serve ``s3://``, ``s3n://`` and ``s3a://`` from ``endpoint_url``.

    JVM engines (Spark, Flink) do not speak S3 themselves: they open paths
    through Hadoop's ``FileSystem`` API, and Hadoop's S3A connector does the S3
    calls. Spark passes these as ``spark.hadoop.X`` (``core/spark.py``), Flink
    as ``flink.hadoop.X`` (``core/flink.py``).
    """
    hadoop = {
        # Where S3 is: the local endpoint, plain HTTP, and the bucket in the
        # path (http://host/bucket/key) since a local endpoint has no DNS
        # name per bucket (bucket.s3.amazonaws.com).
        "fs.s3a.endpoint": endpoint_url,
        "fs.s3a.endpoint.region": region,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": str(urlparse(endpoint_url).scheme == "https").lower(),
        # Who signs: fixed keys, not the default chain (environment, profile,
        # EC2 instance role), which would find nothing or a real account.
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": access_key,
        "fs.s3a.secret.key": secret_key,
        # S3 Express One Zone buckets need a CreateSession call first; the
        # local endpoint has none, so never try it.
        "fs.s3a.s3express.create.session": "false",
        # AWS SDK 2.30+ sends a CRC checksum trailer with every upload unless
        # told "only when required", and some S3-compatible stores reject it.
        # Hadoop 3.5 already asks for "only when required" (its default);
        # pinned so a later default cannot change what the endpoint receives.
        # (moto 5.2 was checked to accept the trailers too.)
        "fs.s3a.checksum.generation": "false",
    }
    for scheme in ("s3", "s3n", "s3a"):
        # EMR's s3:// and the old s3n:// both become S3A here (see core/spark.py).
        hadoop[f"fs.{scheme}.impl"] = S3A_FILESYSTEM
        hadoop[f"fs.AbstractFileSystem.{scheme}.impl"] = S3A_ABSTRACT_FILESYSTEM
    return hadoop
