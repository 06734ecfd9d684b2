"""What a crawler sees of S3: the objects under an include path, its exclude patterns, names.

An S3 target is an *include path* (``s3://bucket/prefix/``) and a list of
*exclude patterns*, Unix-style globs written relative to the include path
(Glue's rules):

- ``/`` separates the folder levels of a key;
- ``*`` matches any characters of one name, never crossing a ``/``;
  ``**`` matches across folders;
- ``?`` matches one character of a name; ``[abc]``, ``[a-z]`` and
  ``[!a-c]`` one character of a set (``*``, ``?`` and ``\\`` are plain
  inside brackets);
- ``{a,b}`` matches either sub-pattern (groups do not nest);
- ``\\`` escapes the next character; a leading ``.`` is an ordinary
  character (``*`` matches ``.hidden``).

So with the include path ``s3://b/data/``, ``departments/**`` excludes a
whole folder, ``**.csv`` every CSV file at any depth and ``*.csv`` only the
CSV files directly in ``data/``.

Tables are named after their folder: lower case, every character other
than a letter, a digit or ``_`` replaced by ``_`` (``year=2017`` ->
``year_2017``, ``my-data`` -> ``my_data``), after the crawler's
``TablePrefix``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from localaws.core.s3 import split


@dataclass(frozen=True)
class S3Object:
    """One object found under an include path: ``rel`` is its key relative to the path."""
    bucket: str
    key: str
    rel: str
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def folder(self) -> str:
        """The relative folder holding the object ('' at the include path itself)."""
        return self.rel.rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.rel.rpartition("/")[2]


def include_path(path: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of an include path; the prefix ends with ``/`` unless empty."""
    bucket, prefix = split(path if "://" in path else f"s3://{path}")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def location(bucket: str, prefix: str, rel_folder: str = "") -> str:
    """``s3://bucket/prefix/rel_folder/``: a table's or a partition's LOCATION (with the final ``/``)."""
    key = prefix + (rel_folder + "/" if rel_folder else "")
    return f"s3://{bucket}/{key}"


def list_objects(s3, path: str) -> list[S3Object]:
    """Every object under the include path, sorted by key (raises ``ClientError`` as S3 does:
    ``NoSuchBucket`` for a bucket that does not exist).

    A path naming one object (``s3://b/data/file.csv``) yields that object alone.
    """
    bucket, prefix = include_path(path)
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found.append(S3Object(bucket, obj["Key"], obj["Key"][len(prefix):], obj["Size"]))
    if not found and prefix:
        single = prefix.rstrip("/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=single):
            for obj in page.get("Contents", []):
                if obj["Key"] == single:
                    found.append(S3Object(bucket, obj["Key"], obj["Key"].rpartition("/")[2], obj["Size"]))
    return sorted(found, key=lambda o: o.key)


# ------------------------------------------------------------------ exclude patterns
def glob_regex(pattern: str) -> re.Pattern:
    """A compiled regex matching the relative keys ``pattern`` excludes (Glue's glob rules)."""
    return re.compile(_glob(pattern, in_group=False) + r"\Z", re.DOTALL)


def _glob(pattern: str, in_group: bool) -> str:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
            else:
                out.append("[^/]*")
                i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            chars = "".join("\\" + ch if ch in "\\^]" else ch for ch in body)
            out.append(f"[^/{chars}]" if negate else f"(?![/])[{chars}]")
            i = end + 1
        elif c == "{" and not in_group:
            end = pattern.find("}", i)
            if end < 0:
                out.append(re.escape(c))
                i += 1
                continue
            choices = pattern[i + 1:end].split(",")
            out.append("(?:" + "|".join(_glob(ch, in_group=True) for ch in choices) + ")")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


class Exclusions:
    """The exclude patterns of one S3 target."""

    def __init__(self, patterns):
        self.patterns = [p for p in (patterns or []) if p]
        self.regexes = [glob_regex(p) for p in self.patterns]

    def excluded(self, rel: str) -> bool:
        """Whether the object (or folder) at relative path ``rel`` is excluded."""
        return any(r.match(rel) for r in self.regexes)

    def full(self, path: str) -> list[str]:
        """The patterns as Glue stores them in a table's ``exclusions`` property:
        prefixed with the include path."""
        bucket, prefix = include_path(path)
        return [f"s3://{bucket}/{prefix}{p}" for p in self.patterns]


# ------------------------------------------------------------------ names
def table_name(folder: str, prefix: str = "") -> str:
    """The name Glue gives a table for ``folder`` (a folder or file name)."""
    return (prefix + re.sub(r"[^a-z0-9_]", "_", folder.lower())).lower()


def partition_value(folder: str) -> tuple[str | None, str]:
    """``("year", "2024")`` for a Hive-style ``year=2024`` folder, ``(None, name)`` otherwise."""
    key, eq, value = folder.partition("=")
    if eq and key:
        return key.lower(), value
    return None, folder
