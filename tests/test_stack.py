"""The stack: one endpoint, reuse, clean stop, AWS-shaped errors, real-AWS switch."""
import json
import os
import socket
import subprocess
import sys
import pathlib

import botocore.exceptions
import pytest

import localaws

ROOT = pathlib.Path(__file__).resolve().parent.parent


def child_pids() -> set[int]:
    """PIDs of this process's live (non-zombie) children, read from /proc."""
    pids = set()
    for task in pathlib.Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text().split()
        pids.update(int(p) for p in text)
    alive = set()
    for pid in pids:
        try:
            state = pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_endpoint_is_loopback_and_serves_s3(stack):
    assert stack.endpoint.startswith("http://127.0.0.1:")
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="stack-smoke")
    assert "stack-smoke" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert stack.resource("s3").Bucket("stack-smoke").name == "stack-smoke"


def test_start_twice_reuses_the_running_stack(stack):
    assert localaws.start() is stack


def test_env_points_the_aws_cli_at_the_stack(stack):
    stack.client("s3").create_bucket(Bucket="stack-cli")
    env = {**os.environ, **stack.env()}
    env.pop("AWS_PROFILE", None)
    aws = pathlib.Path(sys.executable).with_name("aws")
    out = subprocess.run([str(aws), "s3", "ls"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "stack-cli" in out.stdout


def test_unimplemented_operation_is_one_clear_error(stack):
    glue = stack.client("glue")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        glue.create_partition_index(DatabaseName="db", TableName="t", PartitionIndex={
            "Keys": ["year"], "IndexName": "by_year"})
    err = info.value.response
    assert err["Error"]["Code"] == "NotImplemented"
    assert "glue:CreatePartitionIndex is not emulated" in err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert err["ResponseMetadata"]["RetryAttempts"] == 0      # not retried like a 500


def test_service_moto_does_not_serve_is_one_clear_error(stack):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        stack.client("pricing").describe_services()
    assert info.value.response["Error"]["Code"] == "NotImplemented"
    assert "pricing" in info.value.response["Error"]["Message"]


def test_target_aws_gives_real_aws_clients(monkeypatch):
    monkeypatch.setenv("LOCALAWS_TARGET", "aws")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws = localaws.start(region="eu-west-1")
    assert aws.target == "aws" and aws.endpoint is None
    client = aws.client("s3")
    assert "amazonaws.com" in client.meta.endpoint_url
    assert "127.0.0.1" not in client.meta.endpoint_url


CYCLES = """
import json, sys
sys.path.insert(0, "tests")
import localaws
from localaws.awslambda import zip_package
from test_stack import child_pids, port_open

before, ports = child_pids(), []
for i in range(20):
    with localaws.start() as s:
        ports.append(int(s.endpoint.rsplit(":", 1)[1]))
        s.client("s3").create_bucket(Bucket=f"cycle-{i}")
        if i % 5 == 0:   # now and then run a real handler: a child process
            role = s.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            lam = s.client("lambda")
            lam.create_function(FunctionName=f"cycle-{i}", Runtime="python3.11", Role=role,
                                Handler="app.handler",
                                Code={"ZipFile": zip_package({"app.py": "def handler(e, c):\\n    return 1\\n"})})
            assert lam.invoke(FunctionName=f"cycle-{i}")["Payload"].read() == b"1"
        buckets = [b["Name"] for b in s.client("s3").list_buckets()["Buckets"]]
        assert buckets == [f"cycle-{i}"], buckets      # every start is empty
    assert not s.running
print(json.dumps({"left": sorted(child_pids() - before),
                  "open": [p for p in ports if port_open(p)], "ports": len(set(ports))}))
"""


def test_twenty_start_stop_cycles_leave_no_process_or_port():
    """In a fresh interpreter, so the session's shared stack is untouched."""
    out = subprocess.run([sys.executable, "-c", CYCLES], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"left": [], "open": [], "ports": result["ports"]}
    assert result["ports"] >= 2   # free ports, not one fixed port


def test_stack_stops_at_interpreter_exit():
    """Without an explicit stop(), the atexit hook ends what the stack started and removes its files.

    The child below starts a process through the stack (as Lambda or Spark do) and exits; a
    process started in its own session would outlive the interpreter, and the scratch folder
    would stay, if the hook did not run.
    """
    code = ("import localaws, json, subprocess; s = localaws.start(); "
            "p = s.processes.popen(['sleep', '120'], stdout=subprocess.DEVNULL); "
            "print(json.dumps([s.endpoint.rsplit(':', 1)[1], p.pid, s.work_dir]), flush=True)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    port, pid, work_dir = json.loads(out.stdout)
    assert not port_open(int(port))
    assert not pathlib.Path(work_dir).exists()
    assert not pathlib.Path(f"/proc/{pid}").exists() or _zombie_or_gone(pid)


def _zombie_or_gone(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True
