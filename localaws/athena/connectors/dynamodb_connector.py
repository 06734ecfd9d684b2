"""An Athena data source connector for DynamoDB, run as a Lambda function.

Tables of the catalog are the DynamoDB tables of the account, in the schema
``default`` (as in AWS's DynamoDB connector). DynamoDB has no schema, so
GetTable infers one from a sample of items: key attributes first, then the
others by name; ``S`` -> varchar, ``N`` -> bigint (or double when a sampled
value has a fraction), ``BOOL`` -> boolean.

ReadRecords reads only the requested attributes (``ProjectionExpression``).
An equality on the partition key becomes a ``Query`` (only that key's items
are read); other constraints become a ``FilterExpression`` of a ``Scan``.
boto3 finds the endpoint in ``AWS_ENDPOINT_URL``, which the runtime sets.
"""
import decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key

SAMPLE = 100
CONDITIONS = {"=": "eq", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def log(message):
    print(f"[connector] {message}")


def plain(value):
    """DynamoDB numbers come back as Decimal: make them JSON numbers."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def dynamo_value(value):
    """boto3 refuses Python floats: DynamoDB numbers are decimals."""
    return decimal.Decimal(str(value)) if isinstance(value, float) else value


def lambda_handler(event, context):
    kind = event.get("@type")
    dynamodb = boto3.resource("dynamodb")
    if kind == "PingRequest":
        return {"@type": "PingResponse", "catalogName": event.get("catalogName"), "sourceType": "ddb"}
    if kind == "ListSchemasRequest":
        return {"@type": "ListSchemasResponse", "schemas": ["default"]}
    if kind == "ListTablesRequest":
        names = sorted(t.name for t in dynamodb.tables.all())
        return {"@type": "ListTablesResponse",
                "tables": [{"schemaName": "default", "tableName": n} for n in names]}
    name = event["tableName"]
    if name["schemaName"] != "default":
        raise ValueError(f"Schema '{name['schemaName']}' not found: DynamoDB tables are in 'default'")
    table = dynamodb.Table(name["tableName"])
    if kind == "GetTableRequest":
        return get_table(event, table)
    if kind == "ReadRecordsRequest":
        return read_records(event, table)
    raise ValueError(f"Unknown request type {kind!r}")


def get_table(event, table):
    keys = [k["AttributeName"] for k in table.key_schema]   # raises if the table does not exist
    types = {}
    for item in table.scan(Limit=SAMPLE)["Items"]:
        for attr, value in item.items():
            if isinstance(value, bool):
                kind = "boolean"
            elif isinstance(value, decimal.Decimal):
                kind = "bigint" if value == value.to_integral_value() else "double"
            else:
                kind = "varchar"
            seen = types.get(attr.lower())
            if seen and seen != kind:
                kind = "double" if {seen, kind} == {"bigint", "double"} else "varchar"
            types[attr.lower()] = kind
    order = [k.lower() for k in keys] + sorted(set(types) - {k.lower() for k in keys})
    log(f"GetTable default.{table.name}: {len(order)} columns inferred from a sample of items")
    return {"@type": "GetTableResponse", "catalogName": event.get("catalogName"),
            "tableName": event["tableName"],
            "schema": {"fields": [{"name": n, "type": types.get(n, "varchar")} for n in order]},
            "partitionColumns": []}


def read_records(event, table):
    columns = event["columns"]
    summary = (event.get("constraints") or {}).get("summary") or {}
    hash_key = next(k["AttributeName"] for k in table.key_schema if k["KeyType"] == "HASH")
    names = {f"#c{i}": c for i, c in enumerate(columns)}
    args = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    key_value = next((c["value"] for c in summary.get(hash_key.lower(), []) if c["op"] == "="), None)
    filters = [getattr(Attr(col), CONDITIONS[c["op"]])(dynamo_value(c["value"]))
               for col, conds in summary.items() for c in conds
               if not (col == hash_key.lower() and c["op"] == "=")]
    if filters:
        condition = filters[0]
        for f in filters[1:]:
            condition = condition & f
        args["FilterExpression"] = condition
    if key_value is not None:
        args["KeyConditionExpression"] = Key(hash_key).eq(dynamo_value(key_value))
        call, how = table.query, f"Query {hash_key} = {key_value!r}"
    else:
        call, how = table.scan, "Scan"
    items, pages = [], 0
    while True:
        page = call(**args)
        pages += 1
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    filtered = f" with filter on {', '.join(sorted(summary))}" if filters else ""
    log(f"ReadRecords default.{table.name}: {how}{filtered}, columns {columns} -> {len(items)} items")
    return {"@type": "ReadRecordsResponse", "catalogName": event.get("catalogName"),
            "records": {"rowCount": len(items),
                        "columns": {c: [plain(item.get(c)) for item in items] for c in columns}}}
