"""An analysis or dashboard ``Definition``: checked, turned into SQL, drawn as Vega-Lite.

QuickSight's CreateAnalysis and CreateDashboard take the same JSON a learner sees in
DescribeAnalysisDefinition: ``DataSetIdentifierDeclarations`` (a short name for each data
set ARN), ``Sheets`` holding ``Visuals``, ``FilterGroups``, ``ParameterDeclarations`` and
the sheets' ``ParameterControls`` / ``FilterControls``. This module reads the part of it the
stand-in draws:

- visuals: ``BarChartVisual``, ``LineChartVisual``, ``PieChartVisual``, ``KPIVisual``,
  ``TableVisual``, each with its ``ChartConfiguration.FieldWells`` of dimension fields
  (``CategoricalDimensionField``, ``NumericalDimensionField``, ``DateDimensionField`` with
  ``DateGranularity``) and measure fields (``NumericalMeasureField`` with
  ``SimpleNumericalAggregation``, ``CategoricalMeasureField`` with COUNT / DISTINCT_COUNT);
  a ``SortConfiguration`` by field;
- filters: ``CategoryFilter`` (a fixed list, or bound to a parameter), ``NumericRangeFilter``,
  ``TimeRangeFilter`` with static bounds, scoped to sheets and visuals;
- parameters with dropdown controls, and filter dropdown controls.

Three steps, used by ``dashboards.py``:

1. :func:`parse` reads the JSON into small dataclasses, or raises :class:`DefinitionError`
   for a definition that does not hang together (an unknown visual type, a field whose
   ``DataSetIdentifier`` was never declared, a filter scoped to a visual that does not
   exist): QuickSight rejects those with ``InvalidParameterValueException``.
2. :func:`check_columns` compares every column the definition uses with the data sets'
   columns. QuickSight does *not* reject these at once: the analysis or dashboard version
   is created and ends ``CREATION_FAILED`` with ``Errors`` (``COLUMN_REPLACEMENT_MISSING``,
   ``COLUMN_TYPE_MISMATCH``, ``DATA_SET_NOT_FOUND``), which is what this returns.
3. :func:`visual_sql` writes one plain ANSI SQL query per visual over the relation
   ``dataset`` (the viewer's rows and columns, after row- and column-level security), with
   the filters that apply to it and the controls' current values; :func:`vega_lite_spec`
   turns the rows into a Vega-Lite chart. Both are deterministic: same definition, same
   values, same SQL and spec.
"""
from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field

VISUAL_TYPES = {"BarChartVisual": "bar", "LineChartVisual": "line", "PieChartVisual": "pie",
                "KPIVisual": "kpi", "TableVisual": "table"}
AGGREGATIONS = {"SUM": "SUM({})", "AVERAGE": "AVG({})", "MIN": "MIN({})", "MAX": "MAX({})",
                "COUNT": "COUNT({})", "DISTINCT_COUNT": "COUNT(DISTINCT {})"}
GRANULARITIES = {"YEAR": "year", "QUARTER": "quarter", "MONTH": "month", "WEEK": "week",
                 "DAY": "day", "HOUR": "hour", "MINUTE": "minute"}
NUMERIC = ("INTEGER", "DECIMAL")
TABLE_ROW_LIMIT = 1000          # a table visual shows this many rows at most (a page of data)
NOT_AUTHORIZED = "Not Authorized"
RESTRICTED_MESSAGE = ("You don't have access to one or more fields used in this visual "
                      "(column-level security).")


