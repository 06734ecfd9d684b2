"""Core plumbing every plane shares: principals, clients, the clock, waiting, S3 helpers."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from localaws.core import s3 as s3uri
from localaws.core.clock import Clock
from localaws.core.waiting import wait_until


# -- principals: every request is attributed to the principal of its access key ----------
@pytest.fixture()
def seen_principals(stack):
    """Temporarily route S3 ListBuckets to a recorder of ``req.principal`` (then to moto)."""
    seen = []

    def record(req):
        seen.append(req.principal)
        return None                      # let moto answer

    previous = stack.context.registry.route("s3", "ListBuckets", record)
    yield seen
    stack.context.registry.route("s3", "ListBuckets", previous)


def test_requests_are_attributed_to_users_roles_and_root(stack, seen_principals):
    iam = stack.client("iam")
    iam.create_user(UserName="t-analyst")
    role = iam.create_role(RoleName="t-reader", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"AWS": "*"}}]}))["Role"]["Arn"]
    stack.client("s3").list_buckets()                              # the administrator
    stack.client("s3", principal="t-analyst").list_buckets()       # an IAM user, by name
    stack.client("s3", principal=role).list_buckets()              # a role session
    key = iam.create_access_key(UserName="t-analyst")["AccessKey"]  # keys made by hand work too
    import boto3
    boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1",
                 aws_access_key_id=key["AccessKeyId"],
                 aws_secret_access_key=key["SecretAccessKey"]).list_buckets()
    kinds = [(p.kind, p.name) for p in seen_principals]
    assert kinds == [("root", "root"), ("user", "t-analyst"), ("assumed-role", "localaws"),
                     ("user", "t-analyst")]
    assert seen_principals[1].arn == f"arn:aws:iam::{stack.account_id}:user/t-analyst"
    assert seen_principals[2].role_arn == role
    assert seen_principals[2].arn == f"arn:aws:sts::{stack.account_id}:assumed-role/t-reader/localaws"


def test_env_carries_the_principals_keys(stack):
    stack.client("iam").create_user(UserName="t-env-user")
    env = stack.env(principal="t-env-user")
    assert env["AWS_ACCESS_KEY_ID"].startswith("AKIA") and env["AWS_ENDPOINT_URL"] == stack.endpoint
    assert stack.env()["AWS_ACCESS_KEY_ID"] == "testing"
    assert stack.context.principals.of_key(env["AWS_ACCESS_KEY_ID"]).name == "t-env-user"


def test_unknown_user_is_a_clear_error(stack):
    with pytest.raises(ValueError, match="No IAM user 't-nobody'"):
        stack.client("s3", principal="t-nobody")


def test_clients_are_made_once_per_principal_and_safely_in_threads(stack):
    ctx = stack.context
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: ctx.client("glue"), range(16)))
    assert len({id(c) for c in clients}) == 1
    assert ctx.client("s3", access_key="t-meter") is not ctx.client("s3", access_key="t-meter")


# -- the clock ------------------------------------------------------------------------
def test_clock_follows_real_time_until_frozen_then_moves_only_when_advanced():
    clock = Clock()
    assert abs(clock.time() - time.time()) < 1
    clock.freeze()
    frozen = clock.monotonic()
    time.sleep(0.05)
    assert clock.monotonic() == frozen
    clock.advance(60)
    assert clock.monotonic() == frozen + 60
    clock.resume()
    assert clock.monotonic() >= frozen + 60 and clock.time() > time.time() + 59
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_advance_wakes_a_waiter_at_once():
    clock, cond, woke = Clock(), threading.Condition(), []
    clock.watch(cond)
    clock.freeze()
    deadline = clock.monotonic() + 3600          # an hour of clock time

    def waiter():
        with cond:
            while clock.monotonic() < deadline:
                clock.wait(cond, deadline - clock.monotonic())
        woke.append(True)

    thread = threading.Thread(target=waiter)
    thread.start()
    clock.advance(3600)
    thread.join(timeout=5)
    assert woke == [True]


# -- waiting --------------------------------------------------------------------------
def test_wait_until_a_future_a_condition_or_a_polled_predicate():
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(time.sleep, 0.05)
        assert wait_until(future=future, timeout=5) and future.done()
    cond, box = threading.Condition(), []
    threading.Timer(0.05, lambda: (box.append(1), cond.acquire(), cond.notify_all(), cond.release())).start()
    assert wait_until(lambda: box, 5, condition=cond)
    assert wait_until(lambda: True, 0) and not wait_until(lambda: False, 0.05, poll=0.01)


# -- S3 helpers -----------------------------------------------------------------------
def test_s3_uris():
    assert s3uri.split("s3://b/a/b.csv") == ("b", "a/b.csv")
    assert s3uri.split("s3a://b") == ("b", "")
    assert s3uri.join("b", "k") == "s3://b/k" and s3uri.folder("s3://b/p") == "s3://b/p/"
    for bad in ("/tmp/x", "s3://", "http://b/k"):
        with pytest.raises(ValueError):
            s3uri.split(bad)


def test_s3_helper_reads_ranges_lists_deletes_and_meters(stack):
    s3 = stack.context.s3
    stack.client("s3").create_bucket(Bucket="t-core-s3")
    for i in range(3):
        s3.write(f"s3://t-core-s3/p/{i}.txt", b"0123456789")
    with s3.meter.track("t-core-reader") as usage:
        assert s3.read("s3://t-core-s3/p/1.txt", 2, 4, access_key="t-core-reader") == b"234"
        assert s3.read("s3://t-core-s3/p/2.txt", access_key="t-core-reader") == b"0123456789"
        s3.read("s3://t-core-s3/p/0.txt")                       # another key: not counted
    assert (usage.bytes_read, usage.requests, usage.objects_opened) == (13, 2, 2)
    assert [o["Key"] for o in s3.list("s3://t-core-s3/p/")] == ["p/0.txt", "p/1.txt", "p/2.txt"]
    s3.delete([f"s3://t-core-s3/p/{i}.txt" for i in range(3)])
    assert s3.list("s3://t-core-s3/") == [] and s3.bucket_exists("t-core-s3")
    assert not s3.bucket_exists("t-core-missing")


def test_a_client_of_another_region(stack):
    """``stack.client(service, region_name=...)`` reaches the same endpoint for another Region."""
    assert stack.client("s3", region_name="eu-west-1").meta.region_name == "eu-west-1"
    assert stack.client("s3").meta.region_name == stack.region
