"""Delivery to Amazon Redshift: an S3 object, a manifest, then a COPY on the cluster.

Firehose never inserts rows one by one. For a ``RedshiftDestinationConfiguration``
each buffered batch goes through two steps, as the developer guide describes [1]:

1. **Stage**: the batch's bytes are written to the *intermediate* bucket of
   ``S3Configuration`` (one object, named as for an S3 destination:
   ``<Prefix>yyyy/MM/dd/HH/<stream>-<version>-<timestamp>-<uuid>``, ``.gz``
   with ``CompressionFormat=GZIP``), and a **manifest** naming that object
   (``{"entries": [{"url": "s3://...", "mandatory": true}]}``) is written
   next to it, under ``<Prefix>manifests/yyyy/MM/dd/HH/``.
2. **Load**: Firehose connects to the cluster at ``ClusterJDBCURL``
   (``jdbc:redshift://<address>:<port>/<database>``) as ``Username`` (or the
   user of ``SecretsManagerConfiguration``'s secret) and runs

   ``COPY <DataTableName> (<DataTableColumns>) FROM 's3://<bucket>/<manifest>'
   CREDENTIALS 'aws_iam_role=<RoleARN>' MANIFEST <CopyOptions>``

   so ``CopyOptions`` must describe the staged bytes (``JSON 'auto'``, ``CSV``,
   ``GZIP``...). Here the client is ``redshift_connector`` (AWS's driver) on
   the cluster's endpoint, without SSL: the local cluster serves the
   PostgreSQL protocol there, as a cluster on AWS does.

A COPY that fails (no such table, more bad rows than ``MAXERROR``, a paused
cluster that refuses connections) is **retried** for
``RetryOptions.DurationInSeconds`` (default 3600, 0 = no retry) of the stack's
clock, counted from the first attempt [2]; the buffer's backoff spaces the
attempts (1 s doubling to 30 s). Once the window is over, Firehose "skips that
particular batch of S3 objects" and writes its manifest to the ``errors/``
folder of the bucket [3] (here ``<Prefix>errors/manifests/yyyy/MM/dd/HH/``,
the same file name), so that you can COPY it yourself later: the staged object
is never deleted, nothing is lost. Those records count as *failed*:
``records_in = delivered + failed``.

[1] https://docs.aws.amazon.com/firehose/latest/dev/basic-deliver.html
[2] https://docs.aws.amazon.com/firehose/latest/APIReference/API_RedshiftRetryOptions.html
[3] https://docs.aws.amazon.com/firehose/latest/dev/retry.html ("Amazon Redshift")
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass

from localaws.core import s3 as s3uri
from . import prefixes
from .buffer import Batch, Key, Outcome

KIND = "Redshift"
DEFAULT_RETRY_SECONDS = 3600
CONNECT_TIMEOUT = 10          # seconds to reach the cluster before the attempt counts as failed
#: ClusterJDBCURL. AWS's pattern also wants a ``.redshift.`` host name; a local
#: cluster's address is 127.0.0.1, so any host is accepted here.
JDBC_URL = re.compile(r"^jdbc:(redshift|postgresql)://([^:/]+):(\d{1,5})/([A-Za-z0-9_$-]+)$")
COPY_STAGE = "copy"
NO_SIZE_LIMIT = 1 << 62       # a copy buffer holds one manifest: only the interval (0) cuts it


@dataclass
class Pending:
    """A manifest waiting for its COPY to succeed."""
    bucket: str
    manifest: str             # its key in the intermediate bucket
    first_attempt: float | None = None    # the clock's monotonic reading
    attempts: int = 0
    last_error: str = ""


def parse_jdbc_url(url: str) -> tuple[str, int, str]:
    """``jdbc:redshift://host:5439/dev`` -> ``("host", 5439, "dev")``; ValueError otherwise."""
    match = JDBC_URL.match(url or "")
    if match is None:
        raise ValueError(f"ClusterJDBCURL {url!r} is not jdbc:redshift://<address>:<port>/<database>")
    return match.group(2), int(match.group(3)), match.group(4)


def copy_sql(config: dict, bucket: str, manifest: str) -> str:
    """The COPY Firehose issues for one manifest."""
    command = config.get("CopyCommand") or {}
    columns = (command.get("DataTableColumns") or "").strip()
    role = config.get("RoleARN", "")
    return (f"COPY {command['DataTableName']}{f' ({columns})' if columns else ''} "
            f"FROM 's3://{bucket}/{manifest}' CREDENTIALS 'aws_iam_role={role}' MANIFEST "
            f"{command.get('CopyOptions') or ''}").strip()


def retry_seconds(config: dict) -> float:
    return float((config.get("RetryOptions") or {}).get("DurationInSeconds", DEFAULT_RETRY_SECONDS))


