"""The cluster's endpoint: Redshift SQL over the PostgreSQL wire protocol (version 3).

Redshift began as a fork of PostgreSQL 8.0.2, and its clients still speak
PostgreSQL's protocol: AWS's driver ``redshift_connector``, psycopg, JDBC,
``psql``. A :class:`WireServer` listens on the cluster's port and runs each
statement on the cluster's :class:`~.engine.Warehouse`.

A conversation is a stream of *messages*: one type byte, an Int32 length
(which counts itself but not the type byte), then the body. Integers are
big-endian; strings end with a zero byte. What happens on one connection::

    client                                   server (this module)
    SSLRequest  ---------------------------> 'N' (no TLS here: clients pass ssl=False)
    StartupMessage(user, database, ...) ---> AuthenticationMD5Password(salt)
    PasswordMessage(md5 hash) -------------> AuthenticationOk, ParameterStatus x N,
                                             BackendKeyData(pid, secret), ReadyForQuery('I')
    Query("SELECT 1; SELECT 2") -----------> RowDescription, DataRow..., CommandComplete
                                             (per statement), ReadyForQuery
    Parse, Bind, Describe, Execute, Sync --> the *extended* protocol: ParseComplete,
                                             BindComplete, RowDescription | NoData,
                                             DataRow..., CommandComplete, ReadyForQuery
    Terminate -----------------------------> (the server closes the socket)

The *simple* protocol (``Query``) sends SQL text, possibly several statements.
The *extended* protocol splits the work: ``Parse`` names a statement with
``$1``-style placeholders, ``Bind`` gives it parameter values (a *portal*),
``Describe`` asks what columns it will return, ``Execute`` runs it (at most N
rows at a time; ``PortalSuspended`` says more remain) and ``Sync`` ends the
batch. After an error the server ignores everything up to the next ``Sync``,
so a client that sent five messages at once gets one error, not five.

Values travel as text by default (``t``/``f``, ``2024-01-31``, ``12.50``);
a client may ask for *binary* per column (``redshift_connector`` does for
integers, floats, booleans and timestamps) and may send binary parameters.

Transactions are the warehouse's (:class:`~.engine.Session`): each connection
has its own session, so ``BEGIN`` ... ``COMMIT`` / ``ROLLBACK`` work as on
Redshift, and every ReadyForQuery carries the session's transaction status:
``I`` idle (autocommit), ``T`` in a block, ``E`` in a failed block (statements
are refused with 25P02 until ROLLBACK). Drivers read that byte: psycopg and
``redshift_connector`` (both with autocommit off by default) send ``BEGIN``
before a statement when the status is ``I``. Several statements in one Query
message run as one transaction, as PostgreSQL does, unless the text holds
transaction control itself. A connection that closes inside a block rolls it
back.

What this stand-in simplifies (each is said where it happens):

- no TLS, md5 password authentication for the master user only;
- ``Describe`` of a prepared statement runs its query with ``LIMIT 0`` and
  NULL parameters to learn the columns (PostgreSQL plans it instead);
- a cancel request interrupts every statement running on the warehouse.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import re
import secrets
import socket
import struct
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import INTERNAL_ERROR, SYNTAX_ERROR, SQLError

log = logging.getLogger("localaws")

# -- protocol constants --------------------------------------------------------
PROTOCOL_3_0 = 196608           # 3 << 16: what every StartupMessage we accept carries
SSL_REQUEST = 80877103          # "may we talk TLS?" before the StartupMessage
GSSENC_REQUEST = 80877104       # "may we talk GSSAPI encryption?"
CANCEL_REQUEST = 80877102       # sent on a *new* connection: cancel what (pid, secret) runs

#: What the server reports after login (ParameterStatus). ``redshift_connector``
#: parses ``server_version`` with ``packaging.version``: Redshift reports 8.0.2.
SERVER_PARAMETERS = {
    "server_version": "8.0.2",
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "TimeZone": "UTC",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "is_superuser": "on",
}

#: Transaction status in ReadyForQuery: idle, in a transaction block, in a failed one.
IDLE, IN_TRANSACTION, FAILED = b"I", b"T", b"E"

INVALID_AUTHORIZATION = "28000"     # Redshift's code for a wrong password (PostgreSQL says 28P01)
INVALID_CATALOG_NAME = "3D000"
PROTOCOL_VIOLATION = "08P01"
INVALID_DATETIME = "22007"
INVALID_TEXT = "22P02"
FEATURE_NOT_SUPPORTED = "0A000"

# Type OIDs (PostgreSQL's pg_type ids, which Redshift reuses).
BOOL, INT8, INT2, INT4, TEXT, FLOAT4, FLOAT8, UNKNOWN = 16, 20, 21, 23, 25, 700, 701, 705
BPCHAR, VARCHAR, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, NUMERIC = 1042, 1043, 1082, 1083, 1114, 1184, 1700
NAME, CHAR = 19, 18
TEXT_LIKE = {TEXT, VARCHAR, BPCHAR, NAME, CHAR, UNKNOWN, 0}

#: Fixed sizes of types in RowDescription (-1: variable length).
TYPE_SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIME: 8,
              TIMESTAMP: 8, TIMESTAMPTZ: 8}

#: Binary formats count from PostgreSQL's epoch, 2000-01-01, in days or microseconds.
PG_EPOCH_DATE = dt.date(2000, 1, 1)
PG_EPOCH = dt.datetime(2000, 1, 1)
PG_EPOCH_UTC = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)

#: First words of statements that return rows (and change nothing).
ROW_RETURNING = {"SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "TABLE"}
TRANSACTION_CONTROL = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"}


# -- SQL text: splitting and classifying ------------------------------------------
DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_]\w*)?\$")


def skip_quoted(sql: str, i: int) -> int:
    """If a string literal, quoted name, dollar-quoted body or comment starts at ``i``,
    the index just past it; otherwise ``i`` itself."""
    c = sql[i]
    if c in "'\"":                                   # '' and "" inside escape the quote
        j = i + 1
        while j < len(sql):
            if sql[j] == c:
                if sql[j + 1:j + 2] != c:
                    return j + 1
                j += 1
            j += 1
        return len(sql)
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end + 1
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return len(sql) if end < 0 else end + 2
    if c == "$" and (m := DOLLAR_QUOTE.match(sql, i)):  # $$...$$ or $tag$...$tag$ (not $1)
        end = sql.find(m.group(0), m.end())
        return len(sql) if end < 0 else end + len(m.group(0))
    return i


def split_statements(sql: str) -> list[str]:
    """The statements of a Query message, split at semicolons outside quotes and comments;
    pieces holding only whitespace or comments are dropped."""
    pieces, start, i = [], 0, 0
    while i < len(sql):
        j = skip_quoted(sql, i)
        if j != i:
            i = j
        elif sql[i] == ";":
            pieces.append(sql[start:i])
            start = i = i + 1
        else:
            i += 1
    pieces.append(sql[start:])
    return [p for p in pieces if not only_comments(p)]


def only_comments(sql: str) -> bool:
    """Is ``sql`` nothing but whitespace and comments?"""
    i = 0
    while i < len(sql):
        if sql[i].isspace():
            i += 1
            continue
        j = skip_quoted(sql, i)
        if j == i or sql[i] in "'\"$":
            return False
        i = j
    return True


def first_word(sql: str) -> str:
    """The statement's first keyword, upper case, past comments and opening parentheses."""
    i = 0
    while i < len(sql) and (sql[i].isspace() or sql[i] == "(" or sql.startswith(("--", "/*"), i)):
        i = skip_quoted(sql, i) if sql.startswith(("--", "/*"), i) else i + 1
    m = re.match(r"[A-Za-z_]+", sql[i:])
    return m.group(0).upper() if m else ""


