"""CloudTrail: the audit log of who called which AWS API, when, from where.

Every call to an AWS API -- from the console, the CLI, an SDK or another AWS
service -- can be recorded by CloudTrail as an *event*: a JSON object with
the caller (``userIdentity``), the operation (``eventSource`` +
``eventName``), the time, region and source IP, the request parameters and
response, and, when the call failed, ``errorCode``/``errorMessage`` (an
``AccessDenied`` is still an event: failed attempts are recorded too).

- **Management events** are control-plane calls (``CreateBucket``,
  ``DeleteBucket``, ``RunInstances``, ``AssumeRole``...); a trail records
  them by default.
- **Data events** are high-volume object-level calls such as S3
  ``GetObject``/``PutObject``; they must be switched on per trail and carry
  ``eventCategory: "Data"`` and ``managementEvent: false``.
- ``readOnly`` separates reads (``List*``, ``Get*``, ``Describe*``) from
  writes -- the usual first filter in a security investigation.

A trail delivers events to S3 about every 5 minutes as gzip JSON files, each
holding one object with a ``Records`` array (not JSON lines). Athena reads
them with the CloudTrail SerDe or the JSON SerDe.

Sources (record fields, userIdentity, file naming and the ``Records`` file
shape):
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html
"""
from __future__ import annotations

import copy
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from .logs import (BASE_TIME, DEFAULT_ACCOUNT_ID, DEFAULT_REGION, DELIVERY_INTERVAL,
                   aws_logs_prefix, compact_utc, group_by_window, iso_utc, random_hex,
                   random_string, random_uuid, spread_times, write_gzip)

EVENT_VERSION = "1.11"

#: IAM users in the scenario: name -> (source IP, user agent).
IAM_USERS = {
    "alice": ("192.0.2.10", "aws-cli/2.27.0 md/awscrt#0.26.1 ua/2.1 os/macos#24.6.0 lang/python#3.13.4"),
    "bob": ("192.0.2.20", "Boto3/1.40.10 md/Botocore#1.40.10 ua/2.1 os/linux#6.8.0 lang/python#3.12.3"),
    "carol": ("198.51.100.30", "AWS Internal"),  # console users' calls show this agent
    "dave": ("198.51.100.40", "aws-cli/2.27.0 md/awscrt#0.26.1 ua/2.1 os/linux#6.8.0 lang/python#3.13.4"),
    "ci-deployer": ("203.0.113.50", "aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.24.2"),
}
#: The planted incident and noise: (user, bucket, succeeded) for every DeleteBucket call.
DELETE_BUCKET_CALLS = (
    ("bob", "bob-scratch-2026", True),
    ("bob", "tmp-athena-results-old", True),
    ("bob", "test-upload-bucket", True),
    ("ci-deployer", "staging-artifacts-pr-1234", True),
    ("dave", "customer-exports", True),
    ("dave", "finance-reports", False),
    ("dave", "audit-logs-archive", False),
)
DATA_BUCKETS = ("analytics-raw-data", "analytics-curated", "finance-reports", "web-assets")
_OPEN_BUCKETS = ("analytics-raw-data", "analytics-curated", "web-assets")  # not finance-reports
_GLUE_ROLE = "GlueJobRole"
_KEY_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _identities(account_id: str) -> dict:
    """Stable ids for each principal (they do not depend on the data seed)."""
    rng = random.Random("cloudtrail-identities")
    upper = _KEY_ID_CHARS
    ids = {}
    for user in IAM_USERS:
        ids[user] = {"type": "IAMUser", "principalId": "AIDA" + random_string(rng, 17, upper),
                     "arn": f"arn:aws:iam::{account_id}:user/{user}", "accountId": account_id,
                     "accessKeyId": "AKIA" + random_string(rng, 16, upper), "userName": user}
    role_id = "AROA" + random_string(rng, 17, upper)
    ids[_GLUE_ROLE] = {
        "type": "AssumedRole", "principalId": f"{role_id}:GlueJobRunnerSession",
        "arn": f"arn:aws:sts::{account_id}:assumed-role/{_GLUE_ROLE}/GlueJobRunnerSession",
        "accountId": account_id, "accessKeyId": "ASIA" + random_string(rng, 16, upper),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": role_id,
                              "arn": f"arn:aws:iam::{account_id}:role/{_GLUE_ROLE}",
                              "accountId": account_id, "userName": _GLUE_ROLE},
            "attributes": {"creationDate": iso_utc(BASE_TIME), "mfaAuthenticated": "false"}},
        "invokedBy": "glue.amazonaws.com"}
    return ids


