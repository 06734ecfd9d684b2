"""Checks for lab 09 (``labs/09_lake_formation``): least privilege with Lake Formation, measured.

They live here, not in the lab's check cells, so that a check cell does not
show the answer. Each raises ``localaws.grading.LabCheckFailed`` with a
message for the learner. The checks **measure**: they apply what the learner
wrote (grants, data cells filters, LF-Tags) with boto3, then act *as the
analyst* (or the planner), with that IAM user's own access keys, through
Athena, the Glue Data Catalog and S3, and compare what came back with pandas
over the data that user should see. Only then do they read the learner's
grants, to say which one caused what was measured.

The business (seeded, :func:`orders`, :func:`customers`, :func:`inventory`):
a retailer's governed lake, the Glue database ``retail`` with three tables in
a registered S3 location. The database was created with an empty
``CreateTableDefaultPermissions``, so every table in it is governed from the
start: nobody but the administrator reads anything until Lake Formation
grants it. The EU analytics team asks three questions (:data:`QUESTIONS`),
all answerable from ``orders`` restricted to EU rows and a few columns.

**Step 1 (least privilege for the analyst).** :func:`run_grants` revokes
everything the analyst held, deletes the lab's data cells filters, creates
the learner's filters, grants the learner's entries, then, as the analyst,
runs the three questions and tries the forbidden reads: ``SELECT *`` (which
columns, which rows), the PII columns one by one, ``customers`` and
``inventory``, ``information_schema``, the raw S3 objects. It also records
the permissions the decision point (``ctx.lake``) gives the analyst beyond
SELECT, and any grant option. :func:`diagnose_grants` explains each
over-grant and under-grant with the numbers measured.

**Step 2 (grants by LF-Tag expression).** :func:`run_tags` deletes the
learner's LF-Tag keys (which drops their assignments and the grants on them),
creates the tags, assigns them, grants the planner, and measures what the
planner reads. Then it adds a new table, ``shipments``, tags it exactly as
the learner tagged ``inventory`` (table tags, and the tags of the columns
both tables share), grants nothing, and measures again: a tag-based grant
covers it, a grant that names ``inventory`` does not.

**Step 3 (a written answer)** is graded lightly by :func:`check_answer`.

The checks read the decision point (``stack.context.lake``) for the
permissions held: they run on the local stack only.

Sources: https://docs.aws.amazon.com/lake-formation/latest/dg/data-filters-about.html (a data
cells filter: columns and a row filter expression; granting SELECT on it),
https://docs.aws.amazon.com/lake-formation/latest/dg/lf-tag-considerations.html (tag expressions;
permissions from named resources and from LF-Tags add up; tags are assigned after a resource is
created), https://docs.aws.amazon.com/lake-formation/latest/dg/lf-permissions-reference.html.
"""
from __future__ import annotations

import datetime
import io
import random
from dataclasses import dataclass, field

from localaws.grading import LabCheckFailed, check, check_written_answer

# ------------------------------------------------------------------ the business
EU_REGIONS = ("EU-North", "EU-South", "EU-West")
OTHER_REGIONS = ("APAC", "US-East", "US-West")
REGIONS = EU_REGIONS + OTHER_REGIONS
CHANNELS = ("app", "store", "web")
MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06")
#: product -> list price in $
PRODUCTS = {"Backpack": 79.0, "Bike light": 24.0, "Water bottle": 15.0, "Rain jacket": 129.0, "Trail shoes": 119.0,
            "Helmet": 89.0, "Gloves": 29.0, "Tent": 249.0, "Sleeping bag": 149.0, "Headlamp": 39.0}
WAREHOUSES = ("Leipzig", "Memphis", "Rotterdam")
ORDERS, CUSTOMERS, SHIPMENTS = 1_800, 240, 60
SEED = 9

#: orders' columns, in order, with their Athena type.
ORDER_COLUMNS = (("order_id", "string"), ("order_date", "date"), ("order_month", "string"), ("region", "string"),
                 ("channel", "string"), ("product", "string"), ("units", "int"), ("unit_price", "double"),
                 ("customer_id", "string"), ("customer_email", "string"), ("card_number", "string"))
CUSTOMER_COLUMNS = (("customer_id", "string"), ("name", "string"), ("email", "string"), ("phone", "string"),
                    ("country", "string"))
INVENTORY_COLUMNS = (("product", "string"), ("warehouse", "string"), ("on_hand", "int"), ("reorder_level", "int"),
                     ("unit_cost", "double"), ("supplier_email", "string"))
SHIPMENT_COLUMNS = (("shipment_id", "string"), ("product", "string"), ("warehouse", "string"), ("units", "int"),
                    ("shipped_on", "date"), ("unit_cost", "double"), ("supplier_email", "string"))
TABLES = {"orders": ORDER_COLUMNS, "customers": CUSTOMER_COLUMNS, "inventory": INVENTORY_COLUMNS}

#: orders' personal data: never for the analyst.
PII = ("customer_email", "card_number")
#: The columns the three questions read (and so the only ones the analyst needs).
NEEDED = ("order_month", "region", "channel", "product", "units", "unit_price")
#: inventory's (and shipments') confidential columns: never for the planner.
CONFIDENTIAL = ("unit_cost", "supplier_email")

#: The analyst's three questions, as the analyst asks them on Athena (they filter EU themselves).
QUESTIONS = {
    "Q1 revenue per EU region and month": (
        "SELECT region, order_month, round(sum(units * unit_price), 2) AS revenue FROM orders "
        "WHERE region LIKE 'EU-%' GROUP BY region, order_month ORDER BY region, order_month"),
    "Q2 top 5 products by units in the EU": (
        "SELECT product, sum(units) AS units FROM orders WHERE region LIKE 'EU-%' "
        "GROUP BY product ORDER BY units DESC, product LIMIT 5"),
    "Q3 average basket per channel in the EU": (
        "SELECT channel, count(*) AS orders, round(avg(units * unit_price), 2) AS avg_basket FROM orders "
        "WHERE region LIKE 'EU-%' GROUP BY channel ORDER BY channel"),
}

FILTERS_GUIDE = "https://docs.aws.amazon.com/lake-formation/latest/dg/data-filters-about.html"
TAGS_GUIDE = "https://docs.aws.amazon.com/lake-formation/latest/dg/lf-tag-considerations.html"


@dataclass(frozen=True)
class Lake:
    """Names of the lab's lake: the notebook uses the defaults; tests use their own."""
    database: str = "retail"
    bucket: str = "lab-lake"
    results: str = "lab-lake-athena-results"
    analyst: str = "analyst"
    planner: str = "planner"

    def output(self, who: str = "admin") -> str:
        return f"s3://{self.results}/{who}/"


LAKE = Lake()