class DefinitionError(ValueError):
    """The definition is inconsistent; ``path`` says where (``Sheets[0].Visuals[1]...``)."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(f"{message} (at {path})" if path else message)
        self.path = path


# ------------------------------------------------------------------ the model
@dataclass
class Field:
    field_id: str
    dataset: str          # the DataSetIdentifier
    column: str
    role: str             # "dimension" | "measure" | "value" (unaggregated table column)
    kind: str             # "categorical" | "numerical" | "date"
    aggregation: str | None = None
    granularity: str | None = None
    path: str = ""


@dataclass
class Visual:
    visual_id: str
    sheet_id: str
    type: str             # bar | line | pie | kpi | table
    title: str
    dimensions: list[Field] = field(default_factory=list)
    colors: list[Field] = field(default_factory=list)
    measures: list[Field] = field(default_factory=list)
    values: list[Field] = field(default_factory=list)        # unaggregated table columns
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int | None = None
    horizontal: bool = False

    @property
    def fields(self) -> list[Field]:
        return [*self.dimensions, *self.colors, *self.measures, *self.values]

    @property
    def dataset(self) -> str | None:
        return self.fields[0].dataset if self.fields else None


@dataclass
class Filter:
    filter_id: str
    dataset: str
    column: str
    kind: str                      # category | numeric | time
    operator: str = "EQUALS"
    values: list = field(default_factory=list)
    parameter: str | None = None   # a CategoryFilter bound to a parameter
    minimum: object = None
    maximum: object = None
    min_parameter: str | None = None
    max_parameter: str | None = None
    include_min: bool = True
    include_max: bool = True
    scope: dict | None = None      # None: every sheet; else {sheet_id: None (all visuals) | set of ids}
    path: str = ""

    def applies_to(self, visual: Visual) -> bool:
        if visual.dataset != self.dataset:
            return False
        if self.scope is None:
            return True
        if visual.sheet_id not in self.scope:
            return False
        ids = self.scope[visual.sheet_id]
        return ids is None or visual.visual_id in ids


@dataclass
class Parameter:
    name: str
    kind: str              # String | Integer | Decimal | DateTime
    multi: bool
    defaults: list


@dataclass
class Control:
    control_id: str
    sheet_id: str
    kind: str              # "parameter" | "filter"
    source: str            # parameter name or filter id
    title: str
    multi: bool
    values: list           # the values offered (may be empty: taken from the data)
    link: tuple[str, str] | None = None    # (dataset identifier, column) to list values from


@dataclass
class Sheet:
    sheet_id: str
    name: str
    visual_ids: list[str]
    controls: list[Control]


@dataclass
class Model:
    datasets: dict[str, str]                     # identifier -> data set ARN
    sheets: list[Sheet]
    visuals: dict[str, Visual]
    filters: list[Filter]
    parameters: dict[str, Parameter]

    def dataset_id(self, identifier: str) -> str:
        """The data set id (the last part of its ARN) behind a DataSetIdentifier."""
        return self.datasets[identifier].rsplit("/", 1)[-1]


# ------------------------------------------------------------------ 1. parse
def _one_key(obj: dict, path: str, allowed: dict | tuple, what: str) -> tuple[str, dict]:
    keys = [k for k, v in (obj or {}).items() if v is not None]
    if len(keys) != 1:
        raise DefinitionError(f"{what} must have exactly one member, got {keys or 'none'}", path)
    if keys[0] not in allowed:
        raise DefinitionError(f"{what} type {keys[0]} is not supported by the local stand-in "
                              f"(supported: {', '.join(sorted(allowed))})", path)
    return keys[0], obj[keys[0]]


def _column(spec: dict, datasets: dict, path: str) -> tuple[str, str]:
    col = spec.get("Column") or {}
    ident, name = col.get("DataSetIdentifier"), col.get("ColumnName")
    if not ident or not name:
        raise DefinitionError("Column needs DataSetIdentifier and ColumnName", path)
    if ident not in datasets:
        raise DefinitionError(f"DataSetIdentifier '{ident}' is not declared in "
                              "DataSetIdentifierDeclarations", path)
    return ident, name


def _dimension(obj: dict, datasets: dict, path: str) -> Field:
    kind, spec = _one_key(obj, path, ("CategoricalDimensionField", "NumericalDimensionField",
                                      "DateDimensionField"), "DimensionField")
    ident, col = _column(spec, datasets, f"{path}.{kind}")
    gran = spec.get("DateGranularity") if kind == "DateDimensionField" else None
    if gran is not None and gran not in GRANULARITIES:
        raise DefinitionError(f"DateGranularity {gran} is not supported", path)
    return Field(spec.get("FieldId") or "", ident, col, "dimension",
                 {"CategoricalDimensionField": "categorical", "NumericalDimensionField": "numerical",
                  "DateDimensionField": "date"}[kind], granularity=gran, path=path)


def _measure(obj: dict, datasets: dict, path: str) -> Field:
    kind, spec = _one_key(obj, path, ("NumericalMeasureField", "CategoricalMeasureField"),
                          "MeasureField")
    ident, col = _column(spec, datasets, f"{path}.{kind}")
    if kind == "NumericalMeasureField":
        agg = (spec.get("AggregationFunction") or {}).get("SimpleNumericalAggregation") or "SUM"
        allowed = ("SUM", "AVERAGE", "MIN", "MAX", "COUNT", "DISTINCT_COUNT")
    else:
        agg = spec.get("AggregationFunction") or "COUNT"
        allowed = ("COUNT", "DISTINCT_COUNT")
    if agg not in allowed:
        raise DefinitionError(f"AggregationFunction {agg} is not supported for {kind}", path)
    return Field(spec.get("FieldId") or "", ident, col, "measure",
                 "numerical" if kind == "NumericalMeasureField" else "categorical",
                 aggregation=agg, path=path)


def _wells(vtype: str, conf: dict) -> dict:
    wells = (conf or {}).get("FieldWells") or {}
    if vtype in ("bar", "line", "pie"):
        key = {"bar": "BarChartAggregatedFieldWells", "line": "LineChartAggregatedFieldWells",
               "pie": "PieChartAggregatedFieldWells"}[vtype]
        w = wells.get(key) or {}
        return {"dimensions": w.get("Category") or [], "colors": w.get("Colors") or [],
                "measures": w.get("Values") or []}
    if vtype == "kpi":
        return {"dimensions": [], "colors": [], "measures": wells.get("Values") or []}
    agg = wells.get("TableAggregatedFieldWells")
    if agg is not None:
        return {"dimensions": agg.get("GroupBy") or [], "colors": [], "measures": agg.get("Values") or []}
    return {"values": (wells.get("TableUnaggregatedFieldWells") or {}).get("Values") or []}


def _visual(obj: dict, sheet_id: str, datasets: dict, path: str) -> Visual:
    key, spec = _one_key(obj, path, VISUAL_TYPES, "Visual")
    vtype = VISUAL_TYPES[key]
    path = f"{path}.{key}"
    if not spec.get("VisualId"):
        raise DefinitionError("VisualId is required", path)
    title = ((spec.get("Title") or {}).get("FormatText") or {}).get("PlainText") or spec["VisualId"]
    conf = spec.get("ChartConfiguration") or {}
    visual = Visual(spec["VisualId"], sheet_id, vtype, title,
                    horizontal=conf.get("Orientation") == "HORIZONTAL")
    wells = _wells(vtype, conf)
    wpath = f"{path}.ChartConfiguration.FieldWells"
    visual.dimensions = [_dimension(d, datasets, f"{wpath}.Category[{i}]")
                         for i, d in enumerate(wells.get("dimensions", []))]
    visual.colors = [_dimension(d, datasets, f"{wpath}.Colors[{i}]")
                     for i, d in enumerate(wells.get("colors", []))]
    visual.measures = [_measure(m, datasets, f"{wpath}.Values[{i}]")
                       for i, m in enumerate(wells.get("measures", []))]
    for i, v in enumerate(wells.get("values", [])):
        ident, col = _column(v, datasets, f"{wpath}.Values[{i}]")
        visual.values.append(Field(v.get("FieldId") or "", ident, col, "value", "categorical",
                                   path=f"{wpath}.Values[{i}]"))
    if not visual.fields:
        raise DefinitionError("the visual has no fields in its FieldWells", wpath)
    if vtype in ("bar", "line", "pie") and (not visual.dimensions or not visual.measures):
        raise DefinitionError("a chart needs at least one Category field and one Values field", wpath)
    if vtype == "kpi" and not visual.measures:
        raise DefinitionError("a KPI needs one Values field", wpath)
    ids = [f.field_id for f in visual.fields]
    if "" in ids or len(set(ids)) != len(ids):
        raise DefinitionError("every field needs a FieldId, unique within the visual", wpath)
    if len({f.dataset for f in visual.fields}) > 1:
        raise DefinitionError("all fields of a visual must come from one data set", wpath)
    sort = conf.get("SortConfiguration") or {}
    for i, opt in enumerate(sort.get("CategorySort") or sort.get("RowSort") or []):
        fs = opt.get("FieldSort")
        if fs:
            if fs.get("FieldId") not in ids:
                raise DefinitionError(f"FieldSort refers to FieldId '{fs.get('FieldId')}', which "
                                      "is not a field of this visual", f"{path}.SortConfiguration")
            visual.sort.append((fs["FieldId"], fs.get("Direction") or "ASC"))
    limit = (sort.get("CategoryItemsLimit") or {}).get("ItemsLimit")
    visual.limit = int(limit) if limit else None
    return visual


def _filter(obj: dict, datasets: dict, params: dict, path: str) -> Filter:
    key, spec = _one_key(obj, path, ("CategoryFilter", "NumericRangeFilter", "TimeRangeFilter"), "Filter")
    path = f"{path}.{key}"
    if not spec.get("FilterId"):
        raise DefinitionError("FilterId is required", path)
    ident, col = _column(spec, datasets, path)
    flt = Filter(spec["FilterId"], ident, col, {"CategoryFilter": "category",
                 "NumericRangeFilter": "numeric", "TimeRangeFilter": "time"}[key], path=path)
    if key == "CategoryFilter":
        conf = spec.get("Configuration") or {}
        if conf.get("FilterListConfiguration"):
            fl = conf["FilterListConfiguration"]
            flt.operator = fl.get("MatchOperator") or "EQUALS"
            flt.values = list(fl.get("CategoryValues") or [])
        elif conf.get("CustomFilterConfiguration"):
            cf = conf["CustomFilterConfiguration"]
            flt.operator = cf.get("MatchOperator") or "EQUALS"
            flt.parameter = cf.get("ParameterName")
            flt.values = [cf["CategoryValue"]] if cf.get("CategoryValue") is not None else []
        else:
            raise DefinitionError("CategoryFilter needs FilterListConfiguration or "
                                  "CustomFilterConfiguration", path)
        if flt.operator not in ("EQUALS", "DOES_NOT_EQUAL"):
            raise DefinitionError(f"MatchOperator {flt.operator} is not supported", path)
    else:
        lo_key, hi_key = (("RangeMinimum", "RangeMaximum") if key == "NumericRangeFilter"
                          else ("RangeMinimumValue", "RangeMaximumValue"))
        lo, hi = spec.get(lo_key) or {}, spec.get(hi_key) or {}
        flt.minimum, flt.maximum = lo.get("StaticValue"), hi.get("StaticValue")
        flt.min_parameter, flt.max_parameter = lo.get("Parameter"), hi.get("Parameter")
        flt.include_min = spec.get("IncludeMinimum", True) is not False
        flt.include_max = spec.get("IncludeMaximum", True) is not False
    for name in (flt.parameter, flt.min_parameter, flt.max_parameter):
        if name and name not in params:
            raise DefinitionError(f"the filter uses parameter '{name}', which is not declared in "
                                  "ParameterDeclarations", path)
    return flt


def _scope(conf: dict, sheets: dict, path: str) -> dict | None:
    if not conf or conf.get("AllSheets") is not None or not conf.get("SelectedSheets"):
        return None
    scope = {}
    for i, s in enumerate(conf["SelectedSheets"].get("SheetVisualScopingConfigurations") or []):
        sid = s.get("SheetId")
        if sid not in sheets:
            raise DefinitionError(f"the filter group is scoped to sheet '{sid}', which does not exist", path)
        if s.get("Scope") == "SELECTED_VISUALS":
            ids = set(s.get("VisualIds") or [])
            missing = sorted(ids - set(sheets[sid]))
            if missing:
                raise DefinitionError(f"the filter group is scoped to visual '{missing[0]}', which is "
                                      f"not on sheet '{sid}'", path)
            scope[sid] = ids
        else:
            scope[sid] = None
    return scope


def _parameter(obj: dict, path: str) -> Parameter:
    key, spec = _one_key(obj, path, ("StringParameterDeclaration", "IntegerParameterDeclaration",
                                     "DecimalParameterDeclaration", "DateTimeParameterDeclaration"),
                         "ParameterDeclaration")
    if not spec.get("Name"):
        raise DefinitionError("a parameter needs a Name", path)
    defaults = list(((spec.get("DefaultValues") or {}).get("StaticValues")) or [])
    return Parameter(spec["Name"], key.replace("ParameterDeclaration", ""),
                     spec.get("ParameterValueType") == "MULTI_VALUED", defaults)


def _control(obj: dict, sheet_id: str, kind: str, datasets: dict, path: str) -> Control:
    key, spec = _one_key(obj, path, ("Dropdown",), "Control")
    cid = spec.get("ParameterControlId") if kind == "parameter" else spec.get("FilterControlId")
    source = spec.get("SourceParameterName") if kind == "parameter" else spec.get("SourceFilterId")
    if not cid or not source:
        raise DefinitionError("a control needs its id and its source", path)
    selectable = spec.get("SelectableValues") or {}
    link = None
    if selectable.get("LinkToDataSetColumn"):
        link = _column({"Column": selectable["LinkToDataSetColumn"]}, datasets, path)
    return Control(cid, sheet_id, kind, source, spec.get("Title") or source,
                   (spec.get("Type") or "MULTI_SELECT") == "MULTI_SELECT",
                   list(selectable.get("Values") or []), link)


def parse(definition: dict) -> Model:
    """Read a Definition; raise :class:`DefinitionError` if it does not hang together."""
    if not isinstance(definition, dict):
        raise DefinitionError("Definition must be an object")
    datasets = {}
    for i, d in enumerate(definition.get("DataSetIdentifierDeclarations") or []):
        if not d.get("Identifier") or not d.get("DataSetArn"):
            raise DefinitionError("a declaration needs Identifier and DataSetArn",
                                  f"DataSetIdentifierDeclarations[{i}]")
        datasets[d["Identifier"]] = d["DataSetArn"]
    if not datasets:
        raise DefinitionError("DataSetIdentifierDeclarations must declare at least one data set")
    params = {}
    for i, p in enumerate(definition.get("ParameterDeclarations") or []):
        param = _parameter(p, f"ParameterDeclarations[{i}]")
        params[param.name] = param
    sheets, visuals, controls_by_sheet = [], {}, {}
    raw_sheets = definition.get("Sheets") or []
    if not raw_sheets:
        raise DefinitionError("Sheets must hold at least one sheet")
    for s, sheet in enumerate(raw_sheets):
        sid = sheet.get("SheetId")
        if not sid:
            raise DefinitionError("SheetId is required", f"Sheets[{s}]")
        ids = []
        for v, raw in enumerate(sheet.get("Visuals") or []):
            visual = _visual(raw, sid, datasets, f"Sheets[{s}].Visuals[{v}]")
            if visual.visual_id in visuals:
                raise DefinitionError(f"VisualId '{visual.visual_id}' is used twice", f"Sheets[{s}].Visuals[{v}]")
            visuals[visual.visual_id] = visual
            ids.append(visual.visual_id)
        controls = [_control(c, sid, "parameter", datasets, f"Sheets[{s}].ParameterControls[{i}]")
                    for i, c in enumerate(sheet.get("ParameterControls") or [])]
        controls += [_control(c, sid, "filter", datasets, f"Sheets[{s}].FilterControls[{i}]")
                     for i, c in enumerate(sheet.get("FilterControls") or [])]
        sheets.append(Sheet(sid, sheet.get("Name") or sheet.get("Title") or sid, ids, controls))
    sheet_visuals = {s.sheet_id: s.visual_ids for s in sheets}
    filters = []
    for g, group in enumerate(definition.get("FilterGroups") or []):
        path = f"FilterGroups[{g}]"
        if (group.get("Status") or "ENABLED") != "ENABLED":
            continue
        scope = _scope(group.get("ScopeConfiguration") or {}, sheet_visuals, path)
        for f, raw in enumerate(group.get("Filters") or []):
            flt = _filter(raw, datasets, params, f"{path}.Filters[{f}]")
            flt.scope = scope
            filters.append(flt)
    filter_ids = {f.filter_id for f in filters}
    for sheet in sheets:
        for c in sheet.controls:
            if c.kind == "parameter" and c.source not in params:
                raise DefinitionError(f"control '{c.control_id}' uses parameter '{c.source}', which is "
                                      "not declared in ParameterDeclarations")
            if c.kind == "filter" and c.source not in filter_ids:
                raise DefinitionError(f"control '{c.control_id}' uses filter '{c.source}', which is "
                                      "not in FilterGroups")
    return Model(datasets, sheets, visuals, filters, params)


# ------------------------------------------------------------------ 2. columns
def check_columns(model: Model, columns: dict[str, list[tuple[str, str]] | None]) -> list[dict]:
    """QuickSight's ``Errors`` for a definition over data sets with these columns.

    ``columns`` maps each DataSetIdentifier to the data set's ``(name, type)`` list, or None
    when the data set does not exist. An empty list means the definition can be drawn.
    """
    errors, seen = [], set()

    def add(kind, message, path):
        if (kind, message) not in seen:
            seen.add((kind, message))
            errors.append({"Type": kind, "Message": message, "ViolatedEntities": [{"Path": path}]})

    for ident, cols in columns.items():
        if cols is None:
            add("DATA_SET_NOT_FOUND", f"Data set '{model.datasets[ident]}' was not found",
                f"DataSetIdentifierDeclarations/{ident}")
    used = [(f.dataset, f.column, f.kind, f.role, f.path) for v in model.visuals.values() for f in v.fields]
    used += [(f.dataset, f.column, f.kind, "filter", f.path) for f in model.filters]
    for ident, column, kind, role, path in used:
        cols = columns.get(ident)
        if cols is None:
            continue
        types = dict(cols)
        arn = model.datasets[ident]
        if column not in types:
            add("COLUMN_REPLACEMENT_MISSING",
                f"Required column '{column}' is missing in data set '{arn}'", path)
            continue
        ctype = types[column]
        wrong = ((role == "measure" and kind == "numerical" and ctype not in NUMERIC)
                 or (kind == "date" and ctype != "DATETIME")
                 or (role == "filter" and kind == "numeric" and ctype not in NUMERIC)
                 or (role == "filter" and kind == "time" and ctype != "DATETIME"))
        if wrong:
            add("COLUMN_TYPE_MISMATCH",
                f"Column '{column}' in data set '{arn}' has type {ctype}, which this field cannot use", path)
    return errors


# ------------------------------------------------------------------ 3. SQL
def quote(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value) -> str:
    """A SQL literal for a filter value (numbers as numbers, everything else as a string)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S')}'"
    return "'" + str(value).replace("'", "''") + "'"


