"""The locked JVM jars, their fetcher, and Spark on the local S3 endpoint through S3A.

- ``tools/fetch_jars.py`` without a network: lock parsing, checksum refusal,
  skipping what is installed, the Maven mirror in ``~/.m2/settings.xml``;
- ``jars.lock`` itself: its ``s3a`` set matches the Hadoop inside pyspark
  and repeats no jar that pyspark ships;
- one real Spark job whose tasks run in an executor JVM of their own
  (``local-cluster`` mode): it writes ``s3://`` Parquet and ``s3a://`` CSV to
  the local endpoint, reads both back, and is metered by its access key;
  the same driver checks that :func:`release_conf` changes an answer. No JVM
  is left behind, checked by PID.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from localaws.core import java, jvm
from localaws.core.spark import release_conf, s3a_conf, spark_home

ROOT = Path(__file__).resolve().parents[1]


def _load_fetcher():
    """tools/fetch_jars.py is a script, not a package module: load it by path."""
    spec = importlib.util.spec_from_file_location("fetch_jars", ROOT / "tools" / "fetch_jars.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module       # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


fetch_jars = _load_fetcher()


# --------------------------------------------------------------------- the fetcher, offline

def _publish(repo: Path, coords: str, content: bytes) -> "fetch_jars.Jar":
    """Put a fake jar into a Maven-layout folder; return its lock entry."""
    group, artifact, version = coords.split(":")
    jar = fetch_jars.Jar(coords, f"{artifact}-{version}.jar",
                         hashlib.sha256(content).hexdigest(), len(content))
    path = repo / jar.repo_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return jar


def _sources(local: Path, remote: Path) -> "fetch_jars.Sources":
    """A local Maven repository and a 'remote' one reached through a file:// URL, no mvn."""
    return fetch_jars.Sources(local_repo=local, base_url=remote.as_uri() + "/", use_mvn=False)


def test_lock_rows_are_parsed():
    text = textwrap.dedent("""\
        # a comment
        [s3a]
        root\torg.example:lib:1.0
        exclude\torg.example:huge\tthe shaded bundle
        exclude\torg.example:tls
        jar\torg.example:lib:1.0\tlib-1.0.jar\t{sha}\t42
    """).format(sha="ab" * 32)
    sets = fetch_jars.parse_lock(text)
    s3a = sets["s3a"]
    assert s3a.roots == ["org.example:lib:1.0"]
    assert s3a.excludes == [("org.example:huge", "the shaded bundle"), ("org.example:tls", "")]
    assert s3a.jars == [fetch_jars.Jar("org.example:lib:1.0", "lib-1.0.jar", "ab" * 32, 42)]
    assert s3a.jars[0].repo_path == "org/example/lib/1.0/lib-1.0.jar"
    with pytest.raises(ValueError, match="line 2"):
        fetch_jars.parse_lock("[s3a]\njar\torg.example:lib:1.0\tlib-1.0.jar\tnot-a-sha\t42\n")


def test_checksum_mismatch_is_refused(tmp_path):
    remote = tmp_path / "remote"
    good = _publish(remote, "org.example:lib:1.0", b"the real jar")
    (remote / good.repo_path).write_bytes(b"something else")    # the mirror serves another file
    jar_set = fetch_jars.JarSet("s3a", jars=[good])
    with pytest.raises(fetch_jars.FetchError) as info:
        fetch_jars.install_set(jar_set, tmp_path / "jars", _sources(tmp_path / "m2", remote))
    message = str(info.value)
    assert "org.example:lib:1.0" in message and "refusing" in message and good.sha256 in message
    assert list((tmp_path / "jars").iterdir()) == []              # nothing half-installed


