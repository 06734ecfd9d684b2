"""Redshift's CREATE TABLE, turned into what ``storage.py`` needs.

Redshift's table DDL carries storage attributes DuckDB has no use for, and
sqlglot parses only some of them:

- table level ``DISTSTYLE`` / ``DISTKEY(col)`` / ``[COMPOUND] SORTKEY(cols)``:
  parsed by sqlglot into typed properties, read from the tree;
- column level ``col INT DISTKEY SORTKEY``, ``ENCODE az64`` (compression),
  ``INTERLEAVED`` and ``BACKUP NO``: sqlglot cannot parse them, so they are
  cut from the text first (with sqlglot's tokenizer, which knows quoting);
- ``IDENTITY(seed, step)``: a DuckDB sequence and a ``nextval`` default;
- ``PRIMARY KEY``, ``UNIQUE``, ``REFERENCES``: Redshift records them for the
  planner but never enforces them, so they are dropped (DuckDB would enforce
  them, and only within one slice).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import errors

#: Words cut from CREATE TABLE text before parsing (with the word after them when it is a value).
CUT_ALONE = {"INTERLEAVED", "COMPOUND"}
CUT_WITH_VALUE = {"ENCODE", "BACKUP"}


@dataclass
class TableSpec:
    """The storage attributes of a CREATE TABLE."""
    diststyle: str = "AUTO"
    distkey: str | None = None
    sortkey: list[str] = field(default_factory=list)
    interleaved: bool = False


def strip_attributes(sql: str) -> tuple[str, TableSpec]:
    """``sql`` without the attributes sqlglot cannot parse, and what they said."""
    from sqlglot.dialects.redshift import Redshift
    from sqlglot.tokens import TokenType

    spec, cuts, depth, column = TableSpec(), [], 0, None
    tokens = Redshift().tokenize(sql)
    skip_next = False
    for i, token in enumerate(tokens):
        word = token.text.upper()
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if skip_next:
            cuts.append(token)
            skip_next = False
            continue
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 1 and tokens[i - 1].token_type in (TokenType.L_PAREN, TokenType.COMMA):
            column = token.text.lower()          # the first word of a column definition
        if word in CUT_WITH_VALUE and token.token_type == TokenType.VAR and depth <= 1 and (
                following is not None and following.token_type != TokenType.L_PAREN):
            cuts.append(token)
            skip_next = True
        elif word in CUT_ALONE:
            spec.interleaved = spec.interleaved or word == "INTERLEAVED"
            cuts.append(token)
        elif word in ("DISTKEY", "SORTKEY") and depth == 1 and (
                following is None or following.token_type != TokenType.L_PAREN):
            if word == "DISTKEY":
                spec.distkey, spec.diststyle = column, "KEY"
            else:
                spec.sortkey.append(column)
            cuts.append(token)
    for token in reversed(cuts):
        sql = sql[:token.start] + sql[token.end + 1:]
    return sql, spec


def read_properties(tree, spec: TableSpec) -> TableSpec:
    """Add the table-level DISTSTYLE / DISTKEY / SORTKEY of a parsed CREATE TABLE to ``spec``."""
    from sqlglot import exp

    for prop in tree.find_all(exp.DistStyleProperty):
        spec.diststyle = prop.this.name.upper()
    for prop in tree.find_all(exp.DistKeyProperty):
        spec.distkey = prop.this.name.lower()
        if spec.diststyle == "AUTO":
            spec.diststyle = "KEY"
    for prop in tree.find_all(exp.SortKeyProperty):
        keys = prop.this if isinstance(prop.this, list) else [prop.this]
        names = [k.name.lower() for k in keys if k.name.upper() != "AUTO"]
        spec.sortkey = names or spec.sortkey
    if spec.diststyle not in ("KEY", "EVEN", "ALL", "AUTO"):
        raise errors.SQLError(errors.SYNTAX_ERROR, f"invalid DISTSTYLE {spec.diststyle}")
    if spec.diststyle == "KEY" and not spec.distkey:
        raise errors.SQLError(errors.SYNTAX_ERROR, "DISTSTYLE KEY needs a DISTKEY column")
    return spec


def column_definitions(tree, schema: str, table: str) -> tuple[list[str], list[str], list[str]]:
    """The DuckDB column definitions of a CREATE TABLE, its column names, and sequences to create.

    IDENTITY columns get a sequence ``<schema>."<table>_<column>_seq"`` and a
    ``nextval`` default, so inserted rows are numbered once, before routing.
    """
    from sqlglot import exp

    definitions, names, sequences = [], [], []
    for column in tree.this.expressions:
        if not isinstance(column, exp.ColumnDef):
            continue                              # PRIMARY KEY (...), FOREIGN KEY (...): not enforced
        column = column.copy()
        name = column.name.lower()
        for constraint in list(column.args.get("constraints") or []):
            kind = constraint.args.get("kind")
            if isinstance(kind, exp.GeneratedAsIdentityColumnConstraint):
                sequence = f'{schema}."{table}_{name}_seq"'
                start = kind.args.get("start").sql() if kind.args.get("start") else "1"
                step = kind.args.get("increment").sql() if kind.args.get("increment") else "1"
                sequences.append(f"CREATE SEQUENCE IF NOT EXISTS {sequence} START {start} INCREMENT {step}")
                constraint.set("kind", exp.DefaultColumnConstraint(
                    this=exp.func("nextval", exp.Literal.string(sequence.replace('"', '')))))
            elif isinstance(kind, (exp.PrimaryKeyColumnConstraint, exp.UniqueColumnConstraint,
                                   exp.Reference)):
                constraint.pop()
        definitions.append(column.sql(dialect="duckdb"))
        names.append(name)
    return definitions, names, sequences
