"""From folders of classified files to tables and partitions: where does a table start?

A crawler sees keys, not tables. It reads each folder's files, then walks the
folder tree bottom-up and decides, level by level, whether sibling folders
are *partitions of one table* or *separate tables* (Glue's rules, as AWS
documents them):

1. **Data compatibility.** Files can share a table only when they have the
   same format, compression and SerDe settings (a gzip CSV and a plain CSV,
   or a headed and a headerless CSV, never do).
2. **Schema similarity.** Sibling folders whose schemas are similar become
   partitions of one table: the crawler clusters their schemas, and merges
   the folders when the largest cluster holds more than 70% of them and there
   are at most 5 clusters. Otherwise every folder is a table of its own
   (two folders with unrelated columns: two tables). With
   ``"TableGroupingPolicy": "CombineCompatibleSchemas"`` ("create a single
   schema for each S3 path") similarity is ignored and compatibility alone
   decides; ``"TableLevelConfiguration": N`` puts every table root at level
   ``N`` of the path (the bucket is level 1).
3. **Partition keys.** Each level of folders merged into a table is a
   partition column of type ``string``: named ``key`` when the folders are
   Hive-style ``key=value`` (the value is what follows ``=``), else
   ``partition_0``, ``partition_1``... by level.
4. **Odd cases.** Files in one folder that do not belong together (a CSV
   next to a JSON file, or unrelated schemas) make one table per file,
   named after the file and located at it; so do files lying next to
   sub-folders. The include path itself is a table when everything below
   it merges (crawl a bucket that holds one folder and you get a table named
   after the bucket, the folder being ``partition_0``).

:class:`Planner` does this for one S3 target and returns :class:`TablePlan`
objects; ``crawler.py`` writes them to the Data Catalog.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import crawl_schema
from .classifiers import FileSchema
from .crawl_paths import S3Object, location, partition_value, table_name

SIMILARITY_SHARE = 0.7      # the largest cluster must hold more than this share of the folders
MAX_CLUSTERS = 5            # ... and there may be at most this many clusters


@dataclass
class Stats:
    """What Glue counts for a table or partition (``objectCount``, ``sizeKey``, ``recordCount``)."""
    objects: int = 0
    size: int = 0
    records: int = 0

    def __add__(self, other: "Stats") -> "Stats":
        return Stats(self.objects + other.objects, self.size + other.size, self.records + other.records)

    @property
    def average_record_size(self) -> int:
        return round(self.size / self.records) if self.records else 0


@dataclass
class PartitionPlan:
    values: tuple[str, ...]
    folders: tuple[str, ...]           # the folder names the values come from
    rel: str                            # folder relative to the include path
    location: str
    schema: FileSchema
    stats: Stats


@dataclass
class TablePlan:
    """One table the crawl found: where, what schema, which partitions."""
    base_name: str                      # folder (or file) name, not yet prefixed or sanitised
    location: str
    schema: FileSchema
    stats: Stats
    partition_keys: list[str] = field(default_factory=list)
    partitions: list[PartitionPlan] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)    # relative folders whose files it holds
    exclusions: list[str] = field(default_factory=list)  # the target's patterns, as full S3 globs

    def name(self, prefix: str = "") -> str:
        return table_name(self.base_name, prefix)


@dataclass
class Candidate:
    """A subtree that can still be one table (its root is decided by the levels above)."""
    schema: FileSchema
    depth: int
    partitions: list[PartitionPlan]


def merge(schemas: list[FileSchema]) -> FileSchema:
    """One schema for compatible files: the first file's settings, every file's columns."""
    first = schemas[0]
    columns = crawl_schema.merge_schemas(s.columns for s in schemas)
    merged = FileSchema(**{**first.__dict__, "columns": columns,
                           "serde_params": dict(first.serde_params), "params": dict(first.params)})
    if "paths" in merged.serde_params:         # the JSON SerDe's list of keys follows the columns
        merged.serde_params["paths"] = ",".join(n for n, _ in columns)
    return merged


def clusters(items: list, schema_of) -> list[list]:
    """Items grouped by compatible and similar schemas (greedy, in order)."""
    groups: list[tuple[tuple, list, list]] = []     # (compat key, union columns, items)
    for item in items:
        schema = schema_of(item)
        for key, columns, members in groups:
            if key == schema.compat_key() and crawl_schema.similar(columns, schema.columns):
                members.append(item)
                columns[:] = crawl_schema.merge_schemas([columns, schema.columns])
                break
        else:
            groups.append((schema.compat_key(), list(schema.columns), [item]))
    return [members for _, _, members in groups]


class Node:
    """A folder of the listing: its sub-folders and the files directly in it."""

    def __init__(self, rel: str):
        self.rel, self.children, self.files = rel, {}, []

    @property
    def name(self) -> str:
        return self.rel.rpartition("/")[2]


def tree(objects: list[S3Object]) -> Node:
    root = Node("")
    for obj in objects:
        node = root
        if obj.folder:
            for part in obj.folder.split("/"):
                rel = f"{node.rel}/{part}" if node.rel else part
                node = node.children.setdefault(part, Node(rel))
        node.files.append(obj)
    return root


class Planner:
    """Plans the tables of one S3 target.

    ``schemas`` maps each sampled object key to its :class:`FileSchema` (None:
    unreadable or unclassified, skipped); ``estimate`` gives the records of
    an object that was not read.
    """

    def __init__(self, bucket: str, prefix: str, schemas: dict[str, FileSchema | None], *,
                 combine: bool = False, table_level: int | None = None):
        self.bucket, self.prefix, self.schemas = bucket, prefix, schemas
        self.combine, self.table_level = combine, table_level
        self.tables: list[TablePlan] = []

    # -- the walk ------------------------------------------------------------------
    def plan(self, objects: list[S3Object]) -> list[TablePlan]:
        root = tree(objects)
        candidate = self.resolve(root)
        if candidate is not None:
            self.finish(root, candidate)
        return self.tables

    def level(self, node: Node) -> int:
        """The node's level in the path, the bucket being level 1."""
        parts = [p for p in (self.prefix.rstrip("/") + "/" + node.rel).split("/") if p]
        return 1 + len(parts)

    def resolve(self, node: Node) -> Candidate | None:
        results = [(child, self.resolve(child)) for _, child in sorted(node.children.items())]
        split = any(c is None and self.has_data(child) for child, c in results)
        candidates = [(child, c) for child, c in results if c is not None]
        if node.files:
            own = self.folder(node)
            if not node.children:
                return own
            # files next to sub-folders: each file is a table, so is each sub-folder
            if own is not None:
                self.file_tables(node, [o for o in node.files if self.schemas.get(o.key)])
            for child, c in candidates:
                self.finish(child, c)
            return None
        if not candidates:
            return None
        level = self.level(node)
        forced = self.table_level is not None
        if split or (forced and level < self.table_level) or not self.mergeable(candidates, forced):
            for child, c in candidates:
                self.finish(child, c)
            return None
        merged = self.merge_children(candidates)
        if forced and level == self.table_level:
            self.finish(node, merged)
            return None
        return merged

    def has_data(self, node: Node) -> bool:
        return any(self.schemas.get(o.key) for o in node.files) or any(
            self.has_data(c) for c in node.children.values())

    def mergeable(self, candidates: list[tuple[Node, Candidate]], forced: bool) -> bool:
        if len({c.depth for _, c in candidates}) != 1:
            return False
        if len({c.schema.compat_key() for _, c in candidates}) != 1:
            return False
        if self.combine or forced:
            return True
        groups = clusters([c for _, c in candidates], lambda c: c.schema)
        largest = max(len(g) for g in groups)
        return largest / len(candidates) > SIMILARITY_SHARE and len(groups) <= MAX_CLUSTERS

    def merge_children(self, candidates: list[tuple[Node, Candidate]]) -> Candidate:
        partitions = []
        for child, c in candidates:
            for p in c.partitions:
                partitions.append(PartitionPlan((child.name, *p.values), (child.name, *p.folders),
                                                p.rel, p.location, p.schema, p.stats))
        return Candidate(merge([c.schema for _, c in candidates]), candidates[0][1].depth + 1, partitions)

    # -- one folder's files -------------------------------------------------------------
    def folder(self, node: Node) -> Candidate | None:
        """A folder holding files only: one table candidate, or a table per file when
        its files do not belong together."""
        read = [o for o in node.files if self.schemas.get(o.key)]
        if not read:
            return None
        groups = clusters(read, lambda o: self.schemas[o.key])
        if len(groups) > 1:
            self.file_tables(node, read)
            return None
        schema = merge([self.schemas[o.key] for o in read])
        stats = self.stats(node.files, read)
        where = location(self.bucket, self.prefix, node.rel)
        return Candidate(schema, 0, [PartitionPlan((), (), node.rel, where, schema, stats)])

    def stats(self, files: list[S3Object], read: list[S3Object]) -> Stats:
        """Counts of the folder's files (but those found unreadable); records of files
        not read (beyond ``SampleSize``) estimated from the read ones."""
        files = [o for o in files if o.key not in self.schemas or self.schemas[o.key] is not None]
        known_records, known_bytes, sample_records, sample_bytes = 0, 0, 0, 0
        for o in read:
            s = self.schemas[o.key]
            if s.records is not None:
                known_records += s.records
                known_bytes += o.size
            sample_records += s.sample_records
            sample_bytes += s.sample_bytes
        per_record = (known_bytes / known_records if known_records else
                      sample_bytes / sample_records if sample_records else 0)
        records = 0
        for o in files:
            s = self.schemas.get(o.key)
            if s is not None and s.records is not None:
                records += s.records
            elif per_record:
                records += round(o.size / per_record)
        return Stats(len(files), sum(o.size for o in files), records)

    def file_tables(self, node: Node, files: list[S3Object]) -> None:
        for o in files:
            schema = self.schemas[o.key]
            self.tables.append(TablePlan(o.name, o.uri, schema, self.stats([o], [o]), folders=[node.rel]))

    # -- a table root ---------------------------------------------------------------
    def finish(self, node: Node, candidate: Candidate) -> None:
        if node.rel:
            base = node.name
        else:
            base = self.prefix.rstrip("/").rpartition("/")[2] or self.bucket
        keys = self.partition_keys(candidate)
        partitions = [PartitionPlan(tuple(partition_value(f)[1] if keys[i] != f"partition_{i}" else f
                                          for i, f in enumerate(p.folders)),
                                    p.folders, p.rel, p.location, p.schema, p.stats)
                      for p in candidate.partitions]
        stats = Stats()
        for p in partitions:
            stats = stats + p.stats
        self.tables.append(TablePlan(base, location(self.bucket, self.prefix, node.rel), candidate.schema, stats,
                                     keys, partitions if keys else [], [p.rel for p in partitions]))

    @staticmethod
    def partition_keys(candidate: Candidate) -> list[str]:
        keys = []
        for i in range(candidate.depth):
            names = {partition_value(p.folders[i])[0] for p in candidate.partitions}
            key = names.pop() if len(names) == 1 else None
            keys.append(key if key else f"partition_{i}")
        return keys