# ------------------------------------------------------------------ the data (seeded)
def customers(count: int = CUSTOMERS, seed: int = SEED):
    """The customers (PII: name, email, phone), one row each."""
    import pandas as pd

    rng = random.Random(seed)
    first = ["Ana", "Ben", "Chloe", "Dario", "Elif", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Kaja", "Luca"]
    last = ["Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Jansen", "Kowalski", "Novak"]
    countries = ["DE", "ES", "FR", "NL", "SE", "US", "JP"]
    rows = []
    for n in range(count):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        rows.append({"customer_id": f"c-{n:04d}", "name": name,
                     "email": f"{name.lower().replace(' ', '.')}.{n}@example.com",
                     "phone": f"+49 30 {rng.randrange(1_000_000, 9_999_999)}", "country": rng.choice(countries)})
    return pd.DataFrame(rows)


def orders(count: int = ORDERS, seed: int = SEED):
    """The orders (one row per order): half of them in the EU; ``customer_email`` and
    ``card_number`` (test card numbers) are personal data."""
    import pandas as pd

    rng = random.Random(seed + 1)
    people = customers()
    weights = [18, 14, 18, 16, 18, 16]                   # EU-North, EU-South, EU-West, APAC, US-East, US-West
    rows = []
    for n in range(count):
        region = rng.choices(REGIONS, weights)[0]
        month = rng.randrange(len(MONTHS))
        product = rng.choice(list(PRODUCTS))
        person = people.iloc[rng.randrange(len(people))]
        rows.append({"order_id": f"o-{n:05d}", "order_date": datetime.date(2026, month + 1, rng.randrange(1, 29)),
                     "order_month": MONTHS[month], "region": region,
                     "channel": rng.choices(CHANNELS, [3, 2, 5])[0], "product": product,
                     "units": rng.randint(1, 4), "unit_price": PRODUCTS[product],
                     "customer_id": person["customer_id"], "customer_email": person["email"],
                     "card_number": f"4000-0000-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}"})
    frame = pd.DataFrame(rows)
    frame["units"] = frame["units"].astype("int32")
    return frame


def inventory(seed: int = SEED):
    """Stock per product and warehouse; ``unit_cost`` (purchase price) and ``supplier_email`` are confidential."""
    import pandas as pd

    rng = random.Random(seed + 2)
    rows = [{"product": p, "warehouse": w, "on_hand": rng.randrange(0, 400), "reorder_level": rng.choice([50, 80, 120]),
             "unit_cost": round(price * rng.uniform(0.35, 0.6), 2),
             "supplier_email": f"sales@{p.lower().replace(' ', '-')}-supply.example"}
            for p, price in PRODUCTS.items() for w in WAREHOUSES]
    frame = pd.DataFrame(rows)
    frame[["on_hand", "reorder_level"]] = frame[["on_hand", "reorder_level"]].astype("int32")
    return frame


def shipments(count: int = SHIPMENTS, seed: int = SEED):
    """Shipments from suppliers (the table step 2's check adds): the same confidential columns as inventory."""
    import pandas as pd

    rng = random.Random(seed + 3)
    stock = inventory()
    rows = []
    for n in range(count):
        item = stock.iloc[rng.randrange(len(stock))]
        rows.append({"shipment_id": f"s-{n:04d}", "product": item["product"], "warehouse": item["warehouse"],
                     "units": rng.randrange(20, 200), "shipped_on": datetime.date(2026, rng.randrange(1, 7), 15),
                     "unit_cost": item["unit_cost"], "supplier_email": item["supplier_email"]})
    frame = pd.DataFrame(rows)
    frame["units"] = frame["units"].astype("int32")
    return frame


def eu_orders():
    """The rows the analyst may see: the EU's orders."""
    frame = orders()
    return frame[frame["region"].isin(EU_REGIONS)].reset_index(drop=True)


def expected_answers() -> dict:
    """pandas' answers to :data:`QUESTIONS`, over the EU's orders."""
    eu = eu_orders().assign(revenue=lambda f: f["units"] * f["unit_price"])
    q1 = eu.groupby(["region", "order_month"], as_index=False)["revenue"].sum()
    q1["revenue"] = q1["revenue"].round(2)
    q2 = (eu.groupby("product", as_index=False)["units"].sum().sort_values(["units", "product"],
                                                                             ascending=[False, True]).head(5))
    q3 = eu.groupby("channel", as_index=False).agg(orders=("order_id", "size"), avg_basket=("revenue", "mean"))
    q3["avg_basket"] = q3["avg_basket"].round(2)
    answers = [q1.sort_values(["region", "order_month"]), q2, q3.sort_values("channel")]
    return {name: frame.reset_index(drop=True) for name, frame in zip(QUESTIONS, answers)}


# ------------------------------------------------------------------ small helpers
def _n(count: int, what: str) -> str:
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def _parquet(frame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _athena(stack, sql: str, lake: Lake, principal: str | None = None):
    """``(DataFrame or None, stats)`` of ``sql`` run on Athena in the lab's database, as ``principal``."""
    from localaws.athena.client import run_query     # boto3 only: works on AWS too

    who = principal.rsplit("/", 1)[-1] if principal else "admin"
    return run_query(stack.client("athena", principal=principal), sql, database=lake.database,
                     output=lake.output(who), check=False)


def _admin(stack, sql: str, lake: Lake) -> None:
    frame, stats = _athena(stack, sql, lake)
    if stats["state"] != "SUCCEEDED":
        raise RuntimeError(f"Athena: {stats['reason']}\n{sql}")


def user_arn(stack, name: str) -> str:
    return f"arn:aws:iam::{stack.account_id}:user/{name}"


def _ddl(table: str, columns, lake: Lake) -> str:
    cols = ", ".join(f"{name} {kind}" for name, kind in columns)
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} ({cols}) STORED AS PARQUET "
            f"LOCATION 's3://{lake.bucket}/{table}/'")


