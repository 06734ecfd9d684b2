#!/usr/bin/env python3
"""Install the browser scripts the book needs (Mermaid), exactly as ``web_assets.lock`` lists them.

``make book`` renders the course into a static site that must work with no
network: every script a page runs is served by the site itself. Mermaid (the
diagrams in every chapter) is a JavaScript package published on the **npm
registry**. A learner has Python and ``make``, not Node, so this script does
what ``npm install`` would do for one package, with the standard library:

1. download the package's tarball (``.tgz``) from the registry;
2. check it against the lock's ``integrity``, the registry's own
   ``dist.integrity`` (a sha512 of the tarball, base64, as npm checks it);
3. keep only the files the lock names (``dist/mermaid.min.js``: one
   self-contained script, and the licence), each checked against its locked
   sha256, under ``.venv/web/<package>/``.

``make`` runs it once, after ``pip install``; the book builder
(``tools/book/build.py``) copies the files into the site and never touches
the network. A package whose files are all installed with the locked
checksums is left alone, so a second run downloads nothing. Files in a
package's folder that the lock no longer names are removed.

Usage (standard library only)::

    python tools/fetch_web_assets.py             # every package, into .venv/web/<package>/
    python tools/fetch_web_assets.py --dest DIR  # into DIR/<package>/ (set LOCALAWS_WEB_DIR=DIR)
    python tools/fetch_web_assets.py --lock      # developers: newest release of each package's
                                                 # locked major version; rewrites the lock

The registry is ``https://registry.npmjs.org/`` unless ``NPM_CONFIG_REGISTRY``
(or npm's lower-case ``npm_config_registry``) or a ``registry=`` line in
``~/.npmrc`` names another one, as npm itself would use. Proxies come from
``https_proxy`` / ``http_proxy``, as for any urllib download.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOCK = PROJECT_ROOT / "web_assets.lock"
DEFAULT_DEST = PROJECT_ROOT / ".venv" / "web"
NPM_REGISTRY = "https://registry.npmjs.org/"
#: npm's "abbreviated metadata" (versions and dist fields only, far smaller than the full document).
ABBREVIATED = "application/vnd.npm.install-v1+json"


class FetchError(RuntimeError):
    """A package could not be installed; the message says which, from where, and what to do."""


# --------------------------------------------------------------------- the lock file

@dataclass(frozen=True)
class KeptFile:
    """One file kept from a package: its path inside the package, sha256 and size."""
    path: str
    sha256: str
    size: int


@dataclass
class Package:
    """A locked npm package: which release, where its tarball is, and the files kept from it."""
    name: str
    version: str = ""
    range: str = ""          # the major version ``--lock`` stays within, e.g. "11"
    tarball: str = ""        # path under the registry URL: "mermaid/-/mermaid-11.17.2.tgz"
    integrity: str = ""      # "sha512-<base64>", the registry's dist.integrity
    files: list[KeptFile] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def parse_lock(text: str) -> dict[str, Package]:
    """Read ``web_assets.lock``: ``[package]`` headers, then tab-separated ``version``,
    ``range``, ``tarball``, ``integrity`` and ``file`` rows; ``#`` starts a comment line."""
    packages: dict[str, Package] = {}
    current: Package | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if not line or line.lstrip().startswith("#"):
            continue
        where = f"web_assets.lock line {number}"
        header = re.fullmatch(r"\[(@?[a-z0-9][a-z0-9._/-]*)\]", line)
        if header:
            current = packages.setdefault(header.group(1), Package(header.group(1)))
            continue
        if current is None:
            raise ValueError(f"{where}: a row before any [package] header: {line!r}")
        kind, *cols = line.split("\t")
        if kind in ("version", "range", "tarball") and len(cols) == 1 and cols[0]:
            setattr(current, kind, cols[0])
        elif kind == "integrity" and len(cols) == 1 and cols[0].startswith("sha512-"):
            current.integrity = cols[0]
        elif kind == "file" and len(cols) == 3:
            path, sha, size = cols
            safe = not PurePosixPath(path).is_absolute() and ".." not in PurePosixPath(path).parts
            if not (safe and re.fullmatch(r"[0-9a-f]{64}", sha) and size.isdigit()):
                raise ValueError(f"{where}: expected 'file<TAB>path<TAB>sha256<TAB>bytes' with a "
                                 f"relative path, got {line!r}")
            current.files.append(KeptFile(path, sha, int(size)))
        else:
            raise ValueError(f"{where}: not a version, range, tarball, integrity or file row: "
                             f"{line!r}")
    for package in packages.values():
        missing = [k for k in ("version", "tarball", "integrity") if not getattr(package, k)]
        if missing or not package.files:
            raise ValueError(f"web_assets.lock: [{package.name}] lacks "
                             f"{', '.join(missing) or 'file rows'}")
    return packages


