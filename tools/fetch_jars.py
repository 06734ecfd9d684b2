#!/usr/bin/env python3
"""Install the JVM jars the course needs, exactly as ``jars.lock`` lists them.

Spark comes from the pyspark package on PyPI, but some of what Spark does on
AWS needs jars that only Maven Central has: reading and writing ``s3://``
goes through Hadoop's S3A connector (``hadoop-aws``) and the AWS SDK for
Java. ``make`` runs this script once, after ``pip install``, so that nothing
is ever downloaded while a notebook or a test runs.

``jars.lock`` (project root) holds named *sets*; each set is the complete
list of jars one feature puts on a JVM's classpath (Spark's, for ``s3a``; a
Flink cluster's own, for ``flink``), every jar with its exact Maven
coordinates, file name, sha256 and size. This script installs set
``NAME`` into ``.venv/jars/NAME/``; ``localaws/core/jvm.py`` finds it there.

Usage (standard library only: it runs before ``localaws`` is installed)::

    python tools/fetch_jars.py                 # every set, into .venv/jars/<set>/
    python tools/fetch_jars.py --set s3a       # one set
    python tools/fetch_jars.py --dest DIR      # into DIR/<set>/ (then set LOCALAWS_JAR_DIR=DIR)
    python tools/fetch_jars.py --lock          # developers: re-resolve, rewrite jars.lock

Where a jar comes from, the first that works:

1. the local Maven repository (``~/.m2/repository``, or the
   ``<localRepository>`` of ``~/.m2/settings.xml``) when it holds the exact
   file, with the locked checksum;
2. over HTTPS from the ``<mirror>`` of Maven Central configured in
   ``~/.m2/settings.xml`` when there is one, else from
   https://repo1.maven.org/maven2/ ;
3. ``mvn dependency:copy``, only when that download failed and ``mvn`` is
   installed (it knows proxies and credentials from your Maven settings).

Every file is checked against its locked sha256 before it is installed, and
refused when it differs. A jar already installed with the right checksum is
left alone, so a second run downloads nothing. Jars in a set's folder that
the lock no longer lists are removed (they would otherwise stay on the
classpath next to their replacement).

Re-locking (``--lock``, needs ``mvn`` and a Python with pyspark installed):
each set in ``jars.lock`` names its ``root`` artifacts and the artifacts to
``exclude`` from their dependencies. ``--lock`` writes a temporary pom.xml
with those roots and exclusions, asks Maven for the runtime closure
(``mvn dependency:list``), drops every artifact the installed pyspark already
ships in ``pyspark/jars/`` (two copies of a library on one classpath is how
``NoSuchMethodError`` happens), hashes the rest from the local Maven
repository and rewrites ``jars.lock`` with the result. A set whose jars go on
a classpath of their own, never next to Spark's (Flink's processes), says so
with a ``classpath<TAB>own`` row: nothing is dropped from it. To add a set,
add a ``[name]`` section with its ``root`` lines and run ``--lock``.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOCK = PROJECT_ROOT / "jars.lock"
DEFAULT_DEST = PROJECT_ROOT / ".venv" / "jars"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"

#: Jars pyspark ships under another artifact name than the one Maven resolves
#: (jcl-over-slf4j implements the commons-logging API on top of SLF4J).
PROVIDED_UNDER_OTHER_NAMES = {"commons-logging:commons-logging": "jcl-over-slf4j"}


class FetchError(RuntimeError):
    """A jar could not be installed; the message says which, from where, and what to do."""


# --------------------------------------------------------------------- the lock file

@dataclass(frozen=True)
class Jar:
    """One locked Maven artifact: ``group:artifact:version`` and the file it is."""
    coords: str
    file: str
    sha256: str
    size: int

    @property
    def repo_path(self) -> str:
        """Path of the file in a Maven repository: ``org/apache/hadoop/hadoop-aws/3.5.0/...``."""
        group, artifact, version = self.coords.split(":")
        return "/".join([*group.split("."), artifact, version, self.file])


@dataclass
class JarSet:
    """A named set: how to resolve it (roots, excludes) and what it resolved to (jars)."""
    name: str
    roots: list[str] = field(default_factory=list)
    excludes: list[tuple[str, str]] = field(default_factory=list)   # (group:artifact, why)
    jars: list[Jar] = field(default_factory=list)
    #: ``(why)`` when the set runs on a classpath of its own (a ``classpath own`` row),
    #: so the jars pyspark ships are kept; None when it joins Spark's classpath.
    own_classpath: str | None = None

    @property
    def size(self) -> int:
        return sum(jar.size for jar in self.jars)


def parse_lock(text: str) -> dict[str, JarSet]:
    """Read ``jars.lock``: ``[set]`` headers, then tab-separated ``root``,
    ``exclude``, ``classpath`` and ``jar`` rows; ``#`` starts a comment line."""
    sets: dict[str, JarSet] = {}
    current: JarSet | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if not line or line.lstrip().startswith("#"):
            continue
        where = f"jars.lock line {number}"
        header = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", line)
        if header:
            current = sets.setdefault(header.group(1), JarSet(header.group(1)))
            continue
        if current is None:
            raise ValueError(f"{where}: a row before any [set] header: {line!r}")
        kind, *cols = line.split("\t")
        if kind == "root" and len(cols) == 1 and cols[0].count(":") == 2:
            current.roots.append(cols[0])
        elif kind == "exclude" and len(cols) in (1, 2) and cols[0].count(":") == 1:
            current.excludes.append((cols[0], cols[1] if len(cols) == 2 else ""))
        elif kind == "classpath" and len(cols) in (1, 2) and cols[0] == "own":
            current.own_classpath = cols[1] if len(cols) == 2 else ""
        elif kind == "jar" and len(cols) == 4:
            coords, file, sha, size = cols
            well_formed = (coords.count(":") == 2 and re.fullmatch(r"[0-9a-f]{64}", sha)
                           and size.isdigit())
            if not well_formed:
                raise ValueError(f"{where}: expected 'jar<TAB>group:artifact:version<TAB>file"
                                 f"<TAB>sha256<TAB>bytes', got {line!r}")
            current.jars.append(Jar(coords, file, sha, int(size)))
        else:
            raise ValueError(f"{where}: not a root, exclude, classpath or jar row: {line!r}")
    return sets


