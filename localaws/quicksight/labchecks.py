"""Checks for lab 07 (``labs/07_quicksight``): what each step must achieve, and what to fix if not.

They live here, not in the lab's check cells, so that a check cell does not
show the answer. Each raises ``localaws.grading.LabCheckFailed`` with a
message for the learner. The checks **measure**: they create what the learner
wrote with boto3, then read the data *as each user would* and compare it with
pandas over the same rows filtered by what that user should see. Only then do
they look at the learner's definitions, to explain a difference.

The business (seeded, :func:`sales`): 1,800 orders of six months in three
regions. The sales managers want to know **which product categories drive
revenue in each region, month by month**; each regional manager may see only
their own region (row-level security, RLS); the external analysts see every
region but must never receive ``unit_cost``, the company's purchase prices
(column-level security, CLS).

**Step 1 (the data sets).** :func:`run_datasets` writes the learner's RLS
rules to S3 with an Athena table over them, creates the rules data set and the
sales data set from the learner's ``CreateDataSet`` arguments, waits for the
SPICE ingestions, and reads the sales data set as every user: the columns each
one gets, their rows per region, the revenue. A manager who joined the
company *after* the rules were written (``lena``, added to the groups
``sales-managers`` and ``sales-east`` by the check, then removed) shows whether
the rules follow the groups or name people. :func:`diagnose_datasets` says
what went wrong, with the numbers measured.

**Step 2 (the dashboard).** :func:`run_dashboard` creates the learner's
dashboard, asks for an embed URL for a manager and for the external analyst,
opens each in headless Chromium (``localaws.core.browser``), reads the values
the page received and drew, chooses a month in the page's filter control,
and records every JSON payload the browser received. Without a browser it
reads the page's data endpoint instead, and says so.
:func:`diagnose_dashboard` compares with pandas.

**Step 3 (a written answer)** is graded lightly by :func:`check_answer`.
"""
from __future__ import annotations

import datetime
import io
import json
import random
from dataclasses import dataclass, field

from localaws.core.waiting import wait_until
from localaws.grading import LabCheckFailed, check, check_written_answer

# ------------------------------------------------------------------ the business
BUCKET = "lab-sales"
DATABASE = "lab"
RULES_TABLE = "sales_rules"
WORKGROUP = "quicksight"
RESULTS = "s3://lab-sales-athena-results/"

REGIONS = ("Central", "East", "West")
MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06")
#: category -> its products: (name, list price in $, purchase cost as a share of the price)
PRODUCTS = {
    "Appliances": [("Espresso machine", 249.0, 0.62), ("Air purifier", 179.0, 0.58), ("Blender", 89.0, 0.55)],
    "Furniture": [("Standing desk", 549.0, 0.57), ("Office chair", 329.0, 0.52), ("Bookcase", 149.0, 0.48)],
    "Office supplies": [("Paper (box)", 39.0, 0.41), ("Pens (pack)", 12.0, 0.33), ("Stapler", 19.0, 0.38)],
    "Outdoor": [("Patio set", 699.0, 0.61), ("Gas grill", 459.0, 0.59), ("Camping tent", 229.0, 0.54)],
    "Technology": [("Laptop", 1199.0, 0.78), ("Monitor", 289.0, 0.71), ("Headset", 99.0, 0.49)],
}
CATEGORIES = tuple(PRODUCTS)
#: How often each region orders from each category; Outdoor grows every month (spring).
WEIGHTS = {"Central": {"Appliances": 2, "Furniture": 5, "Office supplies": 5, "Outdoor": 1, "Technology": 2},
           "East": {"Appliances": 3, "Furniture": 2, "Office supplies": 5, "Outdoor": 1, "Technology": 4},
           "West": {"Appliances": 2, "Furniture": 2, "Office supplies": 4, "Outdoor": 4, "Technology": 3}}
ORDERS = 1_800
SEED = 7

#: The source table's columns, in order, with their Athena type.
COLUMNS = (("order_id", "string"), ("order_date", "date"), ("order_month", "string"), ("region", "string"),
           ("category", "string"), ("product", "string"), ("units", "int"), ("unit_price", "double"),
           ("unit_cost", "double"))
SENSITIVE = "unit_cost"

#: The people (QuickSight users) and their groups, as the lab's given cell registers them.
MANAGERS = {"dana": "East", "omar": "West"}
OUTSIDER = "xavier"
NEWCOMER = "lena"              # joins sales-managers and sales-east during the check, then leaves
MANAGERS_GROUP = "sales-managers"
OUTSIDERS_GROUP = "analysts-external"
REGION_GROUPS = {region: f"sales-{region.lower()}" for region in REGIONS}
GROUPS = {MANAGERS_GROUP: ["dana", "omar"], OUTSIDERS_GROUP: [OUTSIDER],
          REGION_GROUPS["East"]: ["dana"], REGION_GROUPS["West"]: ["omar"], REGION_GROUPS["Central"]: []}
USERS = {"dana": "dana@example.com", "omar": "omar@example.com", "xavier": "xavier@partner.example"}

#: What each viewer must get from the sales data set: the regions of its rows, and unit_cost or not.
EXPECTED_VIEWS = {"dana": ({"East"}, True), "omar": ({"West"}, True), NEWCOMER: ({"East"}, True),
                  OUTSIDER: (set(REGIONS), False)}

RLS_GUIDE = "https://docs.aws.amazon.com/quicksight/latest/user/restrict-access-to-a-data-set-using-row-level-security.html"
CLS_GUIDE = "https://docs.aws.amazon.com/quicksight/latest/user/restrict-access-to-a-data-set-using-column-level-security.html"
VIEWER_ACTIONS = ("quicksight:DescribeDashboard", "quicksight:ListDashboardVersions", "quicksight:QueryDashboard")