# ------------------------------------------------------------------ the given lake
def build_lake(stack, lake: Lake = LAKE):
    """Build the governed lake (skipping what an earlier run built); return a table of its tables.

    The data goes to ``s3://<bucket>/<table>/`` as Parquet, the bucket is registered with Lake
    Formation, the database is created with an empty ``CreateTableDefaultPermissions`` (so its
    tables are governed from the start: ``IAM_ALLOWED_PRINCIPALS`` holds nothing on them) and
    ``IAM_ALLOWED_PRINCIPALS`` is revoked from the database itself. The IAM users ``analyst`` and
    ``planner`` are created without any policy.
    """
    import pandas as pd

    s3, glue, lf, iam = (stack.client(s) for s in ("s3", "glue", "lakeformation", "iam"))
    for bucket in (lake.bucket, lake.results):
        try:
            s3.create_bucket(Bucket=bucket)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
    data = {"orders": orders(), "customers": customers(), "inventory": inventory()}
    for table, frame in data.items():
        s3.put_object(Bucket=lake.bucket, Key=f"{table}/part-0.parquet", Body=_parquet(frame))
    try:
        lf.register_resource(ResourceArn=f"arn:aws:s3:::{lake.bucket}", UseServiceLinkedRole=True)
    except lf.exceptions.AlreadyExistsException:
        pass
    try:
        glue.create_database(DatabaseInput={"Name": lake.database, "Description": "the retailer's governed lake",
                                            "CreateTableDefaultPermissions": []})
        lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
                              Resource={"Database": {"Name": lake.database}}, Permissions=["ALL"])
    except glue.exceptions.AlreadyExistsException:
        pass
    for table, columns in TABLES.items():
        _admin(stack, _ddl(table, columns, lake), lake)
    for name in (lake.analyst, lake.planner):
        try:
            iam.create_user(UserName=name)
        except iam.exceptions.EntityAlreadyExistsException:
            pass

    def governed(table: str) -> bool:            # IAM_ALLOWED_PRINCIPALS holds nothing on it
        entries = lf.list_permissions(Resource={"Table": {"DatabaseName": lake.database, "Name": table}})
        return not any(e["Principal"]["DataLakePrincipalIdentifier"] == "IAM_ALLOWED_PRINCIPALS"
                       for e in entries["PrincipalResourcePermissions"])
    return pd.DataFrame([{"table": t, "rows": len(f), "columns": ", ".join(f.columns), "governed": governed(t)}
                         for t, f in data.items()]).set_index("table")


# ------------------------------------------------------------------ resetting the analyst's (or planner's) grants
def _permissions_of(stack, arn: str) -> list[dict]:
    """Every ListPermissions entry naming ``arn`` (as the administrator sees them)."""
    lf = stack.client("lakeformation")
    found, token = [], None
    while True:                                  # ListPermissions has no boto3 paginator: follow NextToken
        page = lf.list_permissions(**({"NextToken": token} if token else {}))
        found += [e for e in page["PrincipalResourcePermissions"]
                  if e["Principal"]["DataLakePrincipalIdentifier"] == arn]
        token = page.get("NextToken")
        if not token:
            return found


def revoke_everything(stack, arn: str) -> int:
    """Revoke every Lake Formation permission ``arn`` holds; return how many grants there were."""
    lf = stack.client("lakeformation")
    held = _permissions_of(stack, arn)
    for entry in held:
        try:
            lf.revoke_permissions(Principal=entry["Principal"], Resource=entry["Resource"],
                                  Permissions=entry.get("Permissions") or [],
                                  PermissionsWithGrantOption=entry.get("PermissionsWithGrantOption") or [])
        except Exception as exc:            # a resource gone since (a dropped table): nothing left to revoke
            if _code(exc) not in ("EntityNotFoundException", "InvalidInputException"):
                raise
    return len(held)


def _delete_filters(stack, lake: Lake) -> None:
    lf = stack.client("lakeformation")
    for table in (*TABLES, "shipments"):
        try:
            found = lf.list_data_cells_filter(Table={"CatalogId": stack.account_id, "DatabaseName": lake.database,
                                                     "Name": table}).get("DataCellsFilters", [])
        except Exception as exc:
            if _code(exc) == "EntityNotFoundException":
                continue
            raise
        for spec in found:
            lf.delete_data_cells_filter(TableCatalogId=spec["TableCatalogId"], DatabaseName=spec["DatabaseName"],
                                        TableName=spec["TableName"], Name=spec["Name"])


def _keep_governed(stack, lake: Lake) -> None:
    """Take IAM_ALLOWED_PRINCIPALS back from the lab's tables if an earlier run granted it."""
    policy, lf = stack.context.lake, stack.client("lakeformation")
    for table in (*TABLES, "shipments"):
        if policy.catalog().table(lake.database, table) and not policy.governed(lake.database, table):
            lf.revoke_permissions(Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
                                  Resource={"Table": {"DatabaseName": lake.database, "Name": table}},
                                  Permissions=["ALL"])


def describe(entry: dict) -> str:
    """A grant entry in words: ``SELECT on table orders``, ``SELECT on data cells filter eu_orders``..."""
    perms = ", ".join(entry.get("Permissions") or []) or "nothing"
    resource = entry.get("Resource") or {}
    if "Table" in resource:
        t = resource["Table"]
        what = (f"every table of {t.get('DatabaseName')} (TableWildcard)" if "TableWildcard" in t
                else f"table {t.get('Name')}")
    elif "TableWithColumns" in resource:
        t = resource["TableWithColumns"]
        cols = (", ".join(t["ColumnNames"]) if "ColumnNames" in t else
                "every column but " + (", ".join(t.get("ColumnWildcard", {}).get("ExcludedColumnNames") or [])
                                       or "none"))
        what = f"columns of {t.get('Name')} ({cols})"
    elif "DataCellsFilter" in resource:
        what = f"data cells filter {resource['DataCellsFilter'].get('Name')}"
    elif "Database" in resource:
        what = f"database {resource['Database'].get('Name')}"
    elif "LFTagPolicy" in resource:
        expr = " AND ".join(f"{e.get('TagKey')}={'|'.join(e.get('TagValues') or [])}"
                            for e in resource["LFTagPolicy"].get("Expression") or [])
        what = f"{resource['LFTagPolicy'].get('ResourceType', '').lower()}s tagged {expr}"
    elif "DataLocation" in resource:
        what = f"data location {resource['DataLocation'].get('ResourceArn')}"
    elif "Catalog" in resource:
        what = "the catalog"
    else:
        what = "?"
    return f"{perms} on {what}"


def _check_grants(grants, what: str) -> None:
    check(isinstance(grants, (list, tuple)) and all(isinstance(g, dict) for g in grants),
          f"{what} must be a list of dicts (GrantPermissions arguments: Principal, Resource, Permissions); "
          f"got {grants!r:.80}.")