def _typed(value, ctype: str):
    """A control value (always text on the wire) as the column's type."""
    if ctype == "INTEGER":
        return int(float(value))
    if ctype == "DECIMAL":
        return float(value)
    if ctype == "DATETIME":
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(value, dt.timezone.utc).replace(tzinfo=None)
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
        return dt.datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=None)
    return str(value)


def _expr(f: Field) -> str:
    col = quote(f.column)
    if f.role == "dimension" and f.kind == "date" and f.granularity:
        return f"DATE_TRUNC('{GRANULARITIES[f.granularity]}', {col})"
    if f.role == "measure":
        return AGGREGATIONS[f.aggregation].format(col)
    return col


def control_values(model: Model, selections: dict[str, list[str]]) -> tuple[dict, dict]:
    """(parameter values, filter-control values) from the page's query string.

    ``selections`` holds ``p.<ParameterName>`` and ``f.<FilterId>`` keys, each a list of
    values; a key that is present with only an empty string means "all values".
    Parameters without a selection keep their default values.
    """
    params = {name: list(p.defaults) for name, p in model.parameters.items()}
    filters = {}
    for key, values in selections.items():
        kind, _, name = key.partition(".")
        values = [v for v in values if v != ""]
        if kind == "p" and name in model.parameters:
            params[name] = values
        elif kind == "f":
            filters[name] = values
    return params, filters