def read_lock(path: Path) -> dict[str, JarSet]:
    try:
        return parse_lock(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FetchError(f"{path} is missing: it lists the jars to install. "
                         "Restore it from git (git checkout -- jars.lock).") from None


# --------------------------------------------------------------------- where jars come from

def _strip_namespaces(root: ET.Element) -> ET.Element:
    """settings.xml may declare ``xmlns="http://maven.apache.org/SETTINGS/1.0.0"``."""
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _settings(home: Path) -> ET.Element | None:
    path = home / ".m2" / "settings.xml"
    try:
        return _strip_namespaces(ET.parse(path).getroot())
    except FileNotFoundError:
        return None
    except ET.ParseError as exc:
        print(f"warning: ignoring {path}: not valid XML ({exc})", file=sys.stderr)
        return None


def _mirrors_central(mirror_of: str) -> bool:
    """Maven's ``<mirrorOf>`` syntax: ``*``, ``central``, ``external:*``, lists, ``!id``."""
    patterns = [p.strip() for p in mirror_of.split(",") if p.strip()]
    if "!central" in patterns:
        return False
    return any(p in ("*", "central", "external:*", "external:https:*") for p in patterns)


def mirror_url(home: Path | None = None) -> str | None:
    """URL of the mirror of Maven Central in ``~/.m2/settings.xml``, if one is set."""
    settings = _settings(home or Path.home())
    if settings is None:
        return None
    for mirror in settings.iterfind("./mirrors/mirror"):
        url = (mirror.findtext("url") or "").strip()
        blocked = (mirror.findtext("blocked") or "").strip().lower() == "true"
        if url and not blocked and _mirrors_central(mirror.findtext("mirrorOf") or ""):
            return url if url.endswith("/") else url + "/"
    return None


def local_repository(home: Path | None = None) -> Path:
    """The local Maven repository: settings.xml's ``<localRepository>`` or ``~/.m2/repository``."""
    home = home or Path.home()
    settings = _settings(home)
    configured = settings.findtext("localRepository") if settings is not None else None
    if configured and configured.strip():
        return Path(configured.strip().replace("${user.home}", str(home))).expanduser()
    return home / ".m2" / "repository"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(jar: Jar, path: Path, origin: str) -> None:
    """Refuse a file whose checksum is not the locked one."""
    found = sha256_of(path)
    if found != jar.sha256:
        raise FetchError(
            f"{jar.coords}: the file from {origin} has sha256 {found}, but jars.lock "
            f"says {jar.sha256}; refusing it. A proxy or mirror may have served a "
            "different file. Check the mirror in ~/.m2/settings.xml, or if jars.lock "
            "was changed by hand, restore it (git checkout -- jars.lock).")


def _download(url: str, target: Path) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "localaws-fetch-jars"})
    with urllib.request.urlopen(request, timeout=60) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)


