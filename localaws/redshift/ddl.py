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
  them, and only within one slice);
- ``VARCHAR(n)`` / ``CHAR(n)``: DuckDB ignores the length, Redshift refuses a
  longer value (``value too long for type character varying(n)``, SQLSTATE
  22001; the length counts bytes, as Redshift's does). Each such column gets
  a CHECK that raises that message, so INSERT, UPDATE and MERGE refuse it on
  every slice. A length only where the DDL wrote one: Redshift's defaults for
  a bare ``VARCHAR`` (256) and ``CHAR`` (1) are not enforced.

``ALTER TABLE`` on a distributed table keeps the DuckDB column definitions
(``TableInfo.columns_sql``, one string) in step: :func:`split_definitions`,
:func:`definition_name` and :func:`rename_definition` work on that string.
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


#: Character types whose declared length Redshift enforces -> the type's name in its message.
LENGTH_CHECKED = {"VARCHAR": "character varying", "NVARCHAR": "character varying", "CHAR": "character",
                  "NCHAR": "character", "BPCHAR": "character"}
VARCHAR_MAX = 65535            # VARCHAR(MAX); CHAR(MAX) is 4096


def length_check(name: str, kind) -> str:
    """`` CHECK (...)`` refusing values longer than a VARCHAR(n)/CHAR(n) allows ('' for other types)."""
    from sqlglot import exp

    if not isinstance(kind, exp.DataType) or kind.this.name not in LENGTH_CHECKED or not kind.expressions:
        return ""
    size = kind.expressions[0].name
    if not size.isdigit():
        return ""
    message = f"value too long for type {LENGTH_CHECKED[kind.this.name]}({size})"
    return (f" CHECK (CASE WHEN strlen({quote(name)}) > {size} THEN error('{message}') ELSE TRUE END)")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_definition(column, schema: str, table: str, identity: bool = True) -> tuple[str, str, str | None]:
    """One parsed column (sqlglot ColumnDef) as DuckDB's definition, its name, and a sequence to
    create first (IDENTITY) or None. ``identity=False``: an IDENTITY column is refused (ALTER TABLE
    ADD COLUMN cannot add one on Redshift)."""
    from sqlglot import exp

    column = column.copy()
    name = column.name.lower()
    sequence_sql = None
    for constraint in list(column.args.get("constraints") or []):
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.GeneratedAsIdentityColumnConstraint):
            if not identity:
                raise errors.SQLError(errors.FEATURE_NOT_SUPPORTED,
                                      "ALTER TABLE ADD COLUMN does not support columns with type IDENTITY")
            sequence = f'{schema}."{table}_{name}_seq"'
            start = kind.args.get("start").sql() if kind.args.get("start") else "1"
            step = kind.args.get("increment").sql() if kind.args.get("increment") else "1"
            sequence_sql = f"CREATE SEQUENCE IF NOT EXISTS {sequence} START {start} INCREMENT {step}"
            constraint.set("kind", exp.DefaultColumnConstraint(
                this=exp.func("nextval", exp.Literal.string(sequence.replace('"', '')))))
        elif isinstance(kind, (exp.PrimaryKeyColumnConstraint, exp.UniqueColumnConstraint,
                               exp.Reference, exp.EncodeColumnConstraint)):
            constraint.pop()
    kind = column.args.get("kind")
    if isinstance(kind, exp.DataType) and kind.expressions and kind.expressions[0].name.upper() == "MAX":
        size = 4096 if LENGTH_CHECKED.get(kind.this.name) == "character" else VARCHAR_MAX   # VARCHAR(MAX)
        kind.set("expressions", [exp.DataTypeParam(this=exp.Literal.number(size))])
    return column.sql(dialect="duckdb") + length_check(name, column.args.get("kind")), name, sequence_sql


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
        definition, name, sequence = column_definition(column, schema, table)
        definitions.append(definition)
        names.append(name)
        if sequence:
            sequences.append(sequence)
    return definitions, names, sequences


# -- the column definitions string of a distributed table (ALTER TABLE) ---------------------
def split_definitions(columns_sql: str) -> list[str]:
    """``a INT, b DECIMAL(10, 2) CHECK (...)`` -> one string per column (commas inside
    parentheses and quotes kept)."""
    parts, depth, start, quoted = [], 0, 0, None
    for i, char in enumerate(columns_sql):
        if quoted:
            quoted = None if char == quoted else quoted
        elif char in "'\"":
            quoted = char
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "," and depth == 0:
            parts.append(columns_sql[start:i].strip())
            start = i + 1
    parts.append(columns_sql[start:].strip())
    return [p for p in parts if p]


def definition_name(definition: str) -> str:
    """The column a DuckDB column definition defines (``"a b" INT`` -> ``a b``)."""
    import re

    match = re.match(r'\s*("(?:[^"]|"")*"|[^\s"]+)', definition)
    name = match.group(1)
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def rename_definition(definition: str, old: str, new: str) -> str:
    """The definition of column ``old`` under the name ``new`` (its length CHECK follows it)."""
    import re

    rest = definition.strip()[len(re.match(r'("(?:[^"]|"")*"|[^\s"]+)', definition.strip()).group(1)):]
    return quote(new) + rest.replace(f"strlen({quote(old)})", f"strlen({quote(new)})")