def _condition(flt: Filter, ctype: str, params: dict, filter_values: dict) -> str | None:
    col = quote(flt.column)
    if flt.kind == "category":
        if flt.filter_id in filter_values:
            values = filter_values[flt.filter_id]
        elif flt.parameter:
            values = params.get(flt.parameter) or []
        else:
            values = flt.values
        if not values:
            return None                    # nothing selected: all values (SelectAllOptions)
        items = ", ".join(literal(_typed(v, ctype)) for v in values)
        return f"{col} {'NOT IN' if flt.operator == 'DOES_NOT_EQUAL' else 'IN'} ({items})"
    parts = []
    lo = params.get(flt.min_parameter, [None])[0] if flt.min_parameter else flt.minimum
    hi = params.get(flt.max_parameter, [None])[0] if flt.max_parameter else flt.maximum
    if flt.filter_id in filter_values and filter_values[flt.filter_id]:
        chosen = filter_values[flt.filter_id]
        lo, hi = chosen[0] or None, (chosen[1] if len(chosen) > 1 else None) or None
    if lo is not None:
        parts.append(f"{col} {'>=' if flt.include_min else '>'} {literal(_typed(lo, ctype))}")
    if hi is not None:
        parts.append(f"{col} {'<=' if flt.include_max else '<'} {literal(_typed(hi, ctype))}")
    return " AND ".join(parts) or None