def _mvn_copy(jar: Jar, target: Path) -> None:
    """Let Maven fetch the jar (it applies proxies and credentials from its settings)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["mvn", "-B", "-q", "dependency:copy", f"-Dartifact={jar.coords}:jar",
                        f"-DoutputDirectory={tmp}"], check=True, capture_output=True,
                       text=True, timeout=600)
        shutil.move(str(Path(tmp) / jar.file), target)


@dataclass
class Sources:
    """Where jars are looked for, in order (see the module docstring)."""
    local_repo: Path
    base_url: str
    use_mvn: bool = True

    @classmethod
    def from_home(cls, home: Path | None = None) -> "Sources":
        return cls(local_repository(home), mirror_url(home) or MAVEN_CENTRAL,
                   use_mvn=shutil.which("mvn") is not None)

    def fetch(self, jar: Jar, target: Path) -> str:
        """Put ``jar`` at ``target`` (checked); return where it came from."""
        cached = self.local_repo / jar.repo_path
        if cached.is_file() and sha256_of(cached) == jar.sha256:
            shutil.copyfile(cached, target)
            return "local Maven repository"
        url = self.base_url + jar.repo_path
        try:
            _download(url, target)
        except (urllib.error.URLError, OSError) as exc:
            if not self.use_mvn:
                raise FetchError(
                    f"{jar.coords}: could not download {url}: {exc}. Check the network "
                    "(or set https_proxy), or configure a Maven mirror in "
                    f"~/.m2/settings.xml, or put the file at {cached}; then run "
                    "`make` again.") from None
            try:
                _mvn_copy(jar, target)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as mvn_exc:
                detail = getattr(mvn_exc, "stdout", "") or ""
                raise FetchError(
                    f"{jar.coords}: could not download {url} ({exc}), and "
                    f"`mvn dependency:copy` failed too ({mvn_exc}) {detail[-500:]}. Check the "
                    "network, the proxy or the mirror in ~/.m2/settings.xml, then run "
                    "`make` again.") from None
            _check(jar, target, "mvn dependency:copy")
            return "mvn"
        _check(jar, target, url)
        return self.base_url


# --------------------------------------------------------------------- installing

def install_set(jar_set: JarSet, dest: Path, sources: Sources) -> dict[str, int]:
    """Install one set into ``dest`` (its own folder); count what was done."""
    dest.mkdir(parents=True, exist_ok=True)
    counts = {"present": 0, "fetched": 0, "removed": 0}
    for jar in jar_set.jars:
        target = dest / jar.file
        if target.is_file() and sha256_of(target) == jar.sha256:
            counts["present"] += 1
            continue
        partial = dest / (jar.file + ".part")
        try:
            sources.fetch(jar, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        counts["fetched"] += 1
    wanted = {jar.file for jar in jar_set.jars}
    for stale in dest.glob("*.jar"):
        if stale.name not in wanted:
            stale.unlink()
            counts["removed"] += 1
    return counts


def install(lock: Path, dest_root: Path, names: list[str] | None, sources: Sources) -> None:
    sets = read_lock(lock)
    unknown = sorted(set(names or []) - set(sets))
    if unknown:
        raise FetchError(f"no set {', '.join(unknown)} in {lock}; it has: {', '.join(sets)}")
    for name in names or list(sets):
        started = time.monotonic()
        counts = install_set(sets[name], dest_root / name, sources)
        note = f", {counts['removed']} stale removed" if counts["removed"] else ""
        print(f"jars {name}: {len(sets[name].jars)} jars, {sets[name].size / 1e6:.1f} MB in "
              f"{dest_root / name} ({counts['present']} already there, {counts['fetched']} "
              f"fetched{note}; {time.monotonic() - started:.1f} s)")


# --------------------------------------------------------------------- re-locking (developers)

def _pom(jar_set: JarSet) -> str:
    exclusions = "".join(
        f"<exclusion><groupId>{ga.split(':')[0]}</groupId><artifactId>{ga.split(':')[1]}"
        "</artifactId></exclusion>" for ga, _ in jar_set.excludes)
    dependencies = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
        f"<exclusions>{exclusions}</exclusions></dependency>\n"
        for g, a, v in (root.split(":") for root in jar_set.roots))
    return ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            f"<groupId>localaws.lock</groupId><artifactId>{jar_set.name}</artifactId>"
            f"<version>0</version><dependencies>\n{dependencies}</dependencies></project>\n")


def resolve(jar_set: JarSet) -> list[tuple[str, Path]]:
    """``(group:artifact:version, file)`` of the runtime closure of the set's roots, via Maven."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "pom.xml").write_text(_pom(jar_set))
        listing = Path(tmp, "closure.txt")
        run = subprocess.run(
            ["mvn", "-B", "-q", "dependency:list", "-DincludeScope=runtime",
             "-DoutputAbsoluteArtifactFilename=true", f"-DoutputFile={listing}"],
            cwd=tmp, capture_output=True, text=True, timeout=1800)
        if run.returncode != 0:
            raise FetchError(f"mvn dependency:list failed for set {jar_set.name}:\n"
                             f"{run.stdout[-3000:]}{run.stderr[-2000:]}")
        lines = listing.read_text().splitlines()
    found = []
    for line in lines:
        # "   group:artifact:jar[:classifier]:version:scope:/abs/path.jar[ -- module x]"
        parts = line.strip().split(" -- ")[0].split(":")
        if len(parts) < 6 or parts[2] != "jar":
            continue
        group, artifact, version, path = parts[0], parts[1], parts[-3], parts[-1]
        found.append((f"{group}:{artifact}:{version}", Path(path)))
    return sorted(found)