def read_lock(path: Path) -> dict[str, Package]:
    try:
        return parse_lock(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FetchError(f"{path} is missing: it lists the web assets to install. "
                         "Restore it from git (git checkout -- web_assets.lock).") from None


# --------------------------------------------------------------------- the registry

def registry_url(environ: dict | None = None, home: Path | None = None) -> str:
    """The npm registry to use, ending in ``/``: the environment, then ``~/.npmrc``, then npmjs."""
    environ = os.environ if environ is None else environ
    url = environ.get("NPM_CONFIG_REGISTRY") or environ.get("npm_config_registry")
    if not url:
        try:
            npmrc = ((home or Path.home()) / ".npmrc").read_text(encoding="utf-8")
        except OSError:
            npmrc = ""
        for line in npmrc.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == "registry" and value.strip():
                url = value.strip().strip('"')
    url = url or NPM_REGISTRY
    return url if url.endswith("/") else url + "/"


def sri_sha512(data: bytes) -> str:
    """The Subresource-Integrity form npm uses for ``dist.integrity``: ``sha512-<base64>``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _get(url: str, what: str, accept: str | None = None) -> bytes:
    headers = {"User-Agent": "localaws-fetch-web-assets"}
    if accept:
        headers["Accept"] = accept
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=120) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"{what}: could not download {url}: {reason}. Check the network (or set "
            "https_proxy), or point NPM_CONFIG_REGISTRY (or registry= in ~/.npmrc) at an npm "
            "registry mirror you can reach; then run `make` again.") from None


def download_tarball(package: Package, registry: str) -> bytes:
    """The package's tarball from ``registry``, refused unless its sha512 is the locked one."""
    url = registry + package.tarball
    data = _get(url, f"{package.name} {package.version}")
    found = sri_sha512(data)
    if found != package.integrity:
        raise FetchError(
            f"{package.name} {package.version}: the tarball from {url} has integrity {found}, "
            f"but web_assets.lock says {package.integrity}; refusing it. A proxy or mirror may "
            "have served a different file; if web_assets.lock was changed by hand, restore it "
            "(git checkout -- web_assets.lock).")
    return data


def tarball_members(data: bytes) -> dict[str, bytes]:
    """Regular files of an npm tarball by their path inside the package (the top folder,
    ``package/`` in tarballs npm publishes, is stripped)."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            parts = PurePosixPath(member.name).parts[1:]
            if parts and ".." not in parts:
                found["/".join(parts)] = tar.extractfile(member).read()
    return found


# --------------------------------------------------------------------- installing

def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def installed(package: Package, dest: Path) -> bool:
    """True when every kept file of ``package`` is in ``dest`` with its locked checksum."""
    return all(_sha256(dest / f.path) == f.sha256 for f in package.files)


def install_package(package: Package, dest: Path, registry: str) -> str:
    """Install ``package`` into ``dest`` (its own folder); return what was done."""
    if installed(package, dest):
        state = "already there"
    else:
        members = tarball_members(download_tarball(package, registry))
        contents = {}
        for kept in package.files:           # check everything before writing anything
            data = members.get(kept.path)
            if data is None:
                raise FetchError(f"{package.name} {package.version}: the tarball has no "
                                 f"{kept.path}; web_assets.lock names a file it does not hold.")
            if hashlib.sha256(data).hexdigest() != kept.sha256:
                raise FetchError(f"{package.name} {package.version}: {kept.path} in the tarball "
                                 "differs from its sha256 in web_assets.lock; refusing it.")
            contents[kept.path] = data
        for path, data in contents.items():
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            os.replace(partial, target)
        state = f"fetched from {registry}"
    wanted = {dest / f.path for f in package.files}
    for stale in sorted(p for p in dest.rglob("*") if p.is_file() and p not in wanted):
        stale.unlink()
    return state


def install(lock: Path, dest_root: Path, names: list[str] | None, registry: str) -> None:
    packages = read_lock(lock)
    unknown = sorted(set(names or []) - set(packages))
    if unknown:
        raise FetchError(f"no package {', '.join(unknown)} in {lock}; "
                         f"it has: {', '.join(packages)}")
    for name in names or list(packages):
        package, started = packages[name], time.monotonic()
        state = install_package(package, dest_root / name, registry)
        print(f"web {name} {package.version}: {len(package.files)} files, "
              f"{package.size / 1e6:.1f} MB in {dest_root / name} ({state}; "
              f"{time.monotonic() - started:.1f} s)")


# --------------------------------------------------------------------- re-locking (developers)

LOCK_HEADER = """\
# web_assets.lock: the exact npm packages whose files the book (make book) serves.
# `make` runs tools/fetch_web_assets.py, which downloads each tarball from the npm
# registry (no npm or Node needed), refuses it unless its sha512 is the `integrity`
# below (the registry's dist.integrity), and keeps only the `file` rows, each checked
# against its sha256, in .venv/web/<package>/. Building the book downloads nothing.
#
# Rows (tab-separated), per [package]:
#   version    the exact release installed
#   range      the major version `--lock` stays within (it picks that major's newest release)
#   tarball    the tarball's path under the registry URL
#   integrity  sha512-<base64> of the tarball, as the registry publishes it (dist.integrity)
#   file       path-inside-the-package  sha256  bytes    a file kept
#
# Produced by `.venv/bin/python tools/fetch_web_assets.py --lock` on {date}
# against {registry}. Edit range or file rows, then re-run it.
"""


def _newest(versions: list[str], major: str) -> str:
    """The newest release ``major.x.y`` (no pre-release) of ``versions``."""
    releases = [v for v in versions if re.fullmatch(rf"{re.escape(major)}\.\d+\.\d+", v)]
    if not releases:
        raise FetchError(f"no release {major}.x.y among the registry's versions")
    return max(releases, key=lambda v: tuple(int(p) for p in v.split(".")))


def relock(lock_path: Path, registry: str) -> None:
    """Re-resolve every package of ``lock_path`` to its major's newest release and rewrite it."""
    packages = read_lock(lock_path)
    out = [LOCK_HEADER.format(date=datetime.date.today().isoformat(), registry=registry)]
    for package in packages.values():
        major = package.range or package.version.split(".")[0]
        document = json.loads(_get(registry + package.name, f"{package.name} metadata",
                                   accept=ABBREVIATED))
        version = _newest(list(document["versions"]), major)
        dist = document["versions"][version]["dist"]
        tarball = dist["tarball"].split("/" + package.name + "/-/", 1)[-1]
        updated = Package(package.name, version, major, f"{package.name}/-/{tarball}",
                          dist["integrity"], [])
        members = tarball_members(download_tarball(updated, registry))
        for kept in package.files:
            if kept.path not in members:
                raise FetchError(f"{package.name} {version} has no {kept.path}: "
                                 "edit its file rows in the lock")
            data = members[kept.path]
            updated.files.append(KeptFile(kept.path, hashlib.sha256(data).hexdigest(), len(data)))
        out.append(f"\n[{updated.name}]\n# {len(updated.files)} files, {updated.size} bytes "
                   f"({updated.size / 1e6:.1f} MB) installed.\n")
        out += [f"version\t{updated.version}\n", f"range\t{updated.range}\n",
                f"tarball\t{updated.tarball}\n", f"integrity\t{updated.integrity}\n"]
        out += [f"file\t{f.path}\t{f.sha256}\t{f.size}\n" for f in updated.files]
        print(f"{updated.name}: {package.version} -> {updated.version}")
    lock_path.write_text("".join(out), encoding="utf-8")
    print(f"rewrote {lock_path}; run `python tools/fetch_web_assets.py` and the book tests, "
          "then commit it.")


# --------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock-file", type=Path, default=DEFAULT_LOCK,
                        help="the lock file (default: web_assets.lock at the project root)")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                        help="install package NAME into DEST/NAME (default: .venv/web)")
    parser.add_argument("--package", dest="packages", action="append", metavar="NAME",
                        help="install only this package (repeatable; default: every package)")
    parser.add_argument("--lock", action="store_true",
                        help="developers: newest release of each locked major; rewrite the lock")
    args = parser.parse_args(argv)
    try:
        if args.lock:
            relock(args.lock_file, registry_url())
        else:
            install(args.lock_file, args.dest, args.packages, registry_url())
    except (FetchError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