def sales(orders: int = ORDERS, seed: int = SEED):
    """The orders (a pandas DataFrame, seeded): one row per order line, the columns of :data:`COLUMNS`.

    ``unit_cost`` is what the company paid for one unit: the sensitive column.
    Revenue (``units * unit_price``) is not stored; the data set computes it.
    """
    import pandas as pd

    rng = random.Random(seed)
    rows = []
    for number in range(orders):
        region = REGIONS[rng.randrange(len(REGIONS))]
        month = rng.randrange(len(MONTHS))
        weights = [WEIGHTS[region][c] * (1 + 0.4 * month if c == "Outdoor" else 1) for c in CATEGORIES]
        category = rng.choices(CATEGORIES, weights)[0]
        product, price, cost_share = PRODUCTS[category][rng.randrange(3)]
        day = datetime.date(2026, month + 1, rng.randrange(1, 29))
        rows.append({"order_id": f"ord-{number:05d}", "order_date": day,
                     "order_month": MONTHS[month], "region": region, "category": category, "product": product,
                     "units": rng.randint(1, 6), "unit_price": price, "unit_cost": round(price * cost_share, 2)})
    frame = pd.DataFrame(rows)
    frame["units"] = frame["units"].astype("int32")
    return frame


def revenue_by_category(frame, by=("category",)):
    """pandas' answer: SUM(units * unit_price) per ``by``, rounded to cents, sorted."""
    out = (frame.assign(revenue=frame["units"] * frame["unit_price"]).groupby(list(by), as_index=False)["revenue"]
           .sum().sort_values(list(by)).reset_index(drop=True))
    out["revenue"] = out["revenue"].round(2)
    return out


def user_arn(stack, name: str) -> str:
    return f"arn:aws:quicksight:{stack.region}:{stack.account_id}:user/default/{name}"


def group_arn(stack, name: str) -> str:
    return f"arn:aws:quicksight:{stack.region}:{stack.account_id}:group/default/{name}"


# ------------------------------------------------------------------ small helpers
def _money(value: float) -> str:
    return f"${value:,.2f}"


def _rows(count: int) -> str:
    return f"{count:,} row{'' if count == 1 else 's'}"


def _regions(counts: dict) -> str:
    """``East 604, West 595`` (or ``no rows``)."""
    return ", ".join(f"{r} {n:,}" for r, n in sorted(counts.items())) or "no rows"


def _error(exc: Exception) -> str:
    """``Code: message`` of a botocore ClientError, else the exception's text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def run_athena(stack, sql: str, database: str = DATABASE) -> None:
    """Run one statement on Athena (the lab's work group) and wait for it; raise if it failed."""
    athena = stack.client("athena")
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": database},
                                       WorkGroup=WORKGROUP)["QueryExecutionId"]
    state = {}

    def ended() -> bool:
        state.update(athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"])
        return state["State"] in ("SUCCEEDED", "FAILED", "CANCELLED")
    wait_until(ended, 120, poll=0.05)
    if state.get("State") != "SUCCEEDED":
        raise RuntimeError(f"Athena: {state.get('State')}: {state.get('StateChangeReason')}\n{sql}")


def _engine(stack):
    """The local QuickSight engine (the checks read the data set as each user through it: local only)."""
    registry = stack.context.registry
    plane = registry.planes["quicksight"]
    registry.activate_plane(plane)
    return plane.engine


# ------------------------------------------------------------------ step 1: the data sets
def write_rules(stack, rules: list[dict]) -> list[str]:
    """Write the RLS rules as one Parquet file under ``s3://lab-sales/rules/`` and (re)create the
    Athena table ``lab.sales_rules`` over it, every column a string; return the column names.

    ``None`` stays NULL (Parquet keeps it), which QuickSight reads as "every value".
    """
    import pandas as pd

    check(isinstance(rules, (list, tuple)) and rules and all(isinstance(r, dict) for r in rules),
          f"RULES must be a list of dicts, one per rule (e.g. {{'GroupName': ..., 'region': ...}}); got {rules!r:.80}.")
    names = list(dict.fromkeys(k for r in rules for k in r))
    frame = pd.DataFrame([{k: (None if r.get(k) is None else str(r[k])) for k in names} for r in rules],
                         columns=names).astype("string")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    s3 = stack.client("s3")
    for old in s3.list_objects_v2(Bucket=BUCKET, Prefix="rules/").get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=old["Key"])
    s3.put_object(Bucket=BUCKET, Key="rules/rules.parquet", Body=buffer.getvalue())
    run_athena(stack, f"DROP TABLE IF EXISTS {RULES_TABLE}")
    columns = ", ".join(f"`{n}` string" for n in names)
    run_athena(stack, f"CREATE EXTERNAL TABLE {RULES_TABLE} ({columns}) STORED AS PARQUET "
                      f"LOCATION 's3://{BUCKET}/rules/'")
    return names


@dataclass
class View:
    """What one viewer got from the sales data set."""
    columns: list[str] = field(default_factory=list)
    regions: dict[str, int] = field(default_factory=dict)     # region -> rows
    revenue: float | None = None                              # SUM(revenue), None without the column
    error: str | None = None                                  # the query failed (AccessDenied...)


@dataclass
class DataSetRun:
    """What :func:`run_datasets` saw."""
    rules_columns: list[str] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)     # "rules"/"sales" -> DataSetId
    error: str | None = None                                  # a call that failed: "CreateDataSet (sales): Code: msg"
    error_code: str | None = None
    import_mode: str | None = None
    ingestion: dict = field(default_factory=dict)             # IngestionStatus, RowInfo, ErrorInfo
    source_queries: int = 0                                   # Athena queries while the check read the data set
    owner: View = field(default_factory=View)
    views: dict[str, View] = field(default_factory=dict)      # user name -> View
    owner_revenue: dict[str, float] = field(default_factory=dict)   # category -> SUM(revenue), owner's view
    leaks: dict[str, int] = field(default_factory=dict)       # outsider's column -> rows where it reveals unit_cost
    cls_rules: list = field(default_factory=list)             # the definition's ColumnLevelPermissionRules
    rls: dict | None = None                                   # the definition's RowLevelPermissionDataSet
    calculated: dict[str, str] = field(default_factory=dict)  # calculated column -> expression


