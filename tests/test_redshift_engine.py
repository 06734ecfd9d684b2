"""The Redshift warehouse engine: slices, distribution, sort keys, system views, EXPLAIN.

The differential test runs the same queries on warehouses of several node
counts and DISTSTYLEs and on one plain DuckDB holding the same rows: the
results must be identical, whatever slice each row landed on.
"""
import random

import duckdb
import pytest

from localaws.redshift.engine import Warehouse
from localaws.redshift.errors import SQLError

CARRIERS = ["AA", "UA", "DL", "B6", "WN", "AS", "NK", "F9"]


def flight_rows(n=1500, seed=7):
    """Seeded flights: a skewed carrier (half are AA), NULL delays, dates over a quarter."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        carrier = "AA" if rng.random() < 0.5 else rng.choice(CARRIERS)
        delay = None if rng.random() < 0.1 else rng.randint(-20, 300)
        day = f"2024-{rng.randint(1, 3):02d}-{rng.randint(1, 28):02d}"
        rows.append((i, carrier, rng.choice(["JFK", "LGA", "EWR"]), delay, day, rng.randint(100, 2500)))
    return rows


AIRLINES = [(c, f"{c} Airlines") for c in CARRIERS[:-1]]          # F9 has no name: outer joins show NULLs


def sql_values(rows) -> str:
    def literal(v):
        return "NULL" if v is None else (str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'")
    return ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


FLIGHTS_COLUMNS = "(id INTEGER, carrier VARCHAR(2), origin CHAR(3), dep_delay INTEGER, day DATE, distance INTEGER)"
AIRLINES_COLUMNS = "(carrier VARCHAR(2), name VARCHAR(40))"

#: (nodes, node type, flights DDL suffix, airlines DDL suffix)
CONFIGS = {
    "1node-key": (1, "ra3.xlplus", "DISTKEY(carrier) SORTKEY(day)", "DISTKEY(carrier)"),
    "2node-even": (2, "ra3.xlplus", "DISTSTYLE EVEN SORTKEY(day, carrier)", "DISTSTYLE ALL"),
    "3node-origin": (3, "ra3.4xlarge", "DISTSTYLE KEY DISTKEY(origin)", "DISTSTYLE EVEN"),
    "2node-auto": (2, "ra3.xlplus", "", "DISTSTYLE ALL"),
}


@pytest.fixture(scope="module")
def reference():
    db = duckdb.connect()
    db.execute(f"CREATE TABLE flights {FLIGHTS_COLUMNS}")
    db.execute(f"INSERT INTO flights VALUES {sql_values(flight_rows())}")
    db.execute(f"CREATE TABLE airlines {AIRLINES_COLUMNS}")
    db.execute(f"INSERT INTO airlines VALUES {sql_values(AIRLINES)}")
    yield db
    db.close()


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def warehouse(request, tmp_path_factory):
    nodes, node_type, flights_ddl, airlines_ddl = CONFIGS[request.param]
    wh = Warehouse(f"c-{request.param}", "dev", "awsuser", "Secret123", tmp_path_factory.mktemp("rs"),
                   node_type=node_type, number_of_nodes=nodes)
    wh.execute(f"CREATE TABLE flights {FLIGHTS_COLUMNS} {flights_ddl}")
    rows = flight_rows()
    for start in range(0, len(rows), 500):                  # several inserts: several unsorted batches
        wh.execute(f"INSERT INTO flights VALUES {sql_values(rows[start:start + 500])}")
    wh.execute(f"CREATE TABLE airlines {AIRLINES_COLUMNS} {airlines_ddl}")
    wh.execute(f"INSERT INTO airlines SELECT * FROM (VALUES {sql_values(AIRLINES)}) AS v(c, n)")
    yield wh
    wh.close()


QUERIES = [
    "SELECT count(*) FROM flights",
    "SELECT count(*), count(dep_delay), sum(dep_delay), min(day), max(day) FROM flights",
    "SELECT carrier, count(*) FROM flights GROUP BY carrier ORDER BY carrier",
    "SELECT carrier, avg(dep_delay)::DECIMAL(10,4) FROM flights GROUP BY carrier ORDER BY 1",
    "SELECT origin, carrier, count(*), max(distance) FROM flights GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT DISTINCT origin FROM flights ORDER BY 1",
    "SELECT count(DISTINCT carrier), count(DISTINCT day) FROM flights",
    "SELECT id, dep_delay FROM flights ORDER BY dep_delay DESC NULLS LAST, id LIMIT 10",
    "SELECT id FROM flights ORDER BY id LIMIT 5 OFFSET 100",
    "SELECT count(*) FROM flights WHERE dep_delay IS NULL",
    "SELECT carrier, count(*) FROM flights WHERE dep_delay IS NULL GROUP BY carrier ORDER BY 1",
    "SELECT coalesce(dep_delay, -1) AS d, count(*) FROM flights GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
    "SELECT count(*) FROM flights WHERE day BETWEEN '2024-02-01' AND '2024-02-07'",
    "SELECT day, count(*) FROM flights WHERE day < '2024-01-05' GROUP BY day ORDER BY day",
    # joins on the distribution key (carrier) and off it
    "SELECT a.name, count(*) FROM flights f JOIN airlines a ON f.carrier = a.carrier GROUP BY a.name ORDER BY 1",
    "SELECT f.carrier, a.name, count(*) FROM flights f LEFT JOIN airlines a ON f.carrier = a.carrier "
    "GROUP BY 1, 2 ORDER BY 1",
    "SELECT count(*) FROM flights f JOIN airlines a ON f.carrier = a.carrier WHERE f.origin = 'JFK'",
    "SELECT f1.origin, count(*) FROM flights f1 JOIN flights f2 ON f1.id = f2.id + 1 GROUP BY 1 ORDER BY 1",
    "SELECT count(*) FROM flights f1 JOIN flights f2 ON f1.day = f2.day AND f1.carrier = f2.carrier "
    "WHERE f1.id < 200",
    "SELECT a.carrier FROM airlines a WHERE NOT EXISTS (SELECT 1 FROM flights f WHERE f.carrier = a.carrier) "
    "ORDER BY 1",
    "SELECT carrier FROM flights WHERE id IN (SELECT max(id) FROM flights GROUP BY origin) ORDER BY 1",
    # window functions
    "SELECT id, row_number() OVER (PARTITION BY carrier ORDER BY id) FROM flights ORDER BY id LIMIT 30",
    "SELECT id, sum(distance) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM flights "
    "ORDER BY id LIMIT 30",
    "SELECT carrier, day, rank() OVER (PARTITION BY carrier ORDER BY day) FROM flights "
    "WHERE id < 300 ORDER BY carrier, day, 3",
    "SELECT id, lag(dep_delay) OVER (ORDER BY id) FROM flights ORDER BY id LIMIT 20",
    "SELECT carrier, count(*) * 100.0 / sum(count(*)) OVER () FROM flights GROUP BY carrier ORDER BY 1",
    # set operations, CTEs, HAVING, CASE
    "SELECT origin FROM flights WHERE carrier = 'AA' UNION SELECT origin FROM flights WHERE carrier = 'F9' "
    "ORDER BY 1",
    "WITH d AS (SELECT carrier, avg(distance) AS dist FROM flights GROUP BY carrier) "
    "SELECT count(*) FROM d WHERE dist > 1000",
    "SELECT carrier FROM flights GROUP BY carrier HAVING count(*) > 100 ORDER BY 1",
    "SELECT CASE WHEN dep_delay > 60 THEN 'late' WHEN dep_delay IS NULL THEN 'unknown' ELSE 'ok' END, "
    "count(*) FROM flights GROUP BY 1 ORDER BY 1",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY distance) FROM flights",
    "SELECT nvl(dep_delay, 0) FROM flights ORDER BY id LIMIT 10",
]


def as_set(rows):
    return sorted(rows, key=repr)


@pytest.mark.parametrize("query", QUERIES)
def test_same_results_as_one_duckdb(warehouse, reference, query):
    """Each query gives exactly the rows of one DuckDB with the same data."""
    import sqlglot

    got = warehouse.execute(query).rows
    want = reference.execute(sqlglot.transpile(query, read="redshift", write="duckdb")[0]).fetchall()
    if "ORDER BY" in query.upper().split(")")[-1]:
        assert got == want
    else:
        assert as_set(got) == as_set(want)


def test_rows_per_slice_sum_to_the_total(warehouse):
    """Every row is on exactly one slice (ALL: one whole copy per node)."""
    per_slice = dict(warehouse.execute(
        "SELECT slice, rows FROM stv_tbl_perm WHERE name = 'flights' ORDER BY slice").rows)
    assert len(per_slice) == warehouse.slices
    assert sum(per_slice.values()) == 1500
    assert [r[0] for r in warehouse.execute("SELECT count(*) FROM stv_slices").rows] == [warehouse.slices]
    copies = warehouse.execute("SELECT slice, rows FROM stv_tbl_perm WHERE name = 'airlines'").rows
    if "ALL" in warehouse.execute("SELECT diststyle FROM svv_table_info WHERE \"table\" = 'airlines'").rows[0]:
        assert len(copies) == warehouse.number_of_nodes and {r[1] for r in copies} == {len(AIRLINES)}


@pytest.fixture()
def small(tmp_path):
    wh = Warehouse("small", "dev", "awsuser", "Secret123", tmp_path, number_of_nodes=2)   # 4 slices
    yield wh
    wh.close()


def test_skew_rows_of_a_bad_distkey(small):
    """A DISTKEY with one dominant value piles rows on one slice; EVEN spreads them."""
    small.execute("CREATE TABLE bad (k INT, v INT) DISTKEY(k)")
    small.execute("INSERT INTO bad SELECT CASE WHEN i % 10 = 0 THEN i ELSE 1 END, i FROM range(4000) t(i)")
    small.execute("CREATE TABLE good (k INT, v INT) DISTSTYLE EVEN")
    small.execute("INSERT INTO good SELECT 1, i FROM range(4000) t(i)")
    info = dict(small.execute('SELECT "table", skew_rows FROM SVV_TABLE_INFO').rows)
    counts = [r[0] for r in small.execute("SELECT rows FROM stv_tbl_perm WHERE name = 'bad'").rows]
    assert info["bad"] == round(max(counts) / max(min(counts), 1), 2) and info["bad"] > 10
    assert info["good"] == 1.0
    diststyles = dict(small.execute('select "table", diststyle from svv_table_info').rows)
    assert diststyles == {"bad": "KEY(k)", "good": "EVEN"}


def test_unsorted_region_and_vacuum_read_fewer_blocks(small):
    """Inserted rows are unsorted until VACUUM; then a one-day filter reads one block per slice."""
    small.execute("CREATE TABLE events (id BIGINT, day DATE ENCODE az64) DISTSTYLE EVEN COMPOUND SORTKEY(day)")
    small.execute("INSERT INTO events SELECT i, DATE '2024-01-01' + CAST(i * 7919 % 365 AS INT) "
                  "FROM range(200000) t(i)")
    assert small.execute('SELECT unsorted, sortkey1 FROM svv_table_info').rows == [(100.0, "day")]
    query = "SELECT count(*) FROM events WHERE day = '2024-06-01'"
    before = small.execute(query).rows
    unsorted_blocks = sum(s.blocks_read for s in small.last_query_stats)
    assert small.execute("VACUUM events").command == "VACUUM"
    assert small.execute(query).rows == before
    sorted_blocks = sum(s.blocks_read for s in small.last_query_stats)
    assert small.execute('SELECT unsorted FROM svv_table_info').rows == [(0.0,)]
    assert sorted_blocks <= small.slices and unsorted_blocks >= 5 * sorted_blocks
    scans = small.execute("SELECT slice, blocks_read, blocks_total, is_rrscan FROM stl_scan "
                          "WHERE query = (SELECT max(query) FROM stl_scan)").rows
    assert sum(r[1] for r in scans) == sorted_blocks and {r[3] for r in scans} == {"t"}
    small.execute("INSERT INTO events SELECT i, DATE '2024-01-01' FROM range(2020) t(i)")   # 1% more rows
    assert small.execute('SELECT unsorted FROM svv_table_info').rows == [(1.0,)]


def plan(wh, sql):
    return "\n".join(r[0] for r in wh.execute("EXPLAIN " + sql).rows)


def test_explain_names_the_distribution_steps(small):
    small.execute("CREATE TABLE sales (listid INT DISTKEY, buyer INT, price DECIMAL(8,2))")
    small.execute("CREATE TABLE listing (listid INT, seller INT) DISTKEY(listid)")
    small.execute("CREATE TABLE users (userid INT, name VARCHAR) DISTSTYLE EVEN")
    small.execute("CREATE TABLE cat (listid INT, name VARCHAR) DISTSTYLE ALL")
    small.execute("INSERT INTO sales SELECT i % 100, i % 50, i FROM range(1000) t(i)")
    small.execute("INSERT INTO users SELECT i, 'u' || i FROM range(50) t(i)")
    assert "DS_DIST_NONE" in plan(small, "SELECT * FROM sales s JOIN listing l ON s.listid = l.listid")
    assert "DS_DIST_ALL_NONE" in plan(small, "SELECT * FROM sales s JOIN cat c ON s.listid = c.listid")
    assert "DS_DIST_INNER" in plan(small, "SELECT * FROM sales s JOIN users u ON s.listid = u.userid")
    assert "DS_BCAST_INNER" in plan(small, "SELECT * FROM sales s JOIN users u ON s.buyer = u.userid")
    assert "DS_DIST_BOTH" in plan(small, "SELECT * FROM users u JOIN sales s ON s.buyer = u.userid")
    three = plan(small, "SELECT count(*) FROM sales s JOIN listing l ON s.listid = l.listid "
                        "JOIN cat c ON c.listid = l.listid")
    assert three.index("DS_DIST_ALL_NONE") < three.index("DS_DIST_NONE")
    result = small.execute("EXPLAIN SELECT 1")
    assert result.columns[0].name == "QUERY PLAN"
    assert small.execute("SELECT count(*) FROM sales").rows == [(1000,)]     # EXPLAIN ran nothing


def test_sqlstate_errors(small):
    small.execute("CREATE TABLE t (a INT) DISTKEY(a)")
    cases = {
        "SELECT * FROM missing": "42P01",
        "INSERT INTO missing VALUES (1)": "42P01",
        "DROP TABLE missing": "42P01",
        "SELEC 1": "42601",
        "SELECT nope FROM t": "42703",
        "CREATE TABLE u (a INT) DISTKEY(b)": "42703",
        "CREATE TABLE t (a INT)": "42P07",
        "INSERT INTO t VALUES ('x')": "22P02",
        "VACUUM missing": "42P01",
        "EXPLAIN SELECT nope FROM t": "42703",
    }
    for sql, code in cases.items():
        with pytest.raises(SQLError) as caught:
            small.execute(sql)
        assert caught.value.code == code, sql
    assert small.execute("SELECT count(*) FROM t").rows == [(0,)]       # nothing half-written


def test_writes_keep_every_slice_right(small):
    small.execute("CREATE TABLE w (id INT IDENTITY(1, 1), k INT DISTKEY, v VARCHAR(10) NOT NULL)")
    assert small.execute("INSERT INTO w (k, v) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (NULL, 'd')").rowcount == 4
    assert small.execute("SELECT id, k FROM w ORDER BY id").rows == [(1, 1), (2, 2), (3, 3), (4, None)]
    assert small.execute("UPDATE w SET k = k + 10 WHERE k < 3").rowcount == 2      # moves rows across slices
    keyed = small.execute("SELECT slice, rows FROM stv_tbl_perm WHERE name = 'w'").rows
    assert sum(r[1] for r in keyed) == 4
    assert small.execute("SELECT k FROM w WHERE k IS NOT NULL ORDER BY k").rows == [(3,), (11,), (12,)]
    assert small.execute("DELETE FROM w WHERE v IN ('a', 'd')").rowcount == 2
    with pytest.raises(SQLError):
        small.execute("INSERT INTO w (k, v) VALUES (5, NULL)")                     # NOT NULL holds
    small.execute("CREATE TABLE w2 DISTSTYLE EVEN AS SELECT k, v FROM w")
    assert small.execute("SELECT count(*) FROM w2").rows == [(2,)]
    small.execute("TRUNCATE w")
    assert small.execute("SELECT count(*) FROM w").rows == [(0,)]
    small.execute("DROP TABLE w, w2")
    assert small.execute("SELECT count(*) FROM svv_tables").rows == [(0,)]


def test_catalog_views_for_the_driver_and_history(small):
    """redshift_connector's get_tables()/get_columns() read svv_tables/svv_columns."""
    small.execute("CREATE TABLE t (a INT, b VARCHAR(20), c DECIMAL(10,2), d DATE) DISTSTYLE EVEN")
    small.execute("CREATE VIEW v AS SELECT a FROM t")
    assert sorted(small.execute("SELECT table_name, table_type FROM svv_tables").rows) == [
        ("t", "BASE TABLE"), ("v", "VIEW")]
    columns = small.execute("SELECT column_name, data_type, ordinal_position FROM svv_columns "
                            "WHERE table_name = 't' ORDER BY ordinal_position").rows
    assert columns == [("a", "integer", 1), ("b", "character varying", 2), ("c", "numeric", 3), ("d", "date", 4)]
    history = small.execute("SELECT querytxt FROM stl_query ORDER BY query").rows
    assert history[-1][0].startswith("SELECT column_name")