def _apply_grants(stack, grants, principal_arn: str, what: str) -> str | None:
    """Grant the learner's entries (BatchGrantPermissions, 20 at a time); return an error or None."""
    for number, entry in enumerate(grants, 1):
        who = (entry.get("Principal") or {}).get("DataLakePrincipalIdentifier")
        if who == "IAM_ALLOWED_PRINCIPALS":
            return (f"{what} entry {number} grants IAM_ALLOWED_PRINCIPALS: that takes the resource out of Lake "
                    "Formation's control (IAM alone decides, so anyone with S3 and Glue access reads every "
                    "column and row). Grant to the user's ARN.")
        if who != principal_arn:
            return (f"{what} entry {number} grants to {who!r}; this step grants to {principal_arn} only "
                    "(the Principal is {'DataLakePrincipalIdentifier': <its ARN>}).")
    lf = stack.client("lakeformation")
    entries = [{"Id": str(i), **{k: v for k, v in g.items() if k not in ("Id", "CatalogId")}}
               for i, g in enumerate(grants, 1)]
    for start in range(0, len(entries), 20):
        try:
            failures = lf.batch_grant_permissions(Entries=entries[start:start + 20])["Failures"]
        except Exception as exc:
            return f"BatchGrantPermissions: {_error(exc)}"
        if failures:
            bad = failures[0]
            entry = bad.get("RequestEntry", {})
            return (f"{what} entry {entry.get('Id')} ({describe(entry)}) failed: "
                    f"{bad['Error'].get('ErrorCode')}: {bad['Error'].get('ErrorMessage')}")
    return None


# ------------------------------------------------------------------ step 1: the analyst
@dataclass
class Answer:
    """One question as the analyst asked it."""
    frame: object = None          # a DataFrame, or None when the query failed
    reason: str | None = None     # Athena's StateChangeReason when it failed


@dataclass
class GrantRun:
    """What :func:`run_grants` measured."""
    error: str | None = None
    grants: list = field(default_factory=list)
    filters: list = field(default_factory=list)
    answers: dict = field(default_factory=dict)             # question -> Answer
    star_columns: list | None = None                        # SELECT * FROM orders: the columns (None: failed)
    star_reason: str | None = None
    star_rows: int = 0
    rows_by_region: dict = field(default_factory=dict)      # region -> rows of SELECT * (when region is visible)
    pii_values: dict = field(default_factory=dict)          # PII column -> non-null values read by SELECT *
    pii_probes: dict = field(default_factory=dict)          # "SELECT card_number FROM orders" -> None (denied) or rows
    other_tables: dict = field(default_factory=dict)        # table -> rows read (None: denied) ...
    other_reasons: dict = field(default_factory=dict)       # ... and the reason it was denied
    catalog: dict = field(default_factory=dict)             # information_schema: table -> its visible columns
    s3: dict = field(default_factory=dict)                  # s3://... -> "AccessDenied" or "<n> bytes"
    permissions: dict = field(default_factory=dict)         # table -> permissions beyond SELECT/DESCRIBE
    database_permissions: list = field(default_factory=list)
    location_access: bool = False                           # DATA_LOCATION_ACCESS on the bucket
    grant_option: list = field(default_factory=list)        # entries the analyst holds with a grant option
    admin: bool = False                                     # the analyst is a data lake administrator


def _check_filters(filters) -> None:
    check(isinstance(filters, (list, tuple)) and all(isinstance(f, dict) for f in filters),
          f"FILTERS must be a list of dicts (the TableData of CreateDataCellsFilter); got {filters!r:.80}.")


def run_grants(stack, grants: list, filters: list, lake: Lake = LAKE) -> GrantRun:
    """Reset the analyst, apply ``filters`` and ``grants``, then act as the analyst and record everything."""
    _check_filters(filters)
    _check_grants(grants, "GRANTS")
    run = GrantRun(grants=list(grants), filters=list(filters))
    analyst = user_arn(stack, lake.analyst)
    lf = stack.client("lakeformation")
    revoke_everything(stack, analyst)
    _delete_filters(stack, lake)
    _keep_governed(stack, lake)
    for spec in filters:
        try:
            lf.create_data_cells_filter(TableData={"TableCatalogId": stack.account_id, **spec})
        except Exception as exc:
            run.error = f"CreateDataCellsFilter {spec.get('Name')!r}: {_error(exc)}"
            return run
    run.error = _apply_grants(stack, run.grants, analyst, "GRANTS")
    if run.error:
        return run

    for name, sql in QUESTIONS.items():
        frame, stats = _athena(stack, sql, lake, analyst)
        run.answers[name] = Answer(frame, stats["reason"] if frame is None else None)
    frame, stats = _athena(stack, "SELECT * FROM orders", lake, analyst)
    if frame is None:
        run.star_reason = stats["reason"]
    else:
        run.star_columns, run.star_rows = list(frame.columns), len(frame)
        if "region" in frame.columns:
            run.rows_by_region = {str(k): int(v) for k, v in frame["region"].value_counts().sort_index().items()}
        run.pii_values = {c: int(frame[c].notna().sum()) for c in PII if c in frame.columns}
    for column in PII:
        frame, _ = _athena(stack, f"SELECT {column} FROM orders LIMIT 10", lake, analyst)
        run.pii_probes[column] = None if frame is None else len(frame)
    for table in ("customers", "inventory"):
        frame, stats = _athena(stack, f"SELECT * FROM {table}", lake, analyst)
        run.other_tables[table] = None if frame is None else len(frame)
        run.other_reasons[table] = stats["reason"]
    frame, _ = _athena(stack, "SELECT table_name FROM information_schema.tables "
                              f"WHERE table_schema = '{lake.database}' ORDER BY table_name", lake, analyst)
    run.catalog = {t: [] for t in frame["table_name"]} if frame is not None else {}
    frame, _ = _athena(stack, "SELECT table_name, column_name FROM information_schema.columns "
                              f"WHERE table_schema = '{lake.database}' ORDER BY table_name, ordinal_position",
                       lake, analyst)
    if frame is not None:
        for table, group in frame.groupby("table_name", sort=True):
            run.catalog[table] = list(group["column_name"])
    s3 = stack.client("s3", principal=analyst)
    for table in ("orders", "customers"):
        uri = f"s3://{lake.bucket}/{table}/part-0.parquet"
        try:
            body = s3.get_object(Bucket=lake.bucket, Key=f"{table}/part-0.parquet")["Body"].read()
            run.s3[uri] = f"{len(body):,} bytes"
        except Exception as exc:
            run.s3[uri] = _code(exc) or _error(exc)
    policy = stack.context.lake
    run.admin = policy.is_admin(analyst)
    for table in TABLES:
        extra = set(policy.table_access(analyst, lake.database, table).permissions) - {"SELECT", "DESCRIBE"}
        if extra:
            run.permissions[table] = sorted(extra)
    run.database_permissions = sorted(policy.database_permissions(analyst, lake.database) - {"DESCRIBE"})
    run.location_access = any(k[0] == "data_location" for (p, k) in list(policy.grants)
                              if p in policy.principal_arns(analyst))
    run.grant_option = [describe(e) for e in _permissions_of(stack, analyst) if e.get("PermissionsWithGrantOption")]
    return run