def _dataset_id(definition: dict, what: str) -> str:
    check(isinstance(definition, dict),
          f"{what} must be a dict of CreateDataSet arguments, got {type(definition).__name__}.")
    check(definition.get("DataSetId"), f"{what} has no DataSetId.")
    return definition["DataSetId"]


def _calculated_fields(definition: dict) -> dict[str, str]:
    found = {}
    for table in (definition.get("LogicalTableMap") or {}).values():
        for op in table.get("DataTransforms") or []:
            for column in (op.get("CreateColumnsOperation") or {}).get("Columns") or []:
                found[column.get("ColumnName")] = column.get("Expression", "")
    return found


def _delete_if_there(delete, **ids) -> None:
    """``delete(AwsAccountId=..., **ids)`` of an earlier run; nothing to do if it is not there."""
    try:
        delete(**ids)
    except Exception as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise


def _wait_for_ingestion(qs, account: str, dataset_id: str, ingestion_id: str, timeout: float = 120) -> dict:
    """DescribeIngestion until the ingestion ends; return the Ingestion."""
    found = {}

    def ended() -> bool:
        found.update(qs.describe_ingestion(AwsAccountId=account, DataSetId=dataset_id,
                                           IngestionId=ingestion_id)["Ingestion"])
        return found.get("IngestionStatus") in ("COMPLETED", "FAILED", "CANCELLED")
    wait_until(ended, timeout, poll=0.1)
    return found


def _newcomer(stack, join: bool) -> None:
    """Register lena and add her to sales-managers and sales-east (join), or remove her (not join)."""
    qs = stack.client("quicksight")
    account = stack.account_id
    if join:
        _newcomer(stack, join=False)
        qs.register_user(AwsAccountId=account, Namespace="default", IdentityType="QUICKSIGHT", UserRole="READER",
                         UserName=NEWCOMER, Email=f"{NEWCOMER}@example.com")
        for group in (MANAGERS_GROUP, REGION_GROUPS["East"]):
            qs.create_group_membership(AwsAccountId=account, Namespace="default", GroupName=group,
                                       MemberName=NEWCOMER)
        return
    try:
        qs.delete_user(AwsAccountId=account, Namespace="default", UserName=NEWCOMER)
    except Exception as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise


def _read_view(engine, dataset_id: str, viewer: str | None) -> View:
    view = View()
    try:
        view.columns = [name for name, _ in engine.columns(dataset_id, viewer=viewer)]
        if "region" in view.columns:
            names, rows = engine.query(dataset_id, 'SELECT "region", COUNT(*) AS n FROM dataset GROUP BY "region"',
                                       viewer=viewer)
            view.regions = {region: int(n) for region, n in rows}
        if "revenue" in view.columns:
            _, rows = engine.query(dataset_id, 'SELECT SUM("revenue") AS revenue FROM dataset', viewer=viewer)
            view.revenue = float(rows[0][0] or 0)
    except Exception as exc:          # the engine's AWS errors (AccessDenied...) are the learner's to read
        view.error = _error(exc)
    return view


def _leaks(engine, dataset_id: str, viewer: str, columns: list[str], truth) -> dict[str, int]:
    """For each numeric column the viewer gets (besides the source's own and revenue), in how many rows
    it gives unit_cost away: equal to it, to units * unit_cost, to the margin (price - cost, per unit or
    per line) or to the cost's share of the price. Columns that match in most rows are reported."""
    own = {name for name, _ in COLUMNS}
    extra = [c for c in columns if c not in own and c != "revenue"]
    if not extra or "order_id" not in columns:
        return {}
    quoted = ", ".join(f'"{c}"' for c in extra)
    try:
        _, rows = engine.query(dataset_id, f'SELECT "order_id", {quoted} FROM dataset', viewer=viewer)
    except Exception:
        return {}
    by_id = truth.set_index("order_id")
    found = {}
    for i, name in enumerate(extra, start=1):
        hits = 0
        for row in rows:
            value = row[i]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            order = by_id.loc[row[0]]
            cost, price, units = order["unit_cost"], order["unit_price"], order["units"]
            candidates = (cost, cost * units, price - cost, (price - cost) * units, cost / price)
            if any(abs(value - c) <= 0.005 + 1e-9 * abs(c) for c in candidates):
                hits += 1
        if hits * 2 > len(rows):            # most rows: not a coincidence
            found[name] = hits
    return found


def run_datasets(stack, rules: list[dict], rules_dataset: dict, sales_dataset: dict) -> DataSetRun:
    """Create the rules and the sales data sets, ingest them, and read the sales data set as everyone.

    Deletes the two data sets first (by the learner's DataSetIds), so the check can run again.
    """
    run = DataSetRun()
    qs = stack.client("quicksight")
    account = stack.account_id
    rules_id = _dataset_id(rules_dataset, "RULES_DATASET")
    sales_id = _dataset_id(sales_dataset, "SALES_DATASET")
    check(rules_id != sales_id, "RULES_DATASET and SALES_DATASET have the same DataSetId: give each its own.")
    run.cls_rules = list(sales_dataset.get("ColumnLevelPermissionRules") or [])
    run.rls = sales_dataset.get("RowLevelPermissionDataSet")
    run.calculated = _calculated_fields(sales_dataset)
    run.import_mode = sales_dataset.get("ImportMode")

    _delete_if_there(qs.delete_data_set, AwsAccountId=account, DataSetId=sales_id)         # the sales data set points at the rules: it goes first
    _delete_if_there(qs.delete_data_set, AwsAccountId=account, DataSetId=rules_id)
    run.rules_columns = write_rules(stack, rules)
    for what, definition in (("rules", rules_dataset), ("sales", sales_dataset)):
        try:
            created = qs.create_data_set(AwsAccountId=account,
                                         **{k: v for k, v in definition.items() if k != "AwsAccountId"})
        except Exception as exc:
            run.error, run.error_code = f"CreateDataSet ({what} data set): {_error(exc)}", _code(exc)
            return run
        run.created[what] = definition["DataSetId"]
        if created.get("IngestionId"):          # SPICE: CreateDataSet starts the first ingestion
            ingestion = _wait_for_ingestion(qs, account, definition["DataSetId"], created["IngestionId"])
            if what == "sales":
                run.ingestion = ingestion
            if ingestion.get("IngestionStatus") != "COMPLETED":
                info = ingestion.get("ErrorInfo") or {}
                run.error = (f"the SPICE ingestion of the {what} data set ended {ingestion.get('IngestionStatus')}: "
                             f"{info.get('Type', '')} {info.get('Message', '')}".strip())
                return run

    engine = _engine(stack)
    queries_before = stack.local.quicksight.queries(sales_id)
    run.owner = _read_view(engine, sales_id, None)
    if "revenue" in run.owner.columns and "category" in run.owner.columns:
        _, rows = engine.query(sales_id, 'SELECT "category", SUM("revenue") AS revenue FROM dataset '
                                         'GROUP BY "category"')
        run.owner_revenue = {c: round(float(v), 2) for c, v in rows}
    _newcomer(stack, join=True)
    try:
        for name in EXPECTED_VIEWS:
            run.views[name] = _read_view(engine, sales_id, user_arn(stack, name))
    finally:
        _newcomer(stack, join=False)
    run.source_queries = stack.local.quicksight.queries(sales_id) - queries_before
    outsider = run.views[OUTSIDER]
    if outsider.error is None:
        run.leaks = _leaks(engine, sales_id, user_arn(stack, OUTSIDER), outsider.columns, sales())
    return run


