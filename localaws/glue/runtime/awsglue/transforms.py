"""Glue's transform classes: ``ApplyMapping.apply(frame=..., mappings=...)`` and friends.

Glue scripts (and the ones Glue Studio generates) call transforms as
classes, ``X.apply(frame=..., ...)``; each is the ``DynamicFrame`` method of
the same name (see ``dynamicframe.py`` for what each does locally and how
it differs from Glue). ``from awsglue.transforms import *`` brings them all.
"""
from __future__ import annotations

from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection

__all__ = ["ApplyMapping", "DropFields", "DropNullFields", "Filter", "Join", "Relationalize", "RenameField",
           "ResolveChoice", "SelectFields", "SelectFromCollection"]


class GlueTransform:
    """Base of the transforms: ``apply`` is a class method, as on Glue."""

    @classmethod
    def apply(cls, *args, **kwargs):
        raise NotImplementedError

    @classmethod
    def describe(cls) -> str:
        return (cls.__doc__ or "").strip()


class ApplyMapping(GlueTransform):
    """Keep, rename and cast fields: ``mappings=[(source, source_type, target, target_type), ...]``."""

    @classmethod
    def apply(cls, frame: DynamicFrame, mappings, case_sensitive: bool = False, transformation_ctx: str = "",
              info: str = "", stageThreshold: int = 0, totalThreshold: int = 0) -> DynamicFrame:  # noqa: N803
        return frame.apply_mapping(mappings, case_sensitive, transformation_ctx)


class ResolveChoice(GlueTransform):
    """Resolve choice types: ``specs=[("price", "cast:double")]`` or ``choice="match_catalog"``."""

    @classmethod
    def apply(cls, frame: DynamicFrame, specs=None, choice: str = "", database: str | None = None,
              table_name: str | None = None, transformation_ctx: str = "", info: str = "",
              stageThreshold: int = 0, totalThreshold: int = 0, catalog_id=None) -> DynamicFrame:  # noqa: N803
        return frame.resolveChoice(specs, choice, database, table_name, transformation_ctx, catalog_id=catalog_id)


class DropNullFields(GlueTransform):
    """Drop the fields that are null in every record (top-level fields locally)."""

    @classmethod
    def apply(cls, frame: DynamicFrame, transformation_ctx: str = "", info: str = "",
              stageThreshold: int = 0, totalThreshold: int = 0) -> DynamicFrame:  # noqa: N803
        return frame.drop_null_fields()


class Relationalize(GlueTransform):
    """Nested data to flat tables: the root table, plus one table per array field.

    Returns a ``DynamicFrameCollection``: ``name`` (default ``"roottable"``) is
    the root, with structs flattened into ``a.b`` columns and each array
    replaced by a key; ``<name>_<array>`` holds the array's elements (``id``
    = that key, ``index``, ``<array>.val`` or ``<array>.val.<field>``).
    ``staging_path`` is accepted and unused: Glue spills intermediate tables
    there, locally Spark keeps them.
    """

    @classmethod
    def apply(cls, frame: DynamicFrame, staging_path: str | None = None, name: str = "roottable", options=None,
              transformation_ctx: str = "", info: str = "", stageThreshold: int = 0,  # noqa: N803
              totalThreshold: int = 0) -> DynamicFrameCollection:  # noqa: N803
        return frame.relationalize(name, staging_path, options, transformation_ctx)


class Filter(GlueTransform):
    """The records for which ``f(record)`` is true."""

    @classmethod
    def apply(cls, frame: DynamicFrame, f, transformation_ctx: str = "", info: str = "",
              stageThreshold: int = 0, totalThreshold: int = 0) -> DynamicFrame:  # noqa: N803
        return frame.filter(f, transformation_ctx)


class SelectFields(GlueTransform):
    """Keep only the fields ``paths``."""

    @classmethod
    def apply(cls, frame: DynamicFrame, paths, transformation_ctx: str = "", info: str = "",
              stageThreshold: int = 0, totalThreshold: int = 0) -> DynamicFrame:  # noqa: N803
        return frame.select_fields(paths, transformation_ctx)


class DropFields(GlueTransform):
    """Drop the fields ``paths``."""

    @classmethod
    def apply(cls, frame: DynamicFrame, paths, transformation_ctx: str = "", info: str = "",
              stageThreshold: int = 0, totalThreshold: int = 0) -> DynamicFrame:  # noqa: N803
        return frame.drop_fields(paths, transformation_ctx)


class RenameField(GlueTransform):
    """Rename the field ``old_name`` to ``new_name``."""

    @classmethod
    def apply(cls, frame: DynamicFrame, old_name: str, new_name: str, transformation_ctx: str = "", info: str = "",
              stageThreshold: int = 0, totalThreshold: int = 0) -> DynamicFrame:  # noqa: N803
        return frame.rename_field(old_name, new_name, transformation_ctx)


class Join(GlueTransform):
    """Equality join of two frames on ``keys1`` = ``keys2``."""

    @classmethod
    def apply(cls, frame1: DynamicFrame, frame2: DynamicFrame, keys1, keys2, transformation_ctx: str = "") -> DynamicFrame:
        return frame1.join(keys1, keys2, frame2, transformation_ctx)


class SelectFromCollection(GlueTransform):
    """One frame of a ``DynamicFrameCollection``, by name."""

    @classmethod
    def apply(cls, dfc: DynamicFrameCollection, key: str, transformation_ctx: str = "") -> DynamicFrame:
        return dfc.select(key)