def test_installed_jar_is_skipped_and_stale_jar_removed(tmp_path):
    remote = tmp_path / "remote"
    jar = _publish(remote, "org.example:lib:1.0", b"jar bytes")
    dest = tmp_path / "jars"
    jar_set = fetch_jars.JarSet("s3a", jars=[jar])
    first = fetch_jars.install_set(jar_set, dest, _sources(tmp_path / "m2", remote))
    assert first == {"present": 0, "fetched": 1, "removed": 0}
    (dest / "lib-0.9.jar").write_bytes(b"an old version")
    broken = _sources(tmp_path / "nowhere", tmp_path / "gone")
    again = fetch_jars.install_set(jar_set, dest, broken)         # would fail if it fetched
    assert again == {"present": 1, "fetched": 0, "removed": 1}
    assert [p.name for p in dest.iterdir()] == ["lib-1.0.jar"]


def test_local_maven_repository_comes_first(tmp_path):
    jar = _publish(tmp_path / "m2", "org.example:lib:1.0", b"cached")
    sources = _sources(tmp_path / "m2", tmp_path / "gone")
    assert sources.fetch(jar, tmp_path / "out.jar") == "local Maven repository"
    assert (tmp_path / "out.jar").read_bytes() == b"cached"


def test_failed_download_says_what_and_where(tmp_path):
    jar = fetch_jars.Jar("org.example:lib:1.0", "lib-1.0.jar", "00" * 32, 1)
    sources = _sources(tmp_path / "m2", tmp_path / "empty-remote")
    with pytest.raises(fetch_jars.FetchError) as info:
        sources.fetch(jar, tmp_path / "out.jar")
    message = str(info.value)
    assert "org.example:lib:1.0" in message
    assert "org/example/lib/1.0/lib-1.0.jar" in message and "make" in message


def test_mirror_and_local_repository_from_settings_xml(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".m2").mkdir(parents=True)
    assert fetch_jars.mirror_url(home) is None
    assert fetch_jars.local_repository(home) == home / ".m2" / "repository"
    (home / ".m2" / "settings.xml").write_text(textwrap.dedent("""\
        <settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
          <localRepository>${user.home}/maven-cache</localRepository>
          <!-- <mirrors><mirror><url>http://commented.out/</url></mirror></mirrors> -->
          <mirrors>
            <mirror><id>blocker</id><mirrorOf>external:http:*</mirrorOf>
                    <url>http://0.0.0.0/</url><blocked>true</blocked></mirror>
            <mirror><id>other</id><mirrorOf>*,!central</mirrorOf>
                    <url>https://other.example/</url></mirror>
            <mirror><id>corp</id><mirrorOf>central</mirrorOf>
                    <url>https://maven.corp.example/central</url></mirror>
          </mirrors>
        </settings>
    """))
    assert fetch_jars.mirror_url(home) == "https://maven.corp.example/central/"
    assert fetch_jars.local_repository(home) == home / "maven-cache"
    monkeypatch.setenv("HOME", str(home))
    sources = fetch_jars.Sources.from_home()
    assert sources.base_url == "https://maven.corp.example/central/"
    assert sources.local_repo == home / "maven-cache"


def test_s3a_set_fits_the_hadoop_inside_pyspark():
    """hadoop-aws must be the version of pyspark's hadoop-client-api, and no
    locked jar may be a second copy of one that pyspark ships."""
    s3a = fetch_jars.read_lock(ROOT / "jars.lock")["s3a"]
    shipped = sorted(p.name for p in (Path(spark_home()) / "jars").glob("*.jar"))
    client_api = next(name for name in shipped if name.startswith("hadoop-client-api-"))
    hadoop_version = re.fullmatch(r"hadoop-client-api-(.+)\.jar", client_api).group(1)
    assert f"org.apache.hadoop:hadoop-aws:{hadoop_version}" in {jar.coords for jar in s3a.jars}
    assert [jar.coords for jar in s3a.jars if fetch_jars.provided_by(jar.coords, shipped)] == []
    assert not any(jar.coords.startswith("software.amazon.awssdk:bundle:") for jar in s3a.jars)