def _principal_names(rules: list) -> list[str]:
    """The principals of the CLS rules that restrict unit_cost, as ``group sales-managers`` / ``user dana``."""
    names = []
    for rule in rules:
        if SENSITIVE in (rule.get("ColumnNames") or []):
            for arn in rule.get("Principals") or []:
                kind, _, name = arn.rpartition(":")[2].partition("/")
                names.append(f"{kind} {name.rpartition('/')[2]}")
    return names


def diagnose_datasets(run: DataSetRun) -> None:
    """Raise :class:`LabCheckFailed` with what went wrong in ``run``, measured faults first; return if all is well."""
    truth = sales()
    if run.error:
        hint = ""
        if "DENY_ACCESS" in run.error or (run.rls or {}).get("PermissionPolicy") == "DENY_ACCESS":
            hint = (" PermissionPolicy DENY_ACCESS is kept for old data sets only: a rule then *hides* the rows "
                    "it matches. Rules that say who may see which rows use GRANT_ACCESS.")
        elif "ingestion" in run.error:
            hint = " Look at the data set's PhysicalTableMap (schema, table, column names and types)."
        raise LabCheckFailed(f"{run.error}.{hint}")

    # SPICE: imported once, then read without asking Athena again.
    check(run.import_mode == "SPICE" and not run.source_queries,
          f"the sales data set is {run.import_mode or 'not imported'} (ImportMode): the check read it as its "
          f"owner and as {len(run.views)} users, and each read ran queries on Athena again ({run.source_queries} "
          "in all), each billed by the bytes it scans. Import it into SPICE (ImportMode='SPICE'): the data is "
          "copied once, at ingestion, and every visual reads the in-memory copy.")
    rows = (run.ingestion.get("RowInfo") or {}).get("RowsIngested")
    check(rows == len(truth), f"SPICE ingested {rows} rows of the sales table; it holds {len(truth):,}. "
                              "Did the data set filter rows out (a FilterOperation)?")

    # The calculated field: revenue for every category, as pandas computes it.
    check("revenue" in run.owner.columns,
          f"the data set has no column revenue (its columns: {', '.join(run.owner.columns)}). Add a calculated "
          "field to the LogicalTableMap: a CreateColumnsOperation with ColumnName 'revenue' and an Expression "
          "such as {units} * {unit_price}.")
    expected = dict(revenue_by_category(truth).itertuples(index=False, name=None))
    wrong = {c: (run.owner_revenue.get(c), v) for c, v in expected.items()
             if run.owner_revenue.get(c) is None or abs(run.owner_revenue[c] - v) > 0.01}
    if wrong:
        category, (got, want) = sorted(wrong.items())[0]
        raise LabCheckFailed(
            f"revenue is wrong for {len(wrong)} of {len(expected)} categories, e.g. {category}: "
            f"{_money(got or 0)} in the data set, {_money(want)} from units x unit_price in pandas. Your expression: "
            f"{run.calculated.get('revenue', '(not a calculated field)')!r}; revenue is units times unit_price.")

    # Column-level security: the outsider never gets unit_cost, the managers do.
    outsider = run.views[OUTSIDER]
    principals = _principal_names(run.cls_rules)
    if SENSITIVE in outsider.columns:
        if not principals:
            why = ("The data set has no ColumnLevelPermissionRules for unit_cost, so every user with access "
                   "to the data set gets every column")
        else:
            why = (f"Your rule for unit_cost lists {', '.join(principals)}. A ColumnLevelPermissionRule lists "
                   "who MAY see its columns: everyone else is refused them. List the sales-managers group")
        raise LabCheckFailed(
            f"{OUTSIDER} ({OUTSIDERS_GROUP}) gets unit_cost: the data set sends them its {len(truth):,} purchase "
            f"prices. {why}. ({CLS_GUIDE})")
    if run.leaks:
        name, hits = sorted(run.leaks.items())[0]
        raise LabCheckFailed(
            f"{OUTSIDER} cannot see unit_cost, but gets {name!r}, which gives it away in {hits:,} of "
            f"{sum(outsider.regions.values()):,} rows (unit_cost follows from it and unit_price). A calculated "
            f"field built on a restricted column is data like any other: restrict it too (add it to the "
            f"ColumnNames of the unit_cost rule), or leave it out of the data set.")
    for name in (*MANAGERS, NEWCOMER):
        view = run.views[name]
        if SENSITIVE not in view.columns:
            late = (f" {NEWCOMER} joined {MANAGERS_GROUP} after the rule was written; a rule naming users "
                    f"has to be edited for every new manager, a rule naming the group does not."
                    if name == NEWCOMER and any(p.startswith("user ") for p in principals) else "")
            raise LabCheckFailed(
                f"{name} ({MANAGERS_GROUP}) does not get unit_cost: the rule for it lists "
                f"{', '.join(principals) or 'nobody'}, and only the principals listed may see the column.{late} "
                f"List the group {MANAGERS_GROUP}.")

    # Row-level security: each viewer's regions.
    policy = (run.rls or {}).get("PermissionPolicy")
    rule_fields = [c for c in run.rules_columns if c not in ("UserName", "GroupName", "UserARN", "GroupARN")]
    for name, (regions, _) in EXPECTED_VIEWS.items():
        view = run.views[name]
        check(view.error is None, f"reading the sales data set as {name} failed: {view.error}")
        seen = set(view.regions)
        want_rows = int(truth["region"].isin(regions).sum())
        got_rows = sum(view.regions.values())
        if seen == regions and got_rows == want_rows:
            continue
        who = f"{name} ({'the external analyst' if name == OUTSIDER else 'manager of ' + ', '.join(sorted(regions))})"
        measured = (f"{who} gets {_rows(got_rows)} ({_regions(view.regions)}), "
                    f"not the {_rows(want_rows)} of {', '.join(sorted(regions))}")
        if run.rls is None:
            raise LabCheckFailed(f"{measured}: the data set has no RowLevelPermissionDataSet, so everyone sees "
                                 f"every row. Point it at the rules data set (its Arn) with PermissionPolicy "
                                 f"GRANT_ACCESS. ({RLS_GUIDE})")
        if policy == "DENY_ACCESS":
            raise LabCheckFailed(f"{measured}: PermissionPolicy is DENY_ACCESS, so a rule *hides* the rows it "
                                 "matches (and a user without a rule sees everything). Your rules say who may "
                                 "see which rows: use GRANT_ACCESS.")
        if "region" not in rule_fields:
            raise LabCheckFailed(f"{measured}: your rules filter on {', '.join(rule_fields) or 'no column'}, not "
                                 "on region. Besides UserName/GroupName, each column of the rules data set is a "
                                 "field of the data set whose values the user may see: the column must be "
                                 "named region.")
        if not view.regions and name == NEWCOMER and "GroupName" not in run.rules_columns:
            raise LabCheckFailed(
                f"{measured}: {NEWCOMER} joined {MANAGERS_GROUP} and {REGION_GROUPS['East']} after your rules "
                "were written, and your rules name users (UserName), so she has no rule, and a user without a "
                "rule sees nothing. Key the rules by GroupName: the groups say who manages which region, and "
                "adding a manager to a group is then all it takes.")
        if not view.regions:
            raise LabCheckFailed(f"{measured}: no rule of yours applies to {name} (their groups: "
                                 f"{', '.join(_groups_of(name))}), and with GRANT_ACCESS a user without a rule "
                                 "sees no row. A rule whose region is None (NULL) grants every region.")
        raise LabCheckFailed(f"{measured}. Look at the rules that apply to {name}'s groups "
                             f"({', '.join(_groups_of(name))}): a user sees the rows that match any of them.")