def visual_sql(model: Model, visual: Visual, columns: dict[str, str],
               selections: dict[str, list[str]] | None = None) -> str:
    """One ANSI SQL query over ``dataset`` for ``visual``.

    ``columns``: name -> type of the columns the viewer may see. Output columns are named
    after the fields' FieldIds, in the order dimensions, colors, measures.
    """
    params, filter_values = control_values(model, selections or {})
    where = []
    for flt in model.filters:
        if flt.applies_to(visual) and flt.column in columns:
            cond = _condition(flt, columns[flt.column], params, filter_values)
            if cond:
                where.append(cond)
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    if visual.values:                       # an unaggregated table: rows as they are
        select = ", ".join(f"{_expr(f)} AS {quote(f.field_id)}" for f in visual.values)
        order = _order(visual, visual.values)
        return f"SELECT {select} FROM dataset{where_sql}{order} LIMIT {TABLE_ROW_LIMIT}"
    groups = [*visual.dimensions, *visual.colors]
    select = ", ".join(f"{_expr(f)} AS {quote(f.field_id)}" for f in [*groups, *visual.measures])
    group_sql = f" GROUP BY {', '.join(_expr(f) for f in groups)}" if groups else ""
    order = _order(visual, groups) if groups else ""
    limit = visual.limit or (TABLE_ROW_LIMIT if visual.type == "table" else None)
    limit_sql = f" LIMIT {int(limit)}" if limit and groups else ""
    return f"SELECT {select} FROM dataset{where_sql}{group_sql}{order}{limit_sql}"


