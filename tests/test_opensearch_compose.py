"""docker-compose.yml: a real single-node OpenSearch + Dashboards, stated security.

No Docker engine runs in CI, so the file is checked structurally (and with
``docker compose config`` where the compose plugin exists).
"""
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def env_of(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def test_two_services_with_pinned_real_images(compose):
    services = compose["services"]
    assert set(services) == {"opensearch", "dashboards"}
    engine, _, tag = services["opensearch"]["image"].partition(":")
    assert engine == "opensearchproject/opensearch"
    assert tag.split(".")[0] in {"2", "3"} and tag.count(".") == 2, "pin an exact 2.x or 3.x version"
    dash, _, dash_tag = services["dashboards"]["image"].partition(":")
    assert dash == "opensearchproject/opensearch-dashboards"
    assert dash_tag == tag, "Dashboards must match the engine's version"


def test_single_node_with_security_stated(compose):
    env = env_of(compose["services"]["opensearch"])
    assert env["discovery.type"] == "single-node"
    assert "OPENSEARCH_INITIAL_ADMIN_PASSWORD" in env          # required since 2.12
    assert "DISABLE_SECURITY_PLUGIN" not in env                 # security stays on (TLS + basic auth)
    assert env_of(compose["services"]["dashboards"])["OPENSEARCH_HOSTS"].startswith('["https://')
    text = COMPOSE.read_text()
    for word in ("demo certificates", "basic auth", "127.0.0.1 only"):
        assert word in text


def test_ports_bound_to_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_dashboards_waits_for_a_healthy_engine(compose):
    assert "healthcheck" in compose["services"]["opensearch"]
    depends = compose["services"]["dashboards"]["depends_on"]
    assert depends["opensearch"]["condition"] == "service_healthy"


def test_data_volume_is_named(compose):
    assert "opensearch-data" in compose["volumes"]


@pytest.mark.skipif(subprocess.run([shutil.which("docker") or "false", "compose", "version"],
                                   capture_output=True).returncode != 0,
                    reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_it():
    env = {**os.environ, "OPENSEARCH_INITIAL_ADMIN_PASSWORD": "Check-0nly!"}
    out = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