def _object_resources(bucket: str, key: str, account_id: str) -> list:
    """The ``resources`` list of an S3 data event: the object and its bucket."""
    return [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
            {"accountId": account_id, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]


def _assume_role_response(rng, moment, account_id, role, session) -> dict:
    return {"credentials": {"accessKeyId": "ASIA" + random_string(rng, 16, _KEY_ID_CHARS),
                            "sessionToken": random_string(rng, 40),
                            "expiration": iso_utc(moment + timedelta(hours=1))},
            "assumedRoleUser": {
                "assumedRoleId": f"AROA{random_string(rng, 17, _KEY_ID_CHARS)}:{session}",
                "arn": f"arn:aws:sts::{account_id}:assumed-role/{role}/{session}"}}


def _s3_request_id(rng: random.Random) -> str:
    return random_string(rng, 16, "0123456789ABCDEF")


def _event(rng, moment, who, ids, region, source, name, *, read_only, params=None, response=None,
           category="Management", resources=None, error=None, extra=None):
    """One CloudTrail record with the documented top-level fields, in AWS's order."""
    identity = copy.deepcopy(ids[who])
    if who == _GLUE_ROLE:
        ip, agent = "glue.amazonaws.com", "glue.amazonaws.com"
    else:
        ip, agent = IAM_USERS[who]
    record = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": iso_utc(moment),
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": agent,
    }
    if error:
        record["errorCode"], record["errorMessage"] = error
    record["requestParameters"] = params
    record["responseElements"] = response
    if extra:
        record["additionalEventData"] = extra
    record["requestID"] = _s3_request_id(rng) if source == "s3" else random_uuid(rng)
    record["eventID"] = random_uuid(rng)
    record["readOnly"] = read_only
    if resources:
        record["resources"] = resources
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = category == "Management"
    record["recipientAccountId"] = identity["accountId"]
    record["eventCategory"] = category
    if agent != "glue.amazonaws.com":
        host = f"{source}.{region}.amazonaws.com" if source in ("s3", "ec2", "athena", "glue") \
            else f"{source}.amazonaws.com"
        record["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                "clientProvidedHostHeader": host}
    return record


def _s3_object_event(rng, moment, who, ids, region, account_id, name):
    bucket = rng.choice(_OPEN_BUCKETS)
    if bucket.startswith("analytics"):
        key = f"events/2026/10/01/part-{rng.randint(0, 999):05d}.parquet"
    else:
        key = f"img/product-{rng.randint(1, 500)}.png"
    host = f"{bucket}.s3.{region}.amazonaws.com"
    resources = _object_resources(bucket, key, account_id)
    size = rng.randint(2_000, 9_000_000)
    extra = {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
             "bytesTransferredIn": size if name == "PutObject" else 0,
             "AuthenticationMethod": "AuthHeader", "x-amz-id-2": random_string(rng, 56),
             "bytesTransferredOut": 0 if name == "PutObject" else size}
    return _event(rng, moment, who, ids, region, "s3", name, read_only=name == "GetObject",
                  params={"bucketName": bucket, "Host": host, "key": key},
                  category="Data", resources=resources, extra=extra)


def _background(rng, moment, ids, region, account_id):
    """One routine event: mostly reads, by people and by a Glue job's role."""
    kind = rng.choices(("ListBuckets", "GetBucketLocation", "GetObject", "PutObject",
                        "DescribeInstances", "AssumeRole", "GetCallerIdentity",
                        "StartQueryExecution", "GetQueryExecution", "GetTable"),
                       (12, 6, 25, 8, 12, 6, 5, 6, 6, 5))[0]
    people = ("alice", "bob", "carol", "dave", "ci-deployer")
    who = rng.choice(people)
    if kind in ("GetObject", "PutObject"):
        return _s3_object_event(rng, moment, rng.choice(people + (_GLUE_ROLE,) * 3), ids, region,
                                account_id, kind)
    if kind == "ListBuckets":
        return _event(rng, moment, who, ids, region, "s3", kind, read_only=True,
                      params={"Host": f"s3.{region}.amazonaws.com"})
    if kind == "GetBucketLocation":
        bucket = rng.choice(DATA_BUCKETS)
        return _event(rng, moment, who, ids, region, "s3", kind, read_only=True,
                      params={"location": "", "bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"})
    if kind == "DescribeInstances":
        return _event(rng, moment, who, ids, region, "ec2", kind, read_only=True,
                      params={"instancesSet": {}, "filterSet": {}})
    if kind == "GetCallerIdentity":
        return _event(rng, moment, who, ids, region, "sts", kind, read_only=True)
    if kind == "AssumeRole":
        role = rng.choice(("DataAnalystRole", "ReadOnlyRole"))
        session = f"{who}-{random_hex(rng, 8)}"
        return _event(rng, moment, who, ids, region, "sts", kind, read_only=True,
                      params={"roleArn": f"arn:aws:iam::{account_id}:role/{role}",
                              "roleSessionName": session, "durationSeconds": 3600},
                      response=_assume_role_response(rng, moment, account_id, role, session))
    if kind == "StartQueryExecution":
        query_id = random_uuid(rng)
        return _event(rng, moment, rng.choice(("alice", "carol")), ids, region, "athena", kind,
                      read_only=False,
                      params={"queryString": "SELECT carrier, count(*) FROM flights GROUP BY carrier",
                              "queryExecutionContext": {"database": "analytics"},
                              "workGroup": "primary"},
                      response={"queryExecutionId": query_id})
    if kind == "GetQueryExecution":
        return _event(rng, moment, rng.choice(("alice", "carol")), ids, region, "athena", kind,
                      read_only=True, params={"queryExecutionId": random_uuid(rng)})
    return _event(rng, moment, _GLUE_ROLE, ids, region, "glue", kind, read_only=True,
                  params={"databaseName": "analytics", "name": rng.choice(("events", "flights"))})


def _delete_bucket(rng, moment, who, bucket, ok, ids, region):
    error = None if ok else ("AccessDenied", "Access Denied")
    return _event(rng, moment, who, ids, region, "s3", "DeleteBucket", read_only=False,
                  params={"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com"},
                  error=error)


def _denied(rng, moment, ids, region, account_id, index):
    """carol and dave bumping into their permissions."""
    denied = ("AccessDenied", "Access Denied")
    if index < 2:
        key = f"2026/q3/ledger-{index + 1}.csv"
        return _event(rng, moment, "carol", ids, region, "s3", "GetObject", read_only=True,
                      params={"bucketName": "finance-reports", "key": key,
                              "Host": f"finance-reports.s3.{region}.amazonaws.com"},
                      category="Data", error=denied,
                      resources=_object_resources("finance-reports", key, account_id))
    if index == 2:
        return _event(rng, moment, "carol", ids, region, "s3", "PutBucketPolicy", read_only=False,
                      params={"bucketName": "web-assets", "policy": "",
                              "Host": f"web-assets.s3.{region}.amazonaws.com"},
                      error=denied)
    role = f"arn:aws:iam::{account_id}:role/AdminRole"
    return _event(rng, moment, "dave", ids, region, "sts", "AssumeRole", read_only=True,
                  params={"roleArn": role, "roleSessionName": "dave-admin"},
                  error=("AccessDenied", f"User: arn:aws:iam::{account_id}:user/dave is not authorized "
                                         f"to perform: sts:AssumeRole on resource: {role}"))


def cloudtrail_records(n: int = 1000, *, seed: int = 0, account_id: str = DEFAULT_ACCOUNT_ID,
                       region: str = DEFAULT_REGION, start: datetime = BASE_TIME,
                       duration: timedelta = timedelta(hours=24)) -> list[dict]:
    """``n`` CloudTrail event records (dicts), sorted by ``eventTime``.

    Mostly routine traffic -- S3 ``ListBuckets``/``GetObject``/``PutObject``
    (data events), EC2 ``DescribeInstances``, STS ``AssumeRole``, Athena
    queries, and a Glue job reading the catalog through an assumed role.
    Planted among them (same people and buckets for every seed; times vary):

    - :data:`DELETE_BUCKET_CALLS`: seven ``DeleteBucket`` calls; five
      succeeded (bob x3, ci-deployer, dave's ``customer-exports``) and two by
      dave failed with ``errorCode: AccessDenied``;
    - four more ``AccessDenied``: carol reading ``finance-reports`` twice and
      changing a bucket policy, dave trying to assume ``AdminRole``.

    ``n`` counts every record, planted ones included (so ``n >= 11``).
    """
    planted = len(DELETE_BUCKET_CALLS) + 4
    if n < planted:
        raise ValueError(f"n must be at least {planted}, the number of planted events")
    rng = random.Random(seed)
    ids = _identities(account_id)
    moments = spread_times(rng, n, start, duration)
    special = set(rng.sample(range(n), planted))
    plan = [("delete", call) for call in DELETE_BUCKET_CALLS] + [("denied", i) for i in range(4)]
    rng.shuffle(plan)
    planned = iter(plan)
    records = []
    for index, moment in enumerate(moments):
        if index in special:
            what, detail = next(planned)
            if what == "delete":
                who, bucket, ok = detail
                records.append(_delete_bucket(rng, moment, who, bucket, ok, ids, region))
            else:
                records.append(_denied(rng, moment, ids, region, account_id, detail))
        else:
            records.append(_background(rng, moment, ids, region, account_id))
    return records


def write_cloudtrail_logs(directory, n: int = 1000, *, seed: int = 0,
                          account_id: str = DEFAULT_ACCOUNT_ID, region: str = DEFAULT_REGION,
                          start: datetime = BASE_TIME,
                          duration: timedelta = timedelta(hours=24)) -> list[Path]:
    """Write a trail's log files under ``directory`` as CloudTrail delivers them to S3.

    Events are batched per 5-minute window; each batch is one gzip file
    holding ``{"Records": [...]}``::

        AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
            <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 random characters>.json.gz

    The stamp is the delivery time (the end of the window: a file delivered
    at a given time holds events from before it). Returns the paths, sorted.
    """
    records = cloudtrail_records(n, seed=seed, account_id=account_id, region=region,
                                 start=start, duration=duration)
    rng = random.Random(f"cloudtrail-files-{seed}")

    def event_time(record):
        return datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))

    paths = []
    for window, batch in group_by_window(records, event_time).items():
        delivered = window + DELIVERY_INTERVAL
        folder = Path(directory) / aws_logs_prefix(account_id, "CloudTrail", region, delivered)
        name = f"{account_id}_CloudTrail_{region}_{compact_utc(delivered)}_{random_string(rng, 16)}.json.gz"
        text = json.dumps({"Records": batch}, separators=(",", ":"))
        paths.append(write_gzip(folder / name, text))
    return sorted(paths)