def test_jvm_finds_the_installed_set_or_says_run_make(tmp_path, monkeypatch):
    assert {path.name for path in jvm.jars("s3a")} == {
        jar.file for jar in fetch_jars.read_lock(ROOT / "jars.lock")["s3a"].jars}
    monkeypatch.setenv("LOCALAWS_JAR_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="make"):
        jvm.jars("no-such-set")


def test_release_conf():
    assert release_conf("3.5.6") == {"spark.sql.ansi.enabled": "false"}
    assert release_conf("3.5.2-amzn-1") == {"spark.sql.ansi.enabled": "false"}
    assert release_conf("4.0.0") == {}
    with pytest.raises(ValueError):
        release_conf("latest")


# --------------------------------------------------------------------- a real Spark job

JOB_KEY = "SPARKS3AJOB"          # the job's own access key: its reads are metered under it
ROWS = [(i, f"name-{i}") for i in range(20)]

DRIVER = textwrap.dedent("""
    import json, os, sys
    from pyspark.sql import SparkSession

    def jvm_pid(_):
        # A Python worker runs under the JVM that executes its task: walk up to it.
        pid = os.getpid()
        while pid > 1:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "java":
                    return pid
            with open(f"/proc/{pid}/stat") as f:      # "pid (name) state ppid ..."
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        return None

    def cast_x(session):
        try:
            return ["value", session.sql("SELECT CAST('x' AS INT) AS v").collect()[0].v]
        except Exception as exc:
            return ["error", type(exc).__name__]

    rows, release = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    spark = SparkSession.builder.appName("s3a-test").getOrCreate()
    df = spark.createDataFrame([tuple(r) for r in rows], "id INT, name STRING").repartition(2)
    df.write.mode("overwrite").parquet("s3://t-s3a/out/")
    df.write.mode("overwrite").option("header", True).csv("s3a://t-s3a/out2/")
    parquet = spark.read.parquet("s3://t-s3a/out/").orderBy("id").collect()
    csv = spark.read.schema("id INT, name STRING").option("header", True) \\
        .csv("s3a://t-s3a/out2/").orderBy("id").collect()
    s3n_count = spark.read.parquet("s3n://t-s3a/out/").count()
    executors = spark.sparkContext.parallelize(range(2), 2).map(jvm_pid).distinct().collect()
    emulated = spark.newSession()
    for key, value in release.items():
        emulated.conf.set(key, value)
    report = {"driver_jvm": os.getppid(), "executor_jvms": executors,
              "parquet": [list(r) for r in parquet], "csv": [list(r) for r in csv],
              "s3n_count": s3n_count,
              "cast_default": cast_x(spark), "cast_release": cast_x(emulated)}
    spark.stop()
    print("REPORT " + json.dumps(report), flush=True)
""")


def _executor_alive(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) Spark executor JVM. Checking the
    command line too means a PID the system has since reused never counts."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read()
    except FileNotFoundError:
        return False
    return state != "Z" and b"CoarseGrainedExecutorBackend" in command


def _executors_left(pids: list[int], seconds: float) -> list[int]:
    """Poll until no executor of ``pids`` is alive, or the deadline passes; return those left."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [pid for pid in pids if _executor_alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _meter(stack):
    """The endpoint's S3 byte meter (``core/s3.py``)."""
    return stack.context.s3.meter


def _spark_submit(endpoint: str, script: Path) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a ``spark-submit`` of ``script`` on
    ``local-cluster[1,1,1024]``: one worker (1 core, 1 GB) inside the driver
    JVM, which starts one executor JVM; every JVM bounded to 512 MB of heap."""
    conf = {
        **s3a_conf(endpoint, JOB_KEY, "any-secret", "us-east-1"),
        "spark.driver.memory": "512m", "spark.executor.memory": "512m",
        "spark.driver.extraJavaOptions": "-XX:+UseSerialGC",
        "spark.executor.extraJavaOptions": "-XX:+UseSerialGC",
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false",
    }
    command = [str(Path(spark_home()) / "bin" / "spark-submit"),
               "--master", "local-cluster[1,1,1024]"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(script), json.dumps(ROWS), json.dumps(release_conf("3.5.6"))]
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR", "AWS_ENDPOINT_URL")}
    env.update(JAVA_HOME=java.require_java_home(), SPARK_HOME=spark_home(),
               SPARK_LOCAL_IP="127.0.0.1", SPARK_LOCAL_HOSTNAME="127.0.0.1",
               PYSPARK_PYTHON=sys.executable)
    return command, env


@pytest.fixture(scope="module")
def spark_job(tmp_path_factory, stack):
    """Run DRIVER once against the session's stack, signing as JOB_KEY."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("the JVM checks read /proc (Linux)")
    work = tmp_path_factory.mktemp("s3a")
    script, log = work / "driver.py", work / "spark.log"
    script.write_text(DRIVER)
    command, env = _spark_submit(stack.endpoint, script)
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="t-s3a")
    started = time.monotonic()
    with open(log, "w") as out, _meter(stack).track(JOB_KEY) as usage:
        # spark-submit execs the driver JVM, so this PID is the JVM's; its own
        # process group holds the executor it starts, so cleanup can end both.
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    seconds = time.monotonic() - started
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket="t-s3a").get("Contents", [])]
    text = log.read_text(errors="replace")
    reports = [line[len("REPORT "):] for line in text.splitlines() if line.startswith("REPORT ")]
    report = json.loads(reports[-1]) if reports else None
    yield {"report": report, "log": text, "returncode": proc.returncode, "jvm_pid": proc.pid,
           "seconds": seconds, "objects": objects, "bytes_read": usage.bytes_read}
    executors = (report or {}).get("executor_jvms") or []
    for pid in _executors_left(executors, 5):   # only if a test failed first: never leak a JVM
        os.kill(pid, signal.SIGKILL)