def pyspark_jars_dir() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise FetchError("--lock needs pyspark installed in the Python that runs it "
                         "(use .venv/bin/python tools/fetch_jars.py --lock)")
    return Path(list(spec.submodule_search_locations)[0]) / "jars"


def provided_by(coords: str, shipped: list[str]) -> str | None:
    """The pyspark jar that already provides ``coords``, matched by artifact name."""
    group, artifact, _ = coords.split(":")
    name = PROVIDED_UNDER_OTHER_NAMES.get(f"{group}:{artifact}", artifact)
    pattern = re.compile(rf"{re.escape(name)}-\d[^/]*\.jar")
    return next((jar for jar in shipped if pattern.fullmatch(jar)), None)


def _tool_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=120)
        first = (out.stdout + out.stderr).strip().splitlines()[0]
        return re.sub(r"\x1b\[[0-9;]*m", "", first)    # mvn colours its banner
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


LOCK_HEADER = """\
# jars.lock: the exact JVM jars the course installs into .venv/jars/<set>/.
# `make` runs tools/fetch_jars.py, which installs every set below and checks
# each file's sha256; nothing is downloaded while the course runs.
#
# Rows (tab-separated), per [set]:
#   root     group:artifact:version   what the set is for (resolved with its dependencies)
#   exclude  group:artifact  why      left out of the roots' dependencies
#   classpath  own  why               the set runs on a JVM classpath of its own, not Spark's
#   jar      group:artifact:version  file  sha256  bytes   the resolved, locked result
# In a set that joins Spark's classpath (no 'classpath own' row), jars that
# pyspark already ships in pyspark/jars/ are left out (noted per set): one
# library twice on a classpath is how NoSuchMethodError happens.
#
# Produced by `.venv/bin/python tools/fetch_jars.py --lock` on {date}
# with {mvn}, against pyspark {pyspark}. Edit root/exclude rows, then re-run it.
"""