def _groups_of(name: str) -> list[str]:
    groups = [g for g, members in GROUPS.items() if name in members]
    return groups if name != NEWCOMER else [MANAGERS_GROUP, REGION_GROUPS["East"]]


def datasets_summary(run: DataSetRun):
    """One row per viewer: rows per region, unit_cost or not, the revenue they can sum."""
    import pandas as pd

    rows = []
    for name, view in [("(owner)", run.owner), *run.views.items()]:
        rows.append({"viewer": name, **{r: view.regions.get(r, 0) for r in REGIONS},
                     "unit_cost": "yes" if SENSITIVE in view.columns else "hidden",
                     "revenue": _money(view.revenue or 0)})
    return pd.DataFrame(rows).set_index("viewer")


def check_datasets(stack, rules: list[dict], rules_dataset: dict, sales_dataset: dict):
    """Step 1: both data sets created and in SPICE, revenue right, CLS and RLS right for every viewer."""
    run = run_datasets(stack, rules, rules_dataset, sales_dataset)
    diagnose_datasets(run)
    return datasets_summary(run)


# ------------------------------------------------------------------ step 2: the dashboard
#: The month the check chooses in the dashboard's filter control.
CHECK_MONTH = "2026-04"
#: Who opens the dashboard, and how: two in headless Chromium, two through the data endpoint only.
IN_BROWSER = ("dana", OUTSIDER)
BY_ENDPOINT = ("omar", NEWCOMER)
OWNER_ACTIONS = ("quicksight:UpdateDashboard", "quicksight:DeleteDashboard", "quicksight:UpdateDashboardPermissions",
                 "quicksight:UpdateDashboardPublishedVersion", "quicksight:DescribeDashboardPermissions",
                 "quicksight:UpdateDashboardLinks")

#: Reads, in the page, what Vega drew for one visual: the datum of every bar (or point, or slice).
DRAWN_JS = """(id) => {
  const view = window.qsViews[id];
  if (!view) return null;
  const out = [];
  const walk = (node) => {
    if (!node) return;
    if (['rect', 'arc', 'symbol'].includes(node.marktype)) {
      for (const item of node.items || []) if (item.datum) out.push(Object.assign({}, item.datum));
      return;
    }
    for (const item of node.items || []) walk(item);
  };
  walk(view.scenegraph().root);
  return out;
}"""


@dataclass
class Chart:
    """The learner's bar chart, as the definition says it."""
    visual_id: str
    category: tuple[str, str]                 # (FieldId, column) of the first Category field
    value: tuple[str, str, str]               # (FieldId, column, aggregation) of the first Values field
    colors: list[str] = field(default_factory=list)      # columns of the Colors well


@dataclass
class Viewer:
    """What one user's page showed."""
    how: str = "browser"                      # "browser" | "data endpoint"
    opened: str | None = None                 # None: the page opened; else the page's message
    drawn: dict[str, float] = field(default_factory=dict)        # category -> value drawn (colors summed)
    drawn_month: dict[str, float] | None = None                  # the same after choosing CHECK_MONTH
    payloads: list[str] = field(default_factory=list)            # every JSON body received from /api/