def _report(job) -> dict:
    assert job["returncode"] == 0 and job["report"], job["log"][-6000:]
    return job["report"]


def test_job_ran_its_tasks_in_an_executor_jvm_of_its_own(spark_job):
    report = _report(spark_job)
    assert report["driver_jvm"] == spark_job["jvm_pid"]
    assert report["executor_jvms"] and None not in report["executor_jvms"]
    assert spark_job["jvm_pid"] not in report["executor_jvms"]


def test_s3_and_s3a_paths_round_trip_through_the_local_endpoint(spark_job):
    report = _report(spark_job)
    expected = [list(row) for row in ROWS]
    assert report["parquet"] == expected      # written to and read from s3:// (S3A underneath)
    assert report["csv"] == expected          # s3a://
    assert report["s3n_count"] == len(ROWS)   # s3n://, the old scheme EMR still accepts
    objects = spark_job["objects"]
    assert "out/_SUCCESS" in objects and "out2/_SUCCESS" in objects
    assert any(re.fullmatch(r"out/part-.*\.parquet", key) for key in objects)
    assert any(re.fullmatch(r"out2/part-.*\.csv", key) for key in objects)
    assert not any("_temporary" in key for key in objects)


def test_reads_are_metered_under_the_jobs_access_key(spark_job):
    _report(spark_job)
    assert spark_job["bytes_read"] > 0


def test_release_conf_makes_spark_4_answer_like_spark_3_5(spark_job):
    report = _report(spark_job)
    assert report["cast_default"][0] == "error", report["cast_default"]   # Spark 4: ANSI on
    assert report["cast_release"] == ["value", None]              # as on EMR 7 / Glue 5: NULL


def test_no_jvm_is_left_running(spark_job):
    report = _report(spark_job)
    assert spark_job["returncode"] == 0            # the driver JVM (our child) has exited
    assert _executors_left(report["executor_jvms"], 30) == []