def _order(visual: Visual, groups: list[Field]) -> str:
    """The visual's sort, then every group column ascending: the same rows in the same order."""
    keys = [f"{quote(fid)} {'DESC' if d == 'DESC' else 'ASC'}" for fid, d in visual.sort]
    sorted_ids = {fid for fid, _ in visual.sort}
    keys += [f"{quote(f.field_id)} ASC" for f in groups if f.field_id not in sorted_ids]
    return f" ORDER BY {', '.join(keys)}" if keys else ""


# ------------------------------------------------------------------ 4. JSON and Vega-Lite
def json_value(value):
    """A query result value as JSON: datetimes as ISO text, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def label(f: Field) -> str:
    """The field's label as QuickSight shows it: ``column (Sum)``, ``column`` for dimensions."""
    if f.role == "measure":
        pretty = {"SUM": "Sum", "AVERAGE": "Average", "MIN": "Min", "MAX": "Max", "COUNT": "Count",
                  "DISTINCT_COUNT": "Count distinct"}[f.aggregation]
        return f"{f.column} ({pretty})"
    return f.column


def vega_lite_spec(visual: Visual, records: list[dict], width: int = 360, height: int = 220) -> dict | None:
    """A Vega-Lite spec drawing ``records`` (one dict per row, keyed by FieldId); None for KPI and table."""
    if visual.type in ("kpi", "table"):
        return None
    dim, measures = visual.dimensions[0], visual.measures
    base = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "data": {"values": records}, "width": width, "height": height,
            "config": {"view": {"stroke": None}}}
    dim_type = "temporal" if dim.kind == "date" else ("quantitative" if dim.kind == "numerical"
                                                      and visual.type == "line" else "nominal")
    x = {"field": dim.field_id, "type": dim_type, "title": label(dim)}
    if dim_type == "nominal":
        x["sort"] = None                    # keep the SQL's order
    value_field, value_title, color = measures[0].field_id, label(measures[0]), None
    transforms = []
    if len(measures) > 1:                   # several measures: one series each
        transforms.append({"fold": [m.field_id for m in measures], "as": ["Measure", "Value"]})
        value_field, value_title = "Value", "Value"
        color = {"field": "Measure", "type": "nominal", "title": None}
    elif visual.colors:
        c = visual.colors[0]
        color = {"field": c.field_id, "type": "nominal", "title": label(c)}
    y = {"field": value_field, "type": "quantitative", "title": value_title}
    if visual.type == "pie":
        spec = {**base, "mark": {"type": "arc"},
                "encoding": {"theta": {"field": value_field, "type": "quantitative", "title": value_title},
                             "color": {"field": dim.field_id, "type": "nominal", "title": label(dim),
                                       "sort": None},
                             "tooltip": [{"field": dim.field_id}, {"field": value_field}]}}
    else:
        encoding = {"x": y, "y": x} if (visual.type == "bar" and visual.horizontal) else {"x": x, "y": y}
        encoding["tooltip"] = [{"field": dim.field_id, "type": dim_type}, {"field": value_field,
                                                                           "type": "quantitative"}]
        if color:
            encoding["color"] = color
        mark = {"type": "bar"} if visual.type == "bar" else {"type": "line", "point": True}
        spec = {**base, "mark": mark, "encoding": encoding}
    if transforms:
        spec["transform"] = transforms
    return spec