@dataclass
class DashboardRun:
    """What :func:`run_dashboard` saw."""
    error: str | None = None
    status: str | None = None
    version_errors: list = field(default_factory=list)
    permissions: list = field(default_factory=list)
    chart: Chart | None = None
    control: tuple[str, str, str] | None = None     # (control id, filter id, column) of the month control
    via: str = "browser"                            # "browser" | "data endpoint"
    no_browser: str | None = None                   # why there was no browser
    viewers: dict[str, Viewer] = field(default_factory=dict)


def find_chart(definition: dict) -> Chart | None:
    """The first BarChartVisual of the definition, or None."""
    for sheet in (definition or {}).get("Sheets") or []:
        for visual in sheet.get("Visuals") or []:
            bar = visual.get("BarChartVisual")
            if not bar:
                continue
            wells = (((bar.get("ChartConfiguration") or {}).get("FieldWells") or {})
                     .get("BarChartAggregatedFieldWells") or {})

            def first(items):
                for item in items or []:
                    for spec in item.values():
                        if isinstance(spec, dict):
                            return spec
                return {}
            cat, val = first(wells.get("Category")), first(wells.get("Values"))
            aggregation = ((val.get("AggregationFunction") or {}).get("SimpleNumericalAggregation")
                           if isinstance(val.get("AggregationFunction"), dict) else val.get("AggregationFunction"))
            colors = [spec.get("Column", {}).get("ColumnName") for item in wells.get("Colors") or []
                      for spec in item.values() if isinstance(spec, dict)]
            return Chart(bar.get("VisualId", ""),
                         (cat.get("FieldId", ""), (cat.get("Column") or {}).get("ColumnName")),
                         (val.get("FieldId", ""), (val.get("Column") or {}).get("ColumnName"), aggregation or "SUM"),
                         colors)
    return None


def find_month_control(definition: dict) -> tuple[str, str, str] | None:
    """(control id, filter id, the filter's column) of the sheets' first filter control, or None."""
    filters = {}
    for group in (definition or {}).get("FilterGroups") or []:
        for flt in group.get("Filters") or []:
            for spec in flt.values():
                if isinstance(spec, dict) and spec.get("FilterId"):
                    filters[spec["FilterId"]] = (spec.get("Column") or {}).get("ColumnName")
    for sheet in (definition or {}).get("Sheets") or []:
        for control in sheet.get("FilterControls") or []:
            for spec in control.values():
                if isinstance(spec, dict) and spec.get("SourceFilterId") in filters:
                    return spec.get("FilterControlId"), spec["SourceFilterId"], filters[spec["SourceFilterId"]]
    return None


def _by_category(rows: list[dict], chart: Chart) -> dict[str, float]:
    """Sum the chart's value per category (over its colors), from the data rows or drawn datums."""
    out: dict[str, float] = {}
    for row in rows:
        value = row.get(chart.value[0])
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            key = str(row.get(chart.category[0]))
            out[key] = round(out.get(key, 0.0) + float(value), 2)
    return out


def _embed_url(stack, dashboard_id: str, user: str) -> str:
    return stack.client("quicksight").generate_embed_url_for_registered_user(
        AwsAccountId=stack.account_id, UserArn=user_arn(stack, user), SessionLifetimeInMinutes=15,
        ExperienceConfiguration={"Dashboard": {"InitialDashboardId": dashboard_id}})["EmbedUrl"]


def _view_in_browser(browser, url: str, run: DashboardRun) -> Viewer:
    """Open ``url`` in a fresh browser context; read what the chart drew, before and after
    choosing CHECK_MONTH in the control, and keep every JSON payload the page received."""
    from localaws.core.browser import new_page

    viewer, responses = Viewer(), []
    page = new_page(browser)
    try:
        page.on("response", lambda response: responses.append(response))
        answer = page.goto(url)
        if answer is None or answer.status != 200:
            viewer.opened = (_page_message(page.content())
                             or f"HTTP {answer.status if answer else 'no answer'}")
            return viewer
        page.wait_for_selector("body[data-rendered='true']", timeout=60_000)
        chart = run.chart
        viewer.drawn = _by_category(page.evaluate(DRAWN_JS, chart.visual_id) or [], chart)
        if run.control:
            page.select_option(f"select[data-control-id='{run.control[0]}']", CHECK_MONTH)
            page.wait_for_selector("body[data-rendered='true']", timeout=60_000)
            viewer.drawn_month = _by_category(page.evaluate(DRAWN_JS, chart.visual_id) or [], chart)
        for response in responses:
            if "/api/" in response.url:
                viewer.payloads.append(response.text())
    finally:
        page.context.close()
    return viewer


def _page_message(page: str) -> str:
    """The message of one of the dashboard server's small HTML pages (no access, link expired)."""
    import html
    import re
    found = re.search(r"<p class='qs-message'>(.*?)</p>", page, re.DOTALL)
    return html.unescape(found.group(1)).strip() if found else ""


def _view_by_endpoint(url: str, dashboard_id: str, definition: dict, run: DashboardRun) -> Viewer:
    """What the page would receive, without a browser: open ``url`` (the session cookie), then ask the
    page's data endpoint for every visual, and for the chart again with CHECK_MONTH chosen."""
    import urllib.error
    import urllib.parse
    import urllib.request
    from http.cookiejar import CookieJar

    viewer = Viewer(how="data endpoint")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    try:
        with opener.open(url) as page:
            page.read()
    except urllib.error.HTTPError as exc:
        viewer.opened = _page_message(exc.read().decode(errors="replace")) or f"HTTP {exc.code}"
        return viewer
    base = url.split("/embed/", 1)[0] + f"/api/dashboards/{urllib.parse.quote(dashboard_id)}/visuals/"

    def fetch(visual_id: str, query: str = "") -> dict:
        try:
            with opener.open(base + urllib.parse.quote(visual_id) + "?" + query) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
        viewer.payloads.append(text)
        return json.loads(text)
    visual_ids = [spec["VisualId"] for sheet in definition.get("Sheets") or [] for v in sheet.get("Visuals") or []
                  for spec in v.values() if isinstance(spec, dict) and spec.get("VisualId")]
    for visual_id in visual_ids:
        data = fetch(visual_id)
        if visual_id == run.chart.visual_id:
            viewer.drawn = _by_category(data.get("rows") or [], run.chart)
    if run.control:
        query = urllib.parse.urlencode({f"f.{run.control[1]}": CHECK_MONTH})
        viewer.drawn_month = _by_category(fetch(run.chart.visual_id, query).get("rows") or [], run.chart)
    return viewer