def parameter_count(sql: str) -> int:
    """The highest ``$n`` placeholder outside quotes and comments (0 if none)."""
    highest, i = 0, 0
    while i < len(sql):
        j = skip_quoted(sql, i)
        if j != i:
            i = j
            continue
        m = re.match(r"\$(\d+)", sql[i:i + 12])
        if m:
            highest = max(highest, int(m.group(1)))
            i += len(m.group(0))
        else:
            i += 1
    return highest


# -- values: Python <-> bytes on the wire -------------------------------------------
def text_value(value) -> bytes:
    """A value in PostgreSQL's text format: ``t``/``f``, ISO dates, ``Infinity``..."""
    if isinstance(value, bool):
        text = "t" if value else "f"
    elif isinstance(value, float):
        text = ("NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity") \
            if not math.isfinite(value) else repr(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
        if value.tzinfo is not None:                 # PostgreSQL writes +00, +05:30
            text = re.sub(r"([+-]\d\d):00$", r"\1", text)
    elif isinstance(value, (dt.date, dt.time)):
        text = value.isoformat()
    elif isinstance(value, dt.timedelta):
        seconds = value.seconds + value.microseconds / 1e6
        text = f"{value.days} days {int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:09.6f}"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        text = "\\x" + bytes(value).hex()
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text.encode()


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


#: Binary encoders per type OID (what a client gets when it asks for format 1).
BINARY_OUT = {
    BOOL: lambda v: b"\x01" if v else b"\x00",
    INT2: lambda v: struct.pack("!h", v),
    INT4: lambda v: struct.pack("!i", v),
    INT8: lambda v: struct.pack("!q", v),
    FLOAT4: lambda v: struct.pack("!f", v),
    FLOAT8: lambda v: struct.pack("!d", v),
    DATE: lambda v: struct.pack("!i", (v - PG_EPOCH_DATE).days),
    TIME: lambda v: struct.pack("!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond),
    TIMESTAMP: lambda v: struct.pack("!q", _micros(v.replace(tzinfo=None) - PG_EPOCH)),
    TIMESTAMPTZ: lambda v: struct.pack("!q", _micros(v - PG_EPOCH_UTC) if v.tzinfo else _micros(v - PG_EPOCH)),
}

#: Binary decoders per type OID for parameters a client sends in format 1.
BINARY_IN = {
    BOOL: lambda b: b != b"\x00",
    INT2: lambda b: struct.unpack("!h", b)[0],
    INT4: lambda b: struct.unpack("!i", b)[0],
    INT8: lambda b: struct.unpack("!q", b)[0],
    FLOAT4: lambda b: struct.unpack("!f", b)[0],
    FLOAT8: lambda b: struct.unpack("!d", b)[0],
    DATE: lambda b: PG_EPOCH_DATE + dt.timedelta(days=struct.unpack("!i", b)[0]),
    TIMESTAMP: lambda b: PG_EPOCH + dt.timedelta(microseconds=struct.unpack("!q", b)[0]),
    TIMESTAMPTZ: lambda b: PG_EPOCH_UTC + dt.timedelta(microseconds=struct.unpack("!q", b)[0]),
}

#: Text parameters of a declared type become Python values, so the warehouse sees
#: an int where the client sent an int. Untyped ones (OID 0 or 705 'unknown')
#: stay strings: the warehouse casts them to what the statement needs.
TEXT_IN = {
    BOOL: lambda s: s.lower() in ("t", "true", "1", "y", "yes", "on"),
    INT2: int, INT4: int, INT8: int, FLOAT4: float, FLOAT8: float, NUMERIC: Decimal,
    DATE: dt.date.fromisoformat, TIMESTAMP: dt.datetime.fromisoformat, TIMESTAMPTZ: dt.datetime.fromisoformat,
}


def encode(value, oid: int, binary: bool) -> bytes | None:
    """One DataRow field (None for SQL NULL)."""
    if value is None:
        return None
    if not binary or oid in TEXT_LIKE:              # text types: binary and text are the same bytes
        return text_value(value)
    if oid not in BINARY_OUT:
        raise SQLError(FEATURE_NOT_SUPPORTED, f"binary format for type {oid} is not supported here")
    return BINARY_OUT[oid](value)


def decode(data: bytes | None, oid: int, binary: bool):
    """One Bind parameter as the Python value the warehouse is given."""
    if data is None:
        return None
    if binary and oid not in TEXT_LIKE:
        if oid not in BINARY_IN:
            raise SQLError(FEATURE_NOT_SUPPORTED, f"binary parameters of type {oid} are not supported here")
        return BINARY_IN[oid](data)
    text = data.decode()
    try:
        return TEXT_IN[oid](text) if oid in TEXT_IN else text
    except (ValueError, InvalidOperation):
        code = INVALID_DATETIME if oid in (DATE, TIMESTAMP, TIMESTAMPTZ) else INVALID_TEXT
        raise SQLError(code, f'invalid input syntax for type {oid}: "{text}"') from None


# -- building messages ---------------------------------------------------------------
def message(kind: bytes, body: bytes = b"") -> bytes:
    """Type byte, Int32 length (counting itself), body."""
    return kind + struct.pack("!i", len(body) + 4) + body


def cstring(text: str) -> bytes:
    return text.encode() + b"\x00"


def error_response(code: str, text: str, severity: str = "ERROR", position: int | None = None,
                   detail: str | None = None) -> bytes:
    """ErrorResponse: fields S/V (severity), C (SQLSTATE), M (message), D (detail), P (1-based position)."""
    fields = [("S", severity), ("V", severity), ("C", code), ("M", text)]
    if detail:
        fields.append(("D", detail))
    if position:
        fields.append(("P", str(position)))
    return message(b"E", b"".join(k.encode() + cstring(v) for k, v in fields) + b"\x00")


def row_description(columns, formats: list[int]) -> bytes:
    """RowDescription: per column its name, type OID, size and format (0 text, 1 binary)."""
    body = struct.pack("!h", len(columns))
    for col, fmt in zip(columns, formats):
        body += cstring(col.name) + struct.pack("!ihihih", 0, 0, col.type_oid,
                                                TYPE_SIZES.get(col.type_oid, -1), -1, fmt)
    return message(b"T", body)


def data_row(fields: list[bytes | None]) -> bytes:
    body = struct.pack("!h", len(fields))
    for f in fields:
        body += struct.pack("!i", -1) if f is None else struct.pack("!i", len(f)) + f
    return message(b"D", body)


def expand_formats(codes: list[int], count: int) -> list[int]:
    """Bind's format codes: none means all text, one applies to all, else one per column."""
    if not codes:
        return [0] * count
    return codes * count if len(codes) == 1 else list(codes)


def md5_answer(user: str, password: str, salt: bytes) -> str:
    """What a client sends for AuthenticationMD5Password: 'md5' + md5(md5(password + user) + salt)."""
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


class Disconnect(Exception):
    """The client went away (or must be sent away): end the session."""


@dataclass
class Prepared:
    """A statement from Parse: its text and the parameter types the client declared."""
    sql: str
    param_types: list[int]
    columns: list | None = None         # learned by Describe (None: not yet, or no rows)


@dataclass
class Portal:
    """A prepared statement bound to parameter values, and its result once run."""
    statement: Prepared
    params: list
    formats: list[int]
    result: object = None
    sent: int = 0                       # rows already sent by earlier Executes


# -- one connection -------------------------------------------------------------------
class Session:
    """One client connection, served by its own thread, with its own warehouse session."""

    def __init__(self, server: "WireServer", sock: socket.socket):
        self.server, self.sock, self.warehouse = server, sock, server.warehouse
        self.reader = sock.makefile("rb")
        self.out = bytearray()
        self.pid, self.secret = server.next_pid(), secrets.randbits(31)
        self.db = None                      # the engine.Session, once the client logged in
        self.busy = False                   # inside warehouse.execute (a cancel target)
        self.skipping = False               # after an extended-protocol error, until Sync
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}

    # - bytes in and out
    def read(self, n: int) -> bytes:
        data = self.reader.read(n) if n else b""
        if len(data) < n:
            raise Disconnect()
        return data

    def read_int32(self) -> int:
        return struct.unpack("!i", self.read(4))[0]

    def send(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()

    # - lifecycle
    def serve(self) -> None:
        try:
            if self.startup():
                while self.handle(self.read(1)):
                    pass
        except (Disconnect, OSError):
            pass
        except Exception:                    # never a traceback to the client, nor a dead thread
            log.exception("wire session failed")
        finally:
            if self.db is not None:
                self.db.close()              # a block left open is rolled back
            self.server.forget(self)
            try:
                self.reader.close()
                self.sock.close()
            except OSError:
                pass

    def fatal(self, code: str, text: str) -> bool:
        self.send(error_response(code, text, "FATAL"))
        self.flush()
        return False

    def startup(self) -> bool:
        """Answer SSL/GSS requests, serve a CancelRequest, or log a client in."""
        while True:
            length = self.read_int32()
            if not 8 <= length <= 10_000:
                return self.fatal(PROTOCOL_VIOLATION, "invalid startup packet length")
            body = self.read(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.sock.sendall(b"N")          # no encryption here: go on in plain text
                continue
            if code == CANCEL_REQUEST:
                pid, secret = struct.unpack("!ii", body[4:12])
                self.server.cancel(pid, secret)
                return False                     # no answer: the client just closes
            if code >> 16 != 3:
                return self.fatal(FEATURE_NOT_SUPPORTED, f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
            break
        items = body[4:].split(b"\x00")
        options = {k.decode(): v.decode() for k, v in zip(items[0::2], items[1::2]) if k}
        unknown = [k for k in options if k.startswith("_pq_.")]
        if code != PROTOCOL_3_0 or unknown:      # a newer 3.x client: tell it we speak 3.0
            self.send(message(b"v", struct.pack("!ii", PROTOCOL_3_0, len(unknown))
                              + b"".join(cstring(k) for k in unknown)))
        # redshift_connector's extra keys (client_protocol_version, driver_version,
        # os_version...) are accepted and ignored: this server speaks the base protocol.
        user = options.get("user", "")
        database = options.get("database") or user
        return self.authenticate(user) and self.welcome(user, database)

    def authenticate(self, user: str) -> bool:
        """md5 password authentication: the server sends a random salt, the client answers
        ``md5(md5(password + user) + salt)``, so the password itself never crosses the wire.
        The server must know the password to check the answer: the master user's."""
        salt = secrets.token_bytes(4)
        self.send(message(b"R", struct.pack("!i", 5) + salt))
        self.flush()
        if self.read(1) != b"p":
            return self.fatal(PROTOCOL_VIOLATION, "expected a password message")
        answer = self.read(self.read_int32() - 4).rstrip(b"\x00").decode(errors="replace")
        password = self.warehouse.master_password
        if not (secrets.compare_digest(answer, md5_answer(user, password, salt))
                and self.warehouse.authenticate(user, password)):
            # Redshift answers FATAL 28000 (PostgreSQL itself would say 28P01).
            return self.fatal(INVALID_AUTHORIZATION, f'password authentication failed for user "{user}"')
        return True

    def welcome(self, user: str, database: str) -> bool:
        if database != self.warehouse.database:
            return self.fatal(INVALID_CATALOG_NAME, f'database "{database}" does not exist')
        self.send(message(b"R", struct.pack("!i", 0)))                     # AuthenticationOk
        for name, value in {**SERVER_PARAMETERS, "session_authorization": user}.items():
            self.send(message(b"S", cstring(name) + cstring(value)))      # ParameterStatus
        self.send(message(b"K", struct.pack("!ii", self.pid, self.secret)))  # BackendKeyData
        self.db = self.warehouse.session()
        self.ready()
        return True

    @property
    def status(self) -> bytes:
        """The transaction status ReadyForQuery reports: I, T or E."""
        from .engine import TX_FAILED, TX_OPEN

        state = self.db.state if self.db is not None else None
        return IN_TRANSACTION if state == TX_OPEN else FAILED if state == TX_FAILED else IDLE

    def ready(self) -> None:
        self.send(message(b"Z", self.status))                              # ReadyForQuery
        self.flush()

    # - one message
    def handle(self, kind: bytes) -> bool:
        """Serve one message; False when the connection should close."""
        length = self.read_int32()
        if not 4 <= length <= 1 << 30:
            self.fatal(PROTOCOL_VIOLATION, "invalid message length")
            return False
        body = self.read(length - 4)
        if kind == b"X":                                                   # Terminate
            return False
        if kind == b"S":                                                   # Sync
            self.skipping = False
            self.ready()
            return True
        if kind == b"H":                                                   # Flush
            self.flush()
            return True
        if self.skipping:
            return True
        handlers = {b"Q": self.query, b"P": self.parse, b"B": self.bind, b"D": self.describe,
                    b"E": self.execute, b"C": self.close}
        if kind not in handlers:
            self.fatal(PROTOCOL_VIOLATION, f"invalid frontend message type {kind!r}")
            return False
        try:
            handlers[kind](body)
        except Exception as exc:
            self.fail(exc)
            if kind == b"Q":
                self.ready()
            else:
                self.skipping = True             # extended protocol: ignore all until Sync
        return True

    def fail(self, exc: Exception) -> None:
        """Report an error; inside BEGIN ... the transaction is now failed (also for an error
        of the protocol itself, a bad parameter or a missing portal, as on PostgreSQL)."""
        if isinstance(exc, SQLError):
            self.send(error_response(exc.code, exc.message, position=exc.position,
                                     detail=getattr(exc, "detail", None)))
        else:
            log.exception("unexpected error on the wire")
            self.send(error_response(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"[:300]))
        if self.db is not None:
            self.db.fail()

    # - running statements
    def run(self, sql: str, params: list):
        """Run one statement in the connection's session (transaction control included)."""
        if first_word(sql) == "DEALLOCATE":
            return self.deallocate(sql)
        self.busy = True
        try:
            return self.db.execute(sql, params)
        finally:
            self.busy = False

    def deallocate(self, sql: str):
        """``DEALLOCATE name`` / ``DEALLOCATE ALL``: forget prepared statements (psycopg sends it)."""
        from .engine import Result

        name = sql.split()[-1].strip().rstrip(";").strip('"')
        if name.upper() == "ALL" and len(sql.split()) >= 2:
            self.statements = {k: v for k, v in self.statements.items() if not k}
            return Result(command="DEALLOCATE ALL")
        if self.statements.pop(name, None) is None:
            raise SQLError("26000", f'prepared statement "{name}" does not exist')
        return Result(command="DEALLOCATE")

    def send_result(self, result, formats: list[int], start: int = 0, limit: int = 0) -> int:
        """DataRows (from row ``start``, at most ``limit`` if not 0); returns the rows sent."""
        columns = result.columns or []
        formats = expand_formats(formats, len(columns))
        rows = result.rows[start:start + limit] if limit else result.rows[start:]
        for row in rows:
            self.send(data_row([encode(v, c.type_oid, f == 1) for v, c, f in zip(row, columns, formats)]))
        return len(rows)

    # - simple protocol
    def query(self, body: bytes) -> None:
        """Query: run each statement of the text in turn; stop at the first error.

        Several statements without transaction control of their own run as one
        transaction (PostgreSQL's *implicit transaction block*): all or nothing.
        """
        sql = body.rstrip(b"\x00").decode()
        statements = split_statements(sql)
        if not statements:
            self.send(message(b"I"))                                       # EmptyQueryResponse
        implicit = len(statements) > 1 and self.status == IDLE and \
            not any(first_word(s) in TRANSACTION_CONTROL for s in statements)
        if implicit:
            self.db.execute("BEGIN")
        offset = 0
        try:
            for statement in statements:
                offset = sql.index(statement, offset)
                try:
                    result = self.run(statement, [])
                except SQLError as exc:          # positions count from the start of the whole text
                    exc.position = exc.position and exc.position + offset
                    raise
                offset += len(statement)
                if result.columns is not None:
                    self.send(row_description(result.columns, [0] * len(result.columns)))
                    self.send_result(result, [])
                self.send(message(b"C", cstring(result.command)))          # CommandComplete
        except BaseException:
            if implicit:
                self.db.execute("ROLLBACK")
            raise
        if implicit:
            self.db.execute("COMMIT")
        self.ready()

    # - extended protocol
    def parse(self, body: bytes) -> None:
        name, rest = body.split(b"\x00", 1)
        sql, rest = rest.split(b"\x00", 1)
        count = struct.unpack("!h", rest[:2])[0]
        types = list(struct.unpack(f"!{count}i", rest[2:2 + 4 * count]))
        sql = sql.decode()
        if len(split_statements(sql)) > 1:
            raise SQLError(SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement")
        name = name.decode()
        if name and name in self.statements:
            raise SQLError("42P05", f'prepared statement "{name}" already exists')
        wanted = max(count, parameter_count(sql))
        types += [0] * (wanted - count)
        self.statements[name] = Prepared(sql, types)
        self.send(message(b"1"))                                           # ParseComplete

    def bind(self, body: bytes) -> None:
        portal, statement, rest = body.split(b"\x00", 2)
        prepared = self.statements.get(statement.decode())
        if prepared is None:
            raise SQLError("26000", f'prepared statement "{statement.decode()}" does not exist')
        pos = 0

        def int16s():
            nonlocal pos
            n = struct.unpack_from("!h", rest, pos)[0]
            values = list(struct.unpack_from(f"!{n}h", rest, pos + 2))
            pos += 2 + 2 * n
            return values

        param_formats = int16s()
        count = struct.unpack_from("!h", rest, pos)[0]
        pos += 2
        raw = []
        for _ in range(count):
            size = struct.unpack_from("!i", rest, pos)[0]
            pos += 4
            raw.append(None if size < 0 else rest[pos:pos + size])
            pos += max(size, 0)
        result_formats = int16s()
        types = prepared.param_types + [0] * (count - len(prepared.param_types))
        formats = expand_formats(param_formats, count)
        params = [decode(v, t, f == 1) for v, t, f in zip(raw, types, formats)]
        self.portals[portal.decode()] = Portal(prepared, params, result_formats)
        self.send(message(b"2"))                                           # BindComplete

    def describe(self, body: bytes) -> None:
        kind, name = body[:1], body[1:].rstrip(b"\x00").decode()
        if kind == b"S":
            prepared = self.statements.get(name)
            if prepared is None:
                raise SQLError("26000", f'prepared statement "{name}" does not exist')
            types = [TEXT if t in (0, UNKNOWN) else t for t in prepared.param_types]
            self.send(message(b"t", struct.pack(f"!h{len(types)}i", len(types), *types)))  # ParameterDescription
            try:
                prepared.columns = self.describe_statement(prepared)
            except Exception:
                # PostgreSQL finds a missing table or a syntax error at Parse, so the
                # statement never exists; we find it here: forget the statement too.
                self.statements.pop(name, None)
                raise
            columns, formats = prepared.columns, [0] * len(prepared.columns or [])
        else:
            portal = self.portals.get(name)
            if portal is None:
                raise SQLError("34000", f'portal "{name}" does not exist')
            columns = None
            if first_word(portal.statement.sql) in ROW_RETURNING:
                # A query changes nothing: run it now and keep the rows for Execute.
                portal.result = self.run(portal.statement.sql, portal.params)
                columns = portal.result.columns
            formats = expand_formats(portal.formats, len(columns or []))
        self.send(row_description(columns, formats) if columns is not None else message(b"n"))  # or NoData

    def describe_statement(self, prepared: Prepared):
        """The columns a statement will return, learned without running it for its effects.

        Statements that change things return no rows here (NoData). SHOW and
        EXPLAIN run as they are, with NULL parameters (they change nothing). A
        query runs wrapped in ``LIMIT 0`` with NULL parameters; if the wrapper
        does not fit (a syntax error), the query itself runs once with NULLs, so
        the error points into the client's text. Inside a transaction block a
        failed statement fails the block, so there the client's text is checked
        for syntax first, and the wrapper's error is the answer.
        """
        word = first_word(prepared.sql)
        if word not in ROW_RETURNING:
            return None
        last_query_id = getattr(self.db, "last_query_id", -1)
        try:                      # a probe is not the client's query: pg_last_query_id() must not see it
            return self._describe_columns(prepared, word)
        finally:
            self.db.last_query_id = last_query_id

    def _describe_columns(self, prepared, word: str):
        nulls = [None] * len(prepared.param_types)
        if word in ("SHOW", "EXPLAIN"):                  # no subquery can hold these
            return self.run(prepared.sql, nulls).columns
        sql = prepared.sql.strip().rstrip(";")
        if self.status == IN_TRANSACTION:
            # Inside a block a failed wrapper would fail the block: find a syntax error in
            # the client's own text first (PostgreSQL would fail the block at Parse too).
            from .engine import parse
            parse(sql)
        try:
            return self.run(f"SELECT * FROM (\n{sql}\n) AS describe_only LIMIT 0", nulls).columns
        except SQLError:
            if self.status == FAILED:   # inside a block the error failed it, as at Parse on PostgreSQL
                raise
            return self.run(prepared.sql, nulls).columns

    def execute(self, body: bytes) -> None:
        name, rest = body.split(b"\x00", 1)
        limit = struct.unpack("!i", rest[:4])[0]
        portal = self.portals.get(name.decode())
        if portal is None:
            raise SQLError("34000", f'portal "{name.decode()}" does not exist')
        if not split_statements(portal.statement.sql):
            self.send(message(b"I"))                                       # EmptyQueryResponse
            return
        if portal.result is None:
            portal.result = self.run(portal.statement.sql, portal.params)
        result = portal.result
        if result.columns is None:
            self.send(message(b"C", cstring(result.command)))
            return
        sent = self.send_result(result, portal.formats, portal.sent, max(limit, 0))
        portal.sent += sent
        if portal.sent < len(result.rows):
            self.send(message(b"s"))                                       # PortalSuspended
        else:
            whole = portal.sent == sent
            self.send(message(b"C", cstring(result.command if whole else f"SELECT {sent}")))

    def close(self, body: bytes) -> None:
        kind, name = body[:1], body[1:].rstrip(b"\x00").decode()
        (self.statements if kind == b"S" else self.portals).pop(name, None)
        self.send(message(b"3"))                                           # CloseComplete


# -- the server -------------------------------------------------------------------------
class WireServer:
    """The cluster's endpoint: a listening socket and one thread per client connection.

    ``start()`` binds (a free port when ``port`` is 0) and returns the port;
    ``stop()`` closes the listener and every connection and waits for their threads.
    """

    def __init__(self, warehouse, host: str = "127.0.0.1", port: int = 0):
        self.warehouse, self.host, self.port = warehouse, host, port
        self.listener: socket.socket | None = None
        self.sessions: dict[int, Session] = {}
        self.threads: set[threading.Thread] = set()
        self.lock = threading.Lock()
        self.pids = iter(range(10_000, 1 << 31))
        self.stopped = False

    @property
    def connections(self) -> int:
        """Clients logged in or logging in now."""
        with self.lock:
            return len(self.sessions)

    def start(self) -> int:
        self.listener = socket.create_server((self.host, self.port))
        self.port = self.listener.getsockname()[1]
        self.spawn(self.accept_loop, "redshift-wire-accept")
        return self.port

    def spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=self.run_thread, args=(target, *args), name=name, daemon=True)
        with self.lock:                 # started under the lock: stop() never joins an unstarted thread
            self.threads.add(thread)
            thread.start()

    def run_thread(self, target, *args) -> None:
        try:
            target(*args)
        finally:
            with self.lock:
                self.threads.discard(threading.current_thread())

    def accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:                       # the listener was closed: stop()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                if self.stopped:
                    sock.close()
                    return
                session = Session(self, sock)
                self.sessions[session.pid] = session
            self.spawn(session.serve, f"redshift-wire-{session.pid}")

    def next_pid(self) -> int:
        return next(self.pids)

    def forget(self, session: Session) -> None:
        with self.lock:
            self.sessions.pop(session.pid, None)

    def cancel(self, pid: int, secret: int) -> None:
        """A CancelRequest: if that session runs a statement, interrupt the warehouse."""
        with self.lock:
            session = self.sessions.get(pid)
        if session is not None and session.secret == secret and session.busy:
            self.warehouse.cancel()

    def stop(self) -> None:
        """Close the listener and every connection; wait for the threads. Idempotent."""
        with self.lock:
            if self.stopped or self.listener is None:
                self.stopped = True
                return
            self.stopped = True
            sessions = list(self.sessions.values())
        for sock in [self.listener] + [s.sock for s in sessions]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.listener.close()
        if any(s.busy for s in sessions):
            self.warehouse.cancel()
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