def _covering(grants: list, table: str, database: str) -> list[dict]:
    """The learner's entries that reach ``table`` (or every table)."""
    found = []
    for entry in grants:
        resource = entry.get("Resource") or {}
        body = next(iter(resource.values()), {}) if resource else {}
        if not isinstance(body, dict):
            continue
        if "Table" in resource and (body.get("Name") == table or "TableWildcard" in body):
            found.append(entry)
        elif "TableWithColumns" in resource and body.get("Name") == table:
            found.append(entry)
        elif "DataCellsFilter" in resource and body.get("TableName") == table:
            found.append(entry)
        elif "LFTagPolicy" in resource or ("Database" in resource and body.get("Name") == database):
            found.append(entry)
    return found


def _filter_spec(run: GrantRun, name: str) -> dict:
    return next((f for f in run.filters if f.get("Name") == name), {})


def _row_filter(spec: dict) -> str | None:
    """The row filter expression of a TableData (None: all rows)."""
    expression = (spec.get("RowFilter") or {}).get("FilterExpression")
    return expression or None


def _all_rows_entries(run: GrantRun, lake: Lake) -> list[dict]:
    """Entries that give the analyst every row of orders."""
    out = []
    for entry in _covering(run.grants, "orders", lake.database):
        resource = entry["Resource"]
        if "DataCellsFilter" in resource:
            if _row_filter(_filter_spec(run, resource["DataCellsFilter"].get("Name"))) is None:
                out.append(entry)
        elif "SELECT" in (entry.get("Permissions") or []) or "ALL" in (entry.get("Permissions") or []):
            out.append(entry)
    return out


def _regions(counts: dict) -> str:
    return ", ".join(f"{r} {n:,}" for r, n in sorted(counts.items())) or "no rows"


def _column_in_reason(reason: str) -> str | None:
    import re
    found = re.search(r"Column '([^']+)' cannot be resolved", reason or "")
    return found.group(1) if found else None


def _differs(got, want) -> str | None:
    """None when the two frames hold the same answer; else the first difference, in words."""
    import pandas as pd

    if list(got.columns) != list(want.columns):
        return f"columns {list(got.columns)}, expected {list(want.columns)}"
    if len(got) != len(want):
        return f"{_n(len(got), 'row')}, pandas {len(want):,}"
    try:
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False,
                                      atol=0.011, rtol=0)
    except AssertionError:
        for i in range(len(want)):
            a, b = got.iloc[i].tolist(), want.iloc[i].tolist()
            same = all((abs(float(x) - float(y)) <= 0.011) if isinstance(y, (int, float)) and not isinstance(y, bool)
                       else str(x) == str(y) for x, y in zip(a, b))
            if not same:
                return f"row {i + 1} is {a}, pandas {b}"
        return "the values differ"
    return None


def diagnose_grants(run: GrantRun, lake: Lake = LAKE) -> None:
    """Raise :class:`LabCheckFailed` naming the first over-grant or under-grant measured; return if all is well."""
    if run.error:
        raise LabCheckFailed(f"{run.error}. The check revoked everything again; fix and run the cell again.")
    if run.admin:
        raise LabCheckFailed("the analyst is a data lake administrator (DataLakeAdmins): it reads every column of "
                             "every table. Remove it from the data lake settings; grant it what it needs instead.")

    # ---------------- over-grants: what the analyst read and should not have
    non_eu = {r: n for r, n in run.rows_by_region.items() if r not in EU_REGIONS}
    if non_eu:
        total = sum(non_eu.values())
        everything = _all_rows_entries(run, lake)
        filtered = [f for f in run.filters if f.get("TableName") == "orders" and _row_filter(f)]
        if everything and filtered:
            cause = (f"Your grant {describe(everything[0])} gives every row: the analyst's grants on one table add "
                     "up (it gets the union of what each grant allows), so a row filter elsewhere restricts "
                     "nothing. Grant SELECT on a data cells filter with the EU row filter, and nothing else on "
                     "orders.")
        elif everything:
            cause = (f"Your grant {describe(everything[0])} gives every row: only a data cells filter's row filter "
                     "restricts rows. Create one whose FilterExpression keeps the EU regions, and grant SELECT on "
                     "it instead.")
        else:
            expressions = [f"{f.get('Name')}: {_row_filter(f)!r}" for f in run.filters
                           if f.get("TableName") == "orders"]
            cause = (f"Your row filter ({'; '.join(expressions) or 'none'}) lets these rows through. The EU regions "
                     f"are {', '.join(EU_REGIONS)}: e.g. region LIKE 'EU-%'.")
        raise LabCheckFailed(f"the analyst read {_n(total, 'non-EU row')} of orders ({_regions(non_eu)}). {cause} "
                             f"({FILTERS_GUIDE})")
    if run.star_columns is not None and not run.rows_by_region and run.star_rows > len(eu_orders()):
        raise LabCheckFailed(f"the analyst read {run.star_rows:,} rows of orders; the EU has {len(eu_orders()):,}: "
                             "some grant gives rows outside the EU. The row filter must keep EU regions only.")
    pii = {c: n for c, n in run.pii_values.items() if n} or {c: n for c, n in run.pii_probes.items() if n is not None}
    if pii:
        reaching = _covering(run.grants, "orders", lake.database)
        names = ", ".join(pii)
        counted = ", ".join(f"{c} ({n:,} values)" for c, n in run.pii_values.items() if n) or names
        raise LabCheckFailed(
            f"SELECT * as the analyst returned {counted}: personal data none of the questions needs. "
            + (f"Your grant {describe(reaching[0])} includes {'them' if len(pii) > 1 else 'it'}. " if reaching else "")
            + "List only the columns the questions read (ColumnNames in the data cells filter), or exclude these "
              "(ColumnWildcard with ExcludedColumnNames).")
    for table, rows in run.other_tables.items():
        if rows is not None:
            reaching = _covering(run.grants, table, lake.database)
            raise LabCheckFailed(
                f"the analyst read {_n(rows, 'row')} of {table} ({', '.join(c for c, _ in TABLES[table])}): none of "
                "the three questions reads it. "
                + (f"Your grant {describe(reaching[0])} reaches it. " if reaching else "")
                + "Grant on orders only, by name (or by a data cells filter on orders).")
    seen = sorted(t for t in run.catalog if t != "orders")
    if seen:
        table = seen[0]
        reaching = _covering(run.grants, table, lake.database)
        columns = f"and its columns ({', '.join(run.catalog[table])})" if run.catalog[table] else "by name"
        raise LabCheckFailed(
            f"information_schema shows the analyst the table {table} {columns}: the analyst cannot read its "
            "rows, but may DESCRIBE it (see that it exists, and what it is called), which the questions do not "
            "need. "
            + (f"Your grant {describe(reaching[0])} gives that. " if reaching else "")
            + "Leave the other tables out of the grants entirely.")
    leaked = {uri: result for uri, result in run.s3.items() if result.endswith("bytes")}
    if leaked:
        uri, result = sorted(leaked.items())[0]
        raise LabCheckFailed(f"the analyst read {uri} straight from S3 ({result}): every row and column, around "
                             "Lake Formation. Its IAM policies must not allow s3:GetObject on the lake's bucket; "
                             "the engines read registered data for it.")
    if run.star_columns is not None:
        extra = [c for c in run.star_columns if c not in NEEDED]
        if extra:
            why = (" customer_id links each order to a person in customers: pseudonymous personal data."
                   if "customer_id" in extra else "")
            raise LabCheckFailed(
                f"the analyst can read {', '.join(extra)}, which none of the three questions reads (they read "
                f"{', '.join(NEEDED)}).{why} Least privilege: list exactly those columns.")
    if run.permissions or run.database_permissions:
        what = [f"{', '.join(p)} on {t}" for t, p in run.permissions.items()]
        if run.database_permissions:
            what.append(f"{', '.join(run.database_permissions)} on database {lake.database}")
        raise LabCheckFailed(
            f"the analyst holds {'; '.join(what)}. It only reads: ALTER would let it change a table's schema, DROP "
            "delete it, INSERT and DELETE change its data, CREATE_TABLE add tables. Grant SELECT only.")
    if run.location_access:
        raise LabCheckFailed("the analyst holds DATA_LOCATION_ACCESS on the lake's location: that lets it create "
                             "tables over the data there, which the questions do not need (it reads nothing by "
                             "itself). Leave it out.")
    if run.grant_option:
        raise LabCheckFailed(f"the analyst holds {run.grant_option[0]} with the grant option "
                             "(PermissionsWithGrantOption): it could grant the same to anyone. Leave it out.")

    # ---------------- under-grants: what the questions could not get
    expected = expected_answers()
    for name, answer in run.answers.items():
        if answer.frame is not None:
            continue
        reason = answer.reason or ""
        column = _column_in_reason(reason)
        if column:
            raise LabCheckFailed(f"{name} failed: the analyst does not get the column {column} ({reason.split(':')[0]}"
                                 f"). The three questions read {', '.join(NEEDED)}.")
        if reason.startswith("TABLE_NOT_FOUND") or reason.startswith("SCHEMA_NOT_FOUND"):
            raise LabCheckFailed(f"{name} failed: the analyst cannot see the table orders at all ({reason}). No "
                                 "grant of yours reaches it: creating a data cells filter grants nothing; grant "
                                 "SELECT on it (Resource={'DataCellsFilter': {...}}).")
        raise LabCheckFailed(f"{name} failed for the analyst: {reason}")
    for name, answer in run.answers.items():
        problem = _differs(answer.frame, expected[name])
        if problem is None:
            continue
        missing = sorted(set(EU_REGIONS) - set(run.rows_by_region))
        if missing:
            eu = eu_orders()
            counts = {r: int((eu["region"] == r).sum()) for r in missing}
            raise LabCheckFailed(f"{name} differs from pandas ({problem}): the analyst gets no rows of "
                                 f"{_regions(counts)}. The row filter must keep every EU region "
                                 f"({', '.join(EU_REGIONS)}).")
        raise LabCheckFailed(f"{name} differs from pandas: {problem}. The analyst gets "
                             f"{_n(run.star_rows, 'row')} of orders; the EU has {len(eu_orders()):,}.")