def test_data_survives_a_restart(tmp_path):
    wh = Warehouse("keep", "dev", "awsuser", "Secret123", tmp_path, number_of_nodes=2)
    wh.execute("CREATE TABLE t (a INT, b DATE) DISTKEY(a) SORTKEY(b)")
    wh.execute("INSERT INTO t SELECT i, DATE '2024-01-01' + CAST(i AS INT) FROM range(100) r(i)")
    wh.close()
    again = Warehouse("keep", "dev", "awsuser", "Secret123", tmp_path, number_of_nodes=2)
    try:
        assert again.execute("SELECT count(*), sum(a) FROM t").rows == [(100, 4950)]
        assert again.execute('SELECT diststyle, tbl_rows FROM svv_table_info').rows == [("KEY(a)", 100)]
        assert again.execute("SELECT max(query) > 2 FROM stl_query").rows == [(True,)]
    finally:
        again.close()


def test_placeholders_without_spaces_and_unterminated_strings(tmp_path):
    """psycopg writes ``$1,$2``; sqlglot alone would read ``$1,$`` as a dollar-quoted string."""
    from localaws.redshift.engine import Warehouse
    from localaws.redshift.errors import SQLError

    w = Warehouse("ph", "dev", "awsuser", "Secret123", tmp_path)
    try:
        assert w.execute("SELECT $1::int + $2::int AS s, '$1,$2' AS text", [1, 2]).rows == [(3, "$1,$2")]
        with pytest.raises(SQLError) as refused:
            w.execute("SELECT 'abc")
        assert refused.value.code == "42601"
    finally:
        w.close()