def lock(lock_path: Path) -> None:
    """Re-resolve every set of ``lock_path`` with Maven and rewrite the file."""
    if shutil.which("mvn") is None:
        raise FetchError("--lock needs Maven (mvn) on PATH; learners never need it.")
    sets = read_lock(lock_path)
    shipped_dir = pyspark_jars_dir()
    shipped = sorted(p.name for p in shipped_dir.glob("*.jar"))
    import pyspark
    out = [LOCK_HEADER.format(date=datetime.date.today().isoformat(),
                              mvn=_tool_version(["mvn", "-v"]), pyspark=pyspark.__version__)]
    for jar_set in sets.values():
        closure = resolve(jar_set)
        jars, skipped = [], []
        for coords, path in closure:
            twin = None if jar_set.own_classpath is not None else provided_by(coords, shipped)
            if twin:
                skipped.append(f"#   {coords}  (pyspark ships {twin})")
                continue
            jars.append(Jar(coords, path.name, sha256_of(path), path.stat().st_size))
        clashes = sorted({j.file for j in jars if [k.file for k in jars].count(j.file) > 1})
        if clashes:
            raise FetchError(f"set {jar_set.name}: two artifacts resolve to the same file name "
                             f"({', '.join(clashes)}); they would overwrite each other in "
                             f".venv/jars/{jar_set.name}/. Exclude one of them.")
        jar_set.jars = jars
        out.append(f"\n[{jar_set.name}]\n# {len(jars)} jars, {jar_set.size} bytes "
                   f"({jar_set.size / 1e6:.1f} MB) installed.\n")
        out += [f"root\t{root}\n" for root in jar_set.roots]
        out += [f"exclude\t{ga}\t{why}\n".replace("\t\n", "\n") for ga, why in jar_set.excludes]
        if jar_set.own_classpath is not None:
            out.append(f"classpath\town\t{jar_set.own_classpath}\n".replace("\t\n", "\n"))
        if skipped:
            out.append("# Resolved but left out, pyspark provides them:\n")
            out += [line + "\n" for line in skipped]
        out += [f"jar\t{j.coords}\t{j.file}\t{j.sha256}\t{j.size}\n" for j in jars]
        kept = ("own classpath: nothing left to pyspark" if jar_set.own_classpath is not None
                else f"{len(skipped)} left to pyspark")
        print(f"{jar_set.name}: {len(jars)} jars ({jar_set.size / 1e6:.1f} MB), {kept}")
    lock_path.write_text("".join(out), encoding="utf-8")
    print(f"rewrote {lock_path}; run `python tools/fetch_jars.py` and the tests, then commit it.")


# --------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock-file", type=Path, default=DEFAULT_LOCK,
                        help="the lock file (default: jars.lock at the project root)")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                        help="install set NAME into DEST/NAME (default: .venv/jars)")
    parser.add_argument("--set", dest="sets", action="append", metavar="NAME",
                        help="install only this set (repeatable; default: every set)")
    parser.add_argument("--lock", action="store_true",
                        help="developers: re-resolve every set with mvn and rewrite the lock file")
    args = parser.parse_args(argv)
    try:
        if args.lock:
            lock(args.lock_file)
        else:
            install(args.lock_file, args.dest, args.sets, Sources.from_home())
    except (FetchError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