def _outside(run: GrantRun) -> str:
    if not run.rows_by_region:
        return ""
    outside = sum(n for r, n in run.rows_by_region.items() if r not in EU_REGIONS)
    return f" ({outside:,} outside the EU)" if outside else " (EU only)"


def grants_summary(run: GrantRun):
    """What the analyst tried, what the check expected, what it got."""
    import pandas as pd

    expected = expected_answers()
    rows = []
    for name, answer in run.answers.items():
        if answer.frame is None:
            got = f"failed: {answer.reason.split(':')[0]}"
        else:
            same = _differs(answer.frame, expected[name]) is None
            got = f"{_n(len(answer.frame), 'row')}, {'equal to' if same else 'differs from'} pandas"
        rows.append({"attempt": name, "expected": "the answer", "got": got})
    eu = len(eu_orders())
    rows.append({"attempt": "SELECT * FROM orders", "expected": f"{len(NEEDED)} columns, {eu:,} EU rows",
                 "got": (f"failed: {(run.star_reason or '').split(':')[0]}" if run.star_columns is None else
                         f"{len(run.star_columns)} columns, {run.star_rows:,} rows" + _outside(run))})
    for column, rows_read in run.pii_probes.items():
        rows.append({"attempt": f"SELECT {column} FROM orders", "expected": "denied",
                     "got": "denied (COLUMN_NOT_FOUND)" if rows_read is None else f"{_n(rows_read, 'row')} read"})
    for table, rows_read in run.other_tables.items():
        reason = (run.other_reasons.get(table) or "").split(":")[0]
        rows.append({"attempt": f"SELECT * FROM {table}", "expected": "denied",
                     "got": f"denied ({reason})" if rows_read is None else f"{_n(rows_read, 'row')} read"})
    rows.append({"attempt": "information_schema: tables and columns", "expected": "orders: 6 columns",
                 "got": "; ".join(f"{t}: {len(c)} columns" for t, c in run.catalog.items()) or "nothing"})
    for uri, result in run.s3.items():
        rows.append({"attempt": f"GetObject {uri}", "expected": "AccessDenied", "got": result})
    return pd.DataFrame(rows).set_index("attempt")


def check_grants(stack, grants: list, filters: list, lake: Lake = LAKE):
    """Step 1: the analyst answers the three questions, and reads nothing more."""
    run = run_grants(stack, grants, filters, lake)
    diagnose_grants(run, lake)
    return grants_summary(run)


# ------------------------------------------------------------------ step 2: LF-Tags and the planner
@dataclass
class TableRead:
    """What one principal got from ``SELECT * FROM table``."""
    columns: list | None = None       # None: the query failed
    rows: int = 0
    reason: str | None = None


@dataclass
class TagRun:
    """What :func:`run_tags` measured."""
    error: str | None = None
    grants: list = field(default_factory=list)
    planner: dict = field(default_factory=dict)       # table -> TableRead (inventory, orders, customers, shipments)
    analyst: dict = field(default_factory=dict)       # table -> TableRead (inventory, shipments)
    tags: dict = field(default_factory=dict)          # "inventory" / "inventory.unit_cost" ... -> {key: value}
    shipment_tags: dict = field(default_factory=dict)  # what the check assigned to shipments
    permissions: list = field(default_factory=list)   # planner: permissions beyond SELECT/DESCRIBE
    grant_option: list = field(default_factory=list)