def _browse(browser, urls: dict[str, str], run: DashboardRun) -> dict[str, Viewer]:
    """Open each user's URL in one headless Chromium, a browser context per user."""
    return {name: _view_in_browser(browser, url, run) for name, url in urls.items()}


def run_dashboard(stack, dashboard: dict, use_browser: bool = True) -> DashboardRun:
    """Create the learner's dashboard (deleting an earlier one), then open it as four users."""
    from localaws.core import browser as chromium

    run = DashboardRun()
    qs = stack.client("quicksight")
    account = stack.account_id
    check(isinstance(dashboard, dict) and dashboard.get("DashboardId"),
          "DASHBOARD must be a dict of CreateDashboard arguments, with a DashboardId.")
    dashboard_id = dashboard["DashboardId"]
    definition = dashboard.get("Definition") or {}
    run.permissions = list(dashboard.get("Permissions") or [])
    run.chart, run.control = find_chart(definition), find_month_control(definition)
    _delete_if_there(qs.delete_dashboard, AwsAccountId=account, DashboardId=dashboard_id)
    try:
        qs.create_dashboard(AwsAccountId=account, **{k: v for k, v in dashboard.items() if k != "AwsAccountId"})
    except Exception as exc:
        run.error = f"CreateDashboard: {_error(exc)}"
        return run
    version = qs.describe_dashboard(AwsAccountId=account, DashboardId=dashboard_id)["Dashboard"]["Version"]
    run.status, run.version_errors = version.get("Status"), version.get("Errors") or []
    if run.status != "CREATION_SUCCESSFUL" or run.chart is None:
        return run

    run.no_browser = chromium.missing_reason() if use_browser else "the check was asked not to use one"
    run.via = "data endpoint" if run.no_browser else "browser"
    _newcomer(stack, join=True)
    try:
        urls = {name: _embed_url(stack, dashboard_id, name) for name in (*IN_BROWSER, *BY_ENDPOINT)}
        if run.no_browser:
            for name in IN_BROWSER:
                run.viewers[name] = _view_by_endpoint(urls[name], dashboard_id, definition, run)
        else:
            run.viewers.update(chromium.with_browser(_browse, {name: urls[name] for name in IN_BROWSER}, run))
        for name in BY_ENDPOINT:
            run.viewers[name] = _view_by_endpoint(urls[name], dashboard_id, definition, run)
    finally:
        _newcomer(stack, join=False)
    return run


def expected_revenue(name: str, month: str | None = None) -> dict[str, float]:
    """pandas: revenue per category over the rows ``name`` may see (their regions), in ``month`` if given."""
    truth = sales()
    rows = truth[truth["region"].isin(EXPECTED_VIEWS[name][0])]
    if month:
        rows = rows[rows["order_month"] == month]
    return dict(revenue_by_category(rows).itertuples(index=False, name=None))


def _differences(drawn: dict[str, float], expected: dict[str, float]) -> list[tuple[str, float | None, float]]:
    keys = sorted(set(drawn) | set(expected))
    return [(k, drawn.get(k), expected.get(k, 0.0)) for k in keys
            if drawn.get(k) is None or abs(drawn[k] - expected.get(k, 0.0)) > 0.01 + 1e-9 * abs(expected.get(k, 0.0))]


def _leaked(payloads: list[str]) -> int:
    """How many values of a unit_cost field (not "Not Authorized") the payloads carry."""
    count = 0
    for text in payloads:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if data.get("restricted"):
            continue
        ids = [f.get("id") for f in data.get("fields") or []
               if SENSITIVE in str(f.get("id", "")) or SENSITIVE in str(f.get("label", ""))]
        for row in data.get("rows") or []:
            count += sum(1 for i in ids if row.get(i) not in (None, "Not Authorized"))
    return count


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _principals(permissions: list) -> str:
    names = []
    for p in permissions:
        kind, _, name = p.get("Principal", "").rpartition(":")[2].partition("/")
        names.append(f"{kind} {name.rpartition('/')[2]}")
    return ", ".join(names) or "nobody"


