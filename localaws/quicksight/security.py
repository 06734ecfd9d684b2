"""Column-level and row-level security of a data set, as QuickSight applies them to a viewer.

**Column-level security** (``ColumnLevelPermissionRules``: ``[{Principals, ColumnNames}]``): a
column named in any rule is *restricted*; only the users and groups of a rule naming it may see
it. Everyone else gets the data set without that column, and a query that names it is refused
(``AccessDeniedException``).

**Row-level security** (``RowLevelPermissionDataSet``: the ARN of a *rules data set*,
``PermissionPolicy`` GRANT_ACCESS | DENY_ACCESS): the rules data set has a ``UserName`` and/or
``GroupName`` column (or ``UserARN``/``GroupARN``) and one column per field it filters, named
like the data set's field. A row of rules applies to a viewer when it names the viewer or one
of the viewer's groups; each of its other cells lists allowed values, comma-separated, and an
empty cell (NULL) means every value. With GRANT_ACCESS a viewer sees the rows that match any of
their rules, and nothing when no rule names them; DENY_ACCESS is the reverse. As documented in
https://docs.aws.amazon.com/quicksight/latest/user/restrict-access-to-a-data-set-using-row-level-security.html

The owner's view (``viewer=None``) is unrestricted: that is how authors prepare the data.
"""
from __future__ import annotations

import re

from . import errors
from .expressions import quote

#: Columns of a rules data set that say *who* a rule is for.
WHO = ("UserName", "GroupName", "UserARN", "GroupARN")


def restricted_columns(rules: list[dict] | None) -> dict[str, set[str]]:
    """``{column: principals allowed to see it}`` from ColumnLevelPermissionRules."""
    out: dict[str, set[str]] = {}
    for rule in rules or []:
        for column in rule.get("ColumnNames", []):
            out.setdefault(column, set()).update(rule.get("Principals", []))
    return out


def visible(columns: list[tuple[str, str]], rules, viewer: str | None, group_arns: list[str]):
    """The columns ``viewer`` may see (all of them for the owner's view, ``viewer=None``)."""
    if viewer is None:
        return list(columns)
    restricted, me = restricted_columns(rules), {viewer, *group_arns}
    return [(n, t) for n, t in columns if n not in restricted or restricted[n] & me]


def _without_strings(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def check_references(sql: str, hidden: list[str], viewer: str | None) -> None:
    """Refuse a query naming a column hidden from ``viewer`` (quoted or bare)."""
    text = _without_strings(sql)
    for name in hidden:
        quoted = f'"{name}"' in text
        bare = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and \
            re.search(rf'(?<![\w"]){re.escape(name)}(?![\w"])', text, re.IGNORECASE)
        if quoted or bare:
            raise errors.AccessDeniedException(
                f"User {viewer} is not authorized to access the restricted field {name!r} of this "
                "data set (column-level security).")


def _values(cell) -> list[str]:
    if cell is None:
        return []
    return [v.strip() for v in str(cell).split(",") if v.strip()]


def rls_predicate(names: list[str], rows: list[tuple], policy: str, user_name: str, user_arn: str,
                  groups: list[str], group_arns: list[str]) -> str:
    """The SQL condition that keeps the rows a viewer may see, from the rules data set's rows."""
    fields = [n for n in names if n not in WHO]
    idx = {n: i for i, n in enumerate(names)}

    def applies(row) -> bool:
        return (("UserName" in idx and row[idx["UserName"]] == user_name)
                or ("UserARN" in idx and row[idx["UserARN"]] == user_arn)
                or ("GroupName" in idx and row[idx["GroupName"]] in groups)
                or ("GroupARN" in idx and row[idx["GroupARN"]] in group_arns))

    clauses = []
    for row in rows:
        if not applies(row):
            continue
        conds = []
        for f in fields:
            vals = _values(row[idx[f]])
            if vals:
                listed = ", ".join("'" + v.replace("'", "''") + "'" for v in vals)
                conds.append(f"CAST({quote(f)} AS VARCHAR) IN ({listed})")
        clauses.append("(" + " AND ".join(conds) + ")" if conds else "TRUE")
    matched = " OR ".join(clauses) if clauses else "FALSE"
    return f"NOT ({matched})" if policy == "DENY_ACCESS" else f"({matched})"


def check_rules_columns(rules_columns: list[str], data_columns: list[str], rules_name: str) -> None:
    """A rules data set must say who (UserName/GroupName/...) and filter only existing fields."""
    if not set(rules_columns) & set(WHO):
        raise errors.InvalidParameterValueException(
            f"The row-level permission data set {rules_name} needs a UserName, GroupName, UserARN or "
            "GroupARN column.")
    for column in rules_columns:
        if column not in WHO and column not in data_columns:
            raise errors.InvalidParameterValueException(
                f"The row-level permission data set {rules_name} has the column {column!r}, which is "
                f"not a field of this data set (fields: {', '.join(data_columns)}).")