def _read(stack, table: str, lake: Lake, arn: str) -> TableRead:
    frame, stats = _athena(stack, f"SELECT * FROM {table}", lake, arn)
    if frame is None:
        return TableRead(None, 0, stats["reason"])
    return TableRead(list(frame.columns), len(frame))


def _tags_of(lf, database: str, table: str, columns=None) -> dict:
    """{"table": {key: value}, "<column>": {key: value}} in force (inherited) on a table and its columns."""
    found = lf.get_resource_lf_tags(Resource={"Table": {"DatabaseName": database, "Name": table}})
    out = {"table": {t["TagKey"]: t["TagValues"][0] for t in found.get("LFTagsOnTable", [])}}
    for column in found.get("LFTagsOnColumns", []):
        if columns is None or column["Name"] in columns:
            out[column["Name"]] = {t["TagKey"]: t["TagValues"][0] for t in column.get("LFTags", [])}
    return out


def untag(stack, lake: Lake = LAKE) -> None:
    """Remove every LF-Tag assigned to the lab's database, its tables and their columns."""
    lf = stack.client("lakeformation")
    policy = stack.context.lake
    database = {"Database": {"Name": lake.database}}
    own = lf.get_resource_lf_tags(Resource=database, ShowAssignedLFTags=True).get("LFTagOnDatabase") or []
    if own:
        lf.remove_lf_tags_from_resource(Resource=database, LFTags=own)
    for table in (*TABLES, "shipments"):
        if policy.catalog().table(lake.database, table) is None:
            continue
        resource = {"Table": {"DatabaseName": lake.database, "Name": table}}
        found = lf.get_resource_lf_tags(Resource=resource, ShowAssignedLFTags=True)
        if found.get("LFTagsOnTable"):
            lf.remove_lf_tags_from_resource(Resource=resource, LFTags=found["LFTagsOnTable"])
        for column in found.get("LFTagsOnColumns") or []:
            if column.get("LFTags"):
                lf.remove_lf_tags_from_resource(Resource={"TableWithColumns": {
                    "DatabaseName": lake.database, "Name": table, "ColumnNames": [column["Name"]]}},
                    LFTags=column["LFTags"])


def add_shipments(stack, lake: Lake = LAKE) -> dict:
    """Create the table ``shipments`` and tag it as ``inventory`` is tagged: the table's own tags, and
    each column's own tags for the columns both tables have. Grants nothing. Returns what was assigned."""
    lf, s3 = stack.client("lakeformation"), stack.client("s3")
    s3.put_object(Bucket=lake.bucket, Key="shipments/part-0.parquet", Body=_parquet(shipments()))
    _admin(stack, _ddl("shipments", SHIPMENT_COLUMNS, lake), lake)
    _keep_governed(stack, lake)
    own = lf.get_resource_lf_tags(Resource={"Table": {"DatabaseName": lake.database, "Name": "inventory"}},
                                  ShowAssignedLFTags=True)
    assigned = {}
    table_tags = [{"TagKey": t["TagKey"], "TagValues": t["TagValues"]} for t in own.get("LFTagsOnTable", [])]
    if table_tags:
        lf.add_lf_tags_to_resource(Resource={"Table": {"DatabaseName": lake.database, "Name": "shipments"}},
                                   LFTags=table_tags)
        assigned["shipments"] = {t["TagKey"]: t["TagValues"][0] for t in table_tags}
    names = {name for name, _ in SHIPMENT_COLUMNS}
    for column in own.get("LFTagsOnColumns", []):
        tags = [{"TagKey": t["TagKey"], "TagValues": t["TagValues"]} for t in column.get("LFTags", [])]
        if column["Name"] in names and tags:
            lf.add_lf_tags_to_resource(Resource={"TableWithColumns": {
                "DatabaseName": lake.database, "Name": "shipments", "ColumnNames": [column["Name"]]}}, LFTags=tags)
            assigned[f"shipments.{column['Name']}"] = {t["TagKey"]: t["TagValues"][0] for t in tags}
    return assigned


def run_tags(stack, lf_tags: dict, assignments: list, grants: list, lake: Lake = LAKE) -> TagRun:
    """Reset, create and assign the learner's LF-Tags, grant the planner, measure; add shipments, measure again."""
    _check_grants(grants, "PLANNER_GRANTS")
    run = TagRun(grants=list(grants))
    lf = stack.client("lakeformation")
    planner, analyst = user_arn(stack, lake.planner), user_arn(stack, lake.analyst)
    check(isinstance(lf_tags, dict) and lf_tags and all(isinstance(v, (list, tuple)) and v for v in lf_tags.values()),
          f"LF_TAGS must be a dict {{tag key: [its values]}}; got {lf_tags!r:.80}.")
    check(isinstance(assignments, (list, tuple)) and all(isinstance(a, dict) for a in assignments),
          "TAG_ASSIGNMENTS must be a list of dicts (AddLFTagsToResource arguments: Resource, LFTags).")
    revoke_everything(stack, planner)
    untag(stack, lake)
    for key in lf_tags:                      # deleting a key drops its assignments and the grants on it
        try:
            lf.delete_lf_tag(TagKey=key)
        except lf.exceptions.EntityNotFoundException:
            pass
    _admin(stack, "DROP TABLE IF EXISTS shipments", lake)
    for key, values in lf_tags.items():
        try:
            lf.create_lf_tag(TagKey=key, TagValues=list(values))
        except Exception as exc:
            run.error = f"CreateLFTag {key!r}: {_error(exc)}"
            return run
    for number, assignment in enumerate(assignments, 1):
        try:
            failures = lf.add_lf_tags_to_resource(**assignment).get("Failures") or []
        except Exception as exc:
            run.error = f"TAG_ASSIGNMENTS entry {number} (AddLFTagsToResource): {_error(exc)}"
            return run
        if failures:
            bad = failures[0]
            run.error = (f"TAG_ASSIGNMENTS entry {number}: {bad['Error']['ErrorCode']}: "
                         f"{bad['Error']['ErrorMessage']}")
            return run
    run.error = _apply_grants(stack, run.grants, planner, "PLANNER_GRANTS")
    if run.error:
        return run
    for table in ("inventory", "orders", "customers"):
        run.planner[table] = _read(stack, table, lake, planner)
        tags = _tags_of(lf, lake.database, table)
        run.tags[table] = tags["table"]
        for column, found in tags.items():
            if column != "table":
                run.tags[f"{table}.{column}"] = found
    run.analyst["inventory"] = _read(stack, "inventory", lake, analyst)
    run.shipment_tags = add_shipments(stack, lake)
    run.planner["shipments"] = _read(stack, "shipments", lake, planner)
    run.analyst["shipments"] = _read(stack, "shipments", lake, analyst)
    policy = stack.context.lake
    extra = set()
    for table in ("inventory", "shipments"):
        extra |= set(policy.table_access(planner, lake.database, table).permissions) - {"SELECT", "DESCRIBE"}
    run.permissions = sorted(extra)
    run.grant_option = [describe(e) for e in _permissions_of(stack, planner) if e.get("PermissionsWithGrantOption")]
    return run