def diagnose_dashboard(run: DashboardRun) -> None:
    """Raise :class:`LabCheckFailed` with what went wrong in ``run``, measured faults first; return if all is well."""
    if run.error:
        raise LabCheckFailed(f"{run.error}. Nothing was created: fix the definition and run the cell again.")
    if run.status != "CREATION_SUCCESSFUL":
        errors = "; ".join(f"{e.get('Type')}: {e.get('Message')}" for e in run.version_errors) or "no errors listed"
        raise LabCheckFailed(f"the dashboard was created, but its version is {run.status} ({errors}): QuickSight "
                             "checks the fields against the data set's columns. Use the DataSetArn of the "
                             "sales data set and its column names (revenue is the calculated field).")
    check(run.chart is not None, "the dashboard has no BarChartVisual: the question is answered by a bar chart "
                                 "of revenue per category.")
    chart = run.chart

    # Who can open it: every manager, the new manager, and the external analyst.
    for name, viewer in run.viewers.items():
        if viewer.opened is None:
            continue
        groups = ", ".join(_groups_of(name))
        late = (f" {NEWCOMER} joined {MANAGERS_GROUP} just before the check opened the dashboard; permissions "
                "that name users must be edited for each new manager, permissions for the group need nothing."
                if name == NEWCOMER and any("user/" in p.get("Principal", "") for p in run.permissions) else "")
        raise LabCheckFailed(
            f"{name} ({groups}) could not open the dashboard (the page said: {viewer.opened.rstrip('.')}). "
            f"Its Permissions "
            f"grant {_principals(run.permissions)}.{late} Grant the groups {MANAGERS_GROUP} and {OUTSIDERS_GROUP} "
            "the viewer actions.")

    # The hidden column never reaches the outsider, whatever the visuals.
    leaked = _leaked(run.viewers[OUTSIDER].payloads)
    where = "in the browser" if run.viewers[OUTSIDER].how == "browser" else "from the data endpoint"
    check(not leaked, f"{OUTSIDER} received {leaked:,} value(s) of unit_cost {where}: the dashboard's data "
                      f"reached a member of {OUTSIDERS_GROUP}. Column-level security on the data set must hide "
                      "it from them (step 1), whatever the visuals show.")

    # The bar chart answers the question, for each viewer's own rows.
    for name, viewer in run.viewers.items():
        expected = expected_revenue(name)
        wrong = _differences(viewer.drawn, expected)
        if not wrong:
            continue
        category, got, want = wrong[0]
        shown = "no bar" if got is None else _money(got)
        why = []
        if chart.category[1] != "category":
            why.append(f"its Category field is {chart.category[1]!r}, not category")
        if chart.value[1] != "revenue":
            why.append(f"its Values field is {chart.value[1]!r}, not revenue")
        if chart.value[2] != "SUM":
            why.append(f"it aggregates with {chart.value[2]}, not SUM")
        raise LabCheckFailed(
            f"the chart {name} saw ({viewer.how}) differs from pandas for {len(wrong)} categor"
            f"{'y' if len(wrong) == 1 else 'ies'}: {category}: {shown}, pandas {_money(want)} (revenue of "
            f"{', '.join(sorted(EXPECTED_VIEWS[name][0]))}). "
            + (_sentence("; ".join(why)) if why else "Look at the chart's FieldWells and filters."))

    # The control: choosing a month shows that month.
    check(run.control is not None,
          "the sheet has no filter control on order_month: add a FilterGroup with a CategoryFilter on order_month "
          "and a Dropdown in the sheet's FilterControls whose SourceFilterId is that filter.")
    control_id, filter_id, column = run.control
    check(column == "order_month", f"the filter control {control_id!r} filters {column!r}, not order_month: the "
                                   "managers choose a month.")
    for name, viewer in run.viewers.items():
        expected = expected_revenue(name, CHECK_MONTH)
        wrong = _differences(viewer.drawn_month or {}, expected)
        if not wrong:
            continue
        same = viewer.drawn_month == viewer.drawn
        category, got, want = wrong[0]
        raise LabCheckFailed(
            f"after choosing {CHECK_MONTH} in the control {control_id!r}, {name}'s chart shows "
            f"{'no bar' if got is None else _money(got)} for {category}; pandas: {_money(want)} in {CHECK_MONTH}. "
            + ("The chart did not change at all: is the filter group's ScopeConfiguration the sheet (or this "
               "visual), and is it ENABLED?" if same else "Look at the filter's configuration."))

    # Nothing measured went wrong: are the viewers only viewers?
    broad = [p for p in run.permissions if set(p.get("Actions") or []) & set(OWNER_ACTIONS)]
    check(not broad, f"the Permissions give {_principals(broad)} owner actions "
                     f"({', '.join(sorted(set(broad[0].get('Actions', [])) & set(OWNER_ACTIONS))) if broad else ''}): "
                     "they could change, republish or delete the dashboard, or share it on. Viewers get "
                     + ", ".join(VIEWER_ACTIONS) + ".")


def dashboard_summary(run: DashboardRun):
    """One row per viewer: how the check looked, the top category, the revenue drawn, unit_cost received."""
    import pandas as pd

    rows = []
    for name in (*IN_BROWSER, *BY_ENDPOINT):
        viewer = run.viewers[name]
        top = max(viewer.drawn.items(), key=lambda kv: kv[1]) if viewer.drawn else ("-", 0.0)
        month_top = max((viewer.drawn_month or {}).items(), key=lambda kv: kv[1], default=("-", 0.0))
        rows.append({"viewer": name, "read by": viewer.how,
                     "regions": ", ".join(sorted(EXPECTED_VIEWS[name][0])),
                     "top category": f"{top[0]} ({_money(top[1])})",
                     f"top in {CHECK_MONTH}": f"{month_top[0]} ({_money(month_top[1])})",
                     "revenue drawn": _money(sum(viewer.drawn.values())),
                     "unit_cost values received": _leaked(viewer.payloads)})
    return pd.DataFrame(rows).set_index("viewer")


def check_dashboard(stack, dashboard: dict, use_browser: bool = True):
    """Step 2: the dashboard opens for every viewer, its chart equals pandas for each (all months, then
    CHECK_MONTH chosen in the control), and unit_cost never reaches the external analyst."""
    run = run_dashboard(stack, dashboard, use_browser)
    diagnose_dashboard(run)
    if run.no_browser:
        print(f"No browser ({run.no_browser}): the check read the dashboards' data endpoint instead, "
              "the JSON the page would have received.")
    return dashboard_summary(run)


# ------------------------------------------------------------------ step 3: a written answer
#: The ideas the answer needs, each as words one of which must appear (lower case).
ANSWER_IDEAS = {
    "CLS is enforced on the data set, where the data leaves QuickSight (not in one visual)":
        ("data set", "dataset"),
    "a hidden field in a visual still reaches the viewer (another visual, an export, the page's data)":
        ("browser", "export", "download", "payload", "network", "another visual", "other visual", "api", "endpoint"),
    "SPICE is imported once and refreshed; direct query asks Athena for every visual":
        ("spice",),
    "direct query's cost or speed: Athena scans (bytes billed), slower per visual":
        ("athena", "direct query", "direct_query", "scan"),
}
MIN_WORDS = 60


def check_answer(answer: str) -> None:
    """Step 3, graded lightly: long enough, and touching each idea of :data:`ANSWER_IDEAS`."""
    check_written_answer(answer, ANSWER_IDEAS, MIN_WORDS)