class RedshiftLoader:
    """Stages batches in S3 and loads them with COPY; ``publish(stream, [(name, value, unit)])``
    sends CloudWatch data points."""

    def __init__(self, ctx, put_object, object_key, publish):
        self.ctx = ctx
        self._put_object = put_object        # (s3_conf, key, body)
        self._object_key = object_key        # (stream, config, prefix, when, ext) -> key
        self._publish = publish
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    # -- step 1: the intermediate object and its manifest ----------------------------------
    def stage(self, stream, s3_conf: dict, batch: Batch, when, outcome: Outcome) -> None:
        """Write the batch and its manifest; the records wait in a copy buffer of their own."""
        body, ext = b"".join(r.data for r in batch.records), ""
        if s3_conf.get("CompressionFormat") == "GZIP":
            from localaws.core.tables import compress
            body, ext = compress(body, "gzip"), ".gz"
        bucket = s3_conf["BucketARN"].split(":")[-1]
        key = self._object_key(stream, s3_conf, prefixes.object_prefix(s3_conf.get("Prefix"), when), when, ext)
        self._put_object(s3_conf, key, body)
        name = key.rsplit("/", 1)[-1]
        manifest = (s3_conf.get("Prefix") or "") + "manifests/" + prefixes.format_time(prefixes.DEFAULT_TIME, when) \
            + name
        entries = {"entries": [{"url": f"s3://{bucket}/{key}", "mandatory": True}]}
        self._put_object(s3_conf, manifest, json.dumps(entries).encode())
        with self._lock:
            self._pending[manifest] = Pending(bucket, manifest)
        outcome.info.update(key=key, manifest=manifest)
        outcome.forward.append((Key(stream.delivery_stream_name, COPY_STAGE, manifest), NO_SIZE_LIMIT, 0.0,
                                list(batch.records)))

    # -- step 2: COPY, retried for RetryOptions.DurationInSeconds ---------------------------
    def load(self, stream, config: dict, s3_conf: dict, batch: Batch) -> Outcome:
        """One COPY attempt of the manifest ``batch.key.part``; raising asks the buffer to retry."""
        manifest = batch.key.part
        with self._lock:
            pending = self._pending.setdefault(manifest, Pending(s3_conf["BucketARN"].split(":")[-1], manifest))
        now = self.ctx.clock.monotonic()
        if pending.first_attempt is None:
            pending.first_attempt = now
        records = batch.records
        size = sum(len(r.data) for r in records)
        if pending.attempts and now - pending.first_attempt >= retry_seconds(config):
            return self._give_up(stream, s3_conf, pending, records)      # the window ended meanwhile
        try:
            loaded = self._copy(config, pending)
        except Exception as exc:
            pending.attempts += 1
            pending.last_error = f"{type(exc).__name__}: {exc}"
            self._publish(stream, [("DeliveryToRedshift.Success", 0, "Count")])
            if self.ctx.clock.monotonic() - pending.first_attempt >= retry_seconds(config):
                return self._give_up(stream, s3_conf, pending, records)
            raise CopyFailed(f"COPY of {manifest} failed (attempt {pending.attempts}): {exc}") from None
        with self._lock:
            self._pending.pop(manifest, None)
        self._publish(stream, [("DeliveryToRedshift.Records", len(records), "Count"),
                               ("DeliveryToRedshift.Bytes", size, "Bytes"),
                               ("DeliveryToRedshift.Success", 1, "Count")])
        return Outcome(delivered=list(records),
                       info={"manifest": manifest, "records": len(records), "rows_loaded": loaded,
                             "attempts": pending.attempts + 1, "table": config["CopyCommand"]["DataTableName"]})

    def _copy(self, config: dict, pending: Pending) -> int | None:
        import redshift_connector
        host, port, database = parse_jdbc_url(config.get("ClusterJDBCURL"))
        user, password = self._credentials(config)
        conn = redshift_connector.connect(host=host, port=port, database=database, user=user,
                                          password=password, ssl=False, timeout=CONNECT_TIMEOUT)
        try:
            cursor = conn.cursor()
            cursor.execute(copy_sql(config, pending.bucket, pending.manifest))
            loaded = cursor.rowcount if cursor.rowcount >= 0 else None    # "COPY n", when the server says
            conn.commit()
            return loaded
        finally:
            conn.close()

    def _credentials(self, config: dict) -> tuple[str, str]:
        secret = config.get("SecretsManagerConfiguration") or {}
        if secret.get("Enabled"):
            value = self.ctx.client("secretsmanager").get_secret_value(SecretId=secret["SecretARN"])
            fields = json.loads(value["SecretString"])
            return fields["username"], fields["password"]
        return config.get("Username", ""), config.get("Password", "")

    def _give_up(self, stream, s3_conf: dict, pending: Pending, records) -> Outcome:
        """Skip the batch: its manifest goes to ``errors/``; the staged object stays."""
        body = self.ctx.s3.read(s3uri.join(pending.bucket, pending.manifest))
        prefix = s3_conf.get("Prefix") or ""
        error_key = prefix + "errors/" + pending.manifest[len(prefix):]
        self._put_object(s3_conf, error_key, body)
        with self._lock:
            self._pending.pop(pending.manifest, None)
        return Outcome(failed=list(records),
                       info={"manifest": pending.manifest, "error_manifest": error_key, "records": len(records),
                             "attempts": pending.attempts, "error": pending.last_error})


class CopyFailed(Exception):
    """A COPY attempt failed inside the retry window: the buffer tries again later."""