def _expressions(grants: list) -> list[str]:
    return [describe(g) for g in grants if "LFTagPolicy" in (g.get("Resource") or {})]


def _tags_text(tags: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "no tags"


def diagnose_tags(run: TagRun) -> None:
    """Raise :class:`LabCheckFailed` naming the first thing the planner got wrong; return if all is well."""
    if run.error:
        raise LabCheckFailed(f"{run.error}. The check deleted your LF-Tag keys again; fix and run the cell again.")
    expressions = _expressions(run.grants) or ["no LF-Tag expression"]
    for table, truth in (("orders", orders()), ("customers", customers())):
        read = run.planner[table]
        if read.columns is not None:
            raise LabCheckFailed(
                f"the planner read {_n(read.rows, 'row')} of {table} ({', '.join(read.columns)}), which is not "
                f"supply data. {table} is tagged {_tags_text(run.tags.get(table, {}))} (tags assigned to the "
                f"database are inherited by its tables and columns); your grants: {'; '.join(expressions)}. Tag "
                "the supply tables, not the database, or make the expression tell them apart.")
    inventory_read = run.planner["inventory"]
    if inventory_read.columns is None:
        raise LabCheckFailed(
            f"the planner cannot read inventory ({inventory_read.reason}). inventory is tagged "
            f"{_tags_text(run.tags.get('inventory', {}))}; your grants: {'; '.join(expressions)}. A tag-based SELECT "
            "covers a table's columns whose tags (their own, else the table's, else the database's) match every "
            "key of the expression.")
    leaked = [c for c in CONFIDENTIAL if c in inventory_read.columns]
    if leaked:
        tags = "; ".join(f"{c}: {_tags_text(run.tags.get(f'inventory.{c}', {}))}" for c in leaked)
        raise LabCheckFailed(
            f"the planner read {', '.join(leaked)} of inventory ({_n(inventory_read.rows, 'row')}): confidential. "
            f"Their tags ({tags}) match your grant ({'; '.join(expressions)}). Tag these columns with a value "
            "(e.g. sensitivity=confidential) that the expression does not include.")
    wanted = [name for name, _ in INVENTORY_COLUMNS if name not in CONFIDENTIAL]
    missing = [c for c in wanted if c not in inventory_read.columns]
    if missing:
        tags = "; ".join(f"{c}: {_tags_text(run.tags.get(f'inventory.{c}', {}))}" for c in missing)
        raise LabCheckFailed(f"the planner does not get {', '.join(missing)} of inventory; their tags ({tags}) match "
                             f"none of your grants ({'; '.join(expressions)}).")
    for table in ("inventory", "shipments"):
        read = run.analyst[table]
        if read.columns is not None:
            raise LabCheckFailed(f"the analyst read {_n(read.rows, 'row')} of {table}: a grant of this step reached "
                                 "the analyst too. Step 2 grants to the planner only.")
    shipments_read = run.planner["shipments"]
    named = [describe(g) for g in run.grants if "LFTagPolicy" not in (g.get("Resource") or {})]
    if shipments_read.columns is None:
        if named:
            raise LabCheckFailed(
                f"the planner cannot read shipments, a new table tagged exactly like inventory "
                f"({_tags_text(run.shipment_tags.get('shipments', {}))}): your grants name resources "
                f"({'; '.join(named)}), so every new table needs a new grant. Grant SELECT on an LF-Tag "
                "expression instead (Resource={'LFTagPolicy': {'ResourceType': 'TABLE', 'Expression': [...]}}).")
        raise LabCheckFailed(
            f"the planner cannot read shipments ({shipments_read.reason}). The check tagged it like inventory: "
            f"{_tags_text(run.shipment_tags.get('shipments', {}))} on the table; for the columns, only tags you "
            "assigned to inventory's columns that shipments also has. Tag the table itself (not only its columns) "
            "so that a new table needs only its table tags and its sensitive columns' tags.")
    leaked = [c for c in CONFIDENTIAL if c in shipments_read.columns]
    if leaked:
        raise LabCheckFailed(f"the planner read {', '.join(leaked)} of shipments ({_n(shipments_read.rows, 'row')}). "
                             "Tag the confidential columns of inventory so that the check copies their tags to "
                             "the same columns of shipments.")
    if run.permissions:
        raise LabCheckFailed(f"the planner holds {', '.join(run.permissions)} on the supply tables: it only reads. "
                             "Grant SELECT only (and DESCRIBE, if you like).")
    if run.grant_option:
        raise LabCheckFailed(f"the planner holds {run.grant_option[0]} with the grant option: it could grant the same "
                             "to anyone. Leave PermissionsWithGrantOption out.")


def tags_summary(run: TagRun):
    """Who read what, with the tags in force."""
    import pandas as pd

    rows = []
    for who, reads in (("planner", run.planner), ("analyst", run.analyst)):
        for table, read in reads.items():
            rows.append({"who": who, "table": table,
                         "columns read": ", ".join(read.columns) if read.columns is not None else "denied",
                         "rows": read.rows})
    return pd.DataFrame(rows).set_index(["who", "table"])


def check_tags(stack, lf_tags: dict, assignments: list, grants: list, lake: Lake = LAKE):
    """Step 2: the planner reads inventory minus its confidential columns, nothing else, and a new table
    tagged the same way without a new grant."""
    run = run_tags(stack, lf_tags, assignments, grants, lake)
    diagnose_tags(run)
    return tags_summary(run)


# ------------------------------------------------------------------ step 3: a written answer
#: The ideas the answer needs, each as words one of which must appear (lower case).
ANSWER_IDEAS = {
    "the raw S3 objects hold every row and column: reading them bypasses Lake Formation's filtering":
        ("s3",),
    "the filtering happens in the integrated engine (Athena...), which reads the data for the caller":
        ("athena", "engine"),
    "an LF-Tag expression matches resources by their tags, so a new table tagged the same way is covered":
        ("tag",),
    "named-resource grants must be repeated for every new table (they do not scale)":
        ("new table", "every table", "each table", "each new", "scale", "grant per"),
}
MIN_WORDS = 50


def check_answer(answer: str) -> None:
    """Step 3, graded lightly: long enough, and touching each idea of :data:`ANSWER_IDEAS`."""
    check_written_answer(answer, ANSWER_IDEAS, MIN_WORDS)
