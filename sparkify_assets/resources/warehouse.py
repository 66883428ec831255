"""The warehouse: one interface, one implementation per backend.

`WarehouseResource` is what assets and checks receive; `open()` turns its URL into a backend.
Every unit of work runs in one transaction on a connection opened for it and closed after it,
so a failed run leaves the warehouse as it was, and nothing (the UI, a sensor) holds DuckDB's
single-writer lock longer than a step needs it. A whole run holds the warehouse's run lock
(`warehouse_lock.py`): runs that write one warehouse never overlap, whoever starts them.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote

import pyarrow as pa
import pyarrow.csv as pa_csv
from dagster import ConfigurableResource, DagsterInstance, InitResourceContext
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from sparkify_assets import dialect
from sparkify_assets.env_settings import DUCKDB_MEMORY_LIMIT, duckdb_memory_limit
from sparkify_assets.errors import UserError, first_line
from sparkify_assets.resources import warehouse_lock
from sparkify_assets.resources.warehouse_lock import Holder, LockError, WarehouseBusy
from sparkify_assets.tables import Table

DEFAULT_DUCKDB_PATH = Path(".sparkify") / "sparkify.duckdb"
# The run locks of server warehouses (one file per host:port/database); a DuckDB file's lock is
# beside it. In the home folder, so `dagster dev` and `sparkify run` started anywhere share it.
SERVER_LOCK_DIR = Path.home() / ".sparkify" / "locks"
# A connection DuckDB refuses because another process has the file open (a `sparkify query`, a
# notebook) is retried this long: such readers are brief, and a run should not fail for them.
DUCKDB_BUSY_SECONDS = 10.0
# The Dagster pool of every step that touches the warehouse (assets and their checks), so that a
# pool limit in dagster.yaml can cap them; the run lock, not the pool, keeps runs apart.
POOL = "sparkify_warehouse"
T = TypeVar("T")
# Values for a statement's `?` placeholders, in order (dialect.py: one placeholder style).
Params = Sequence[object]
__all__ = [
    "POOL",
    "Holder",
    "LockError",
    "WarehouseBusy",
    "WarehouseError",
    "WarehouseResource",
    "open_warehouse",
]


class WarehouseError(UserError, RuntimeError):
    """A warehouse problem a person can act on; the message never holds a password."""


@dataclass(frozen=True)
class LiveColumn:
    """A column as the warehouse holds it (information_schema.columns)."""

    name: str
    type: str  # data_type, with character_maximum_length as "(n)" when set
    nullable: bool


# Causes in the environment, not in the data or the SQL: (text in the driver's error, what it means).
_ENVIRONMENT_CAUSES = (
    ("no space left on device", "the disk is full"),
    ("disk quota exceeded", "the disk quota is exceeded"),
    ("could not extend file", "the disk is full"),
    ("out of memory", "it ran out of memory"),
    ("permission denied", "permission was denied"),
    ("read-only file system", "the file system is read-only"),
)


def environment_cause(exc: BaseException) -> str | None:
    """What in the machine stopped the warehouse (full disk, memory, permissions), or None."""
    text = str(exc).lower()
    return next((meaning for phrase, meaning in _ENVIRONMENT_CAUSES if phrase in text), None)


class Session(ABC):
    """One open transaction. Values go in `params`, one for each `?` in the SQL, never into its
    text: the driver sends them apart (DuckDB) or quotes them for the server (psycopg2)."""

    dialect: str

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> list[tuple]: ...

    @abstractmethod
    def columns(self) -> list[str]:
        """Column names of the last query."""

    @abstractmethod
    def append(self, table: Table, rows: pa.Table) -> None:
        """Bulk-load Arrow rows into `table` (columns in the table's declared order)."""

    def after_error(self, sql: str) -> list[tuple] | None:
        """Roll back the failed transaction, then run a diagnostic query; None if that fails too."""
        return None

    def execute_shared(self, sql: str, params: Params = ()) -> None:
        """`execute` of shared SQL text, rewritten for this backend first (dialect.render)."""
        self.execute(dialect.render(sql, self.dialect), params)

    def ensure(self, *tables: Table) -> None:
        """Create the tables that do not exist; check those that do against their declaration
        (drift.py: a new nullable column is added, any other difference stops the step)."""
        from sparkify_assets.drift import reconcile

        for table in tables:
            self.execute(table.ddl(self.dialect))
            reconcile(self, table)

    def live_columns(self, table: str) -> list[LiveColumn]:
        """The table's columns in the current schema, in their order; [] when it does not exist."""
        rows = self.query(
            "SELECT column_name, data_type, character_maximum_length, is_nullable "
            "FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() "
            "ORDER BY ordinal_position",
            [table],
        )
        return [
            LiveColumn(name, f"{type_}({length})" if length else type_, nullable == "YES")
            for name, type_, length, nullable in rows
        ]

    def scalar(self, sql: str, params: Params = ()):
        """The first value of shared SQL's first row, rewritten for this backend first (as
        `execute_shared`; `query` sends its text as it is)."""
        rows = self.query(dialect.render(sql, self.dialect), params)
        return rows[0][0] if rows else None


class Warehouse(ABC):
    dialect: str
    # A lost connection or an unreachable server is retried this many times, with backoff.
    attempts = 3
    backoff_seconds = 0.5
    transient_errors: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def transaction(self) -> Iterator[Session]: ...

    def retrying(self, transient: Callable[[BaseException], bool]) -> Retrying:
        """Up to `attempts` tries with exponential backoff, retrying only what `transient` accepts;
        the last error is raised as it was (reraise), for the caller's one sentence."""
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds),
            retry=retry_if_exception(transient),
            reraise=True,
        )

    def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction; if the connection is lost, roll back and run it again
        in a new one (safe: the transaction never committed), a bounded number of times."""
        lost = self.transient_errors
        try:
            for attempt in self.retrying(lambda exc: isinstance(exc, lost)):
                with attempt, self.transaction() as tx:
                    return work(tx)
        except lost as exc:
            raise WarehouseError(
                f"Lost the connection to the warehouse {self.describe()} {self.attempts} times; "
                f"last error: {first_line(exc)}. Check that the server is up and reachable."
            ) from None
        raise AssertionError("unreachable")

    @abstractmethod
    def describe(self) -> str:
        """Where the warehouse is, for logs and metadata: never the password."""

    @abstractmethod
    def lock_path(self) -> Path:
        """The file whose OS lock a run holds while it writes this warehouse."""

    def hold(self, *, wait: bool = True, say: Callable[[str], None] | None = None, run_id: str | None = None):
        """Context manager: hold this warehouse's run lock (see warehouse_lock.hold). Waits for
        the holder (telling `say` once) or, with wait=False, raises WarehouseBusy. Yields the
        previous holder if it died holding the lock, else None."""
        try:
            return warehouse_lock.hold(self.lock_path(), self.describe(), wait=wait, say=say, run_id=run_id)
        except LockError as exc:
            raise WarehouseError(str(exc)) from None

    def query(self, sql: str, params: Params = ()) -> list[tuple]:
        """Shared SQL, rewritten for this backend, in a transaction of its own."""
        with self.transaction() as tx:
            return tx.query(dialect.render(sql, self.dialect), params)

    @abstractmethod
    def read_only_query(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple]]:
        """Run one statement as the backend's read-only reader (nothing is written, no writer's
        lock is taken, not even a DuckDB file created): its column names and rows, none for a
        statement without a result. SQL as given (`sparkify query --sql`): no dialect rewrite."""

    def exists(self) -> bool:
        """Whether there is a warehouse to read yet (a server always is; a DuckDB file may not)."""
        return True

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]))


def _result(cursor) -> tuple[list[str], list[tuple]]:
    """A DB-API cursor's column names and rows, none for a statement without a result."""
    columns = [d[0] for d in cursor.description] if cursor.description else []
    return columns, cursor.fetchall() if columns else []


# --- DuckDB -------------------------------------------------------------------------------


class _DuckDBSession(Session):
    dialect = "duckdb"

    def __init__(self, con) -> None:
        self.con = con

    def execute(self, sql: str, params: Params = ()) -> None:
        self.con.execute(sql, list(params) if params else None)

    def query(self, sql: str, params: Params = ()) -> list[tuple]:
        return self.con.execute(sql, list(params) if params else None).fetchall()

    def columns(self) -> list[str]:
        return [d[0] for d in self.con.description or []]

    def append(self, table: Table, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        # A relation, not register()/unregister(): a view registered inside a transaction keeps
        # its Arrow table alive until commit, so a 10M-row load held every batch (3 GB) at once.
        # insert_into is positional: select the declared columns, the DDL's order.
        self.con.from_arrow(rows).select(*table.column_names).insert_into(table.name)


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"duckdb://{self.path.absolute()}"

    def lock_path(self) -> Path:
        return self.path.absolute().with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        return self.path.exists()

    def read_only_query(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple]]:
        # read_only: a query never takes the writer's lock, so it runs beside a load.
        import duckdb

        con = self.connect(read_only=True)
        try:
            return _result(con.execute(sql, list(params) if params else None))
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {first_line(exc)}") from None
        finally:
            con.close()

    def hold(self, **kwargs):
        self.create_folder()  # the lock file lives beside the database
        return super().hold(**kwargs)

    def create_folder(self) -> None:
        """The warehouse's folder, or one sentence on why it cannot be made."""
        try:
            self.path.absolute().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(
                f"Cannot create the folder {self.path.absolute().parent} for the DuckDB warehouse "
                f"({exc.strerror or exc}): set SPARKIFY_WAREHOUSE_URL to duckdb:///a/writable/path.duckdb."
            ) from None

    def connect(self, read_only: bool = False):
        import duckdb

        if read_only and not self.path.exists():
            raise WarehouseError(f"No DuckDB warehouse at {self.path} yet: run `sparkify run` first.")
        self.create_folder()
        config = self._config()
        deadline = time.monotonic() + DUCKDB_BUSY_SECONDS
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except duckdb.Error as exc:
                msg = str(exc)
                if "lock" in msg.lower() and isinstance(exc, duckdb.IOException):
                    if time.monotonic() < deadline:
                        time.sleep(0.25)
                        continue
                    holder = re.search(r"PID (\d+)", msg)
                    who = f" (process {holder.group(1)})" if holder else ""
                    raise WarehouseError(
                        f"The DuckDB warehouse {self.path} is locked by another process{who}: DuckDB lets one "
                        "process at a time open it for writing, so that process must close it (or be stopped) first."
                    ) from None
                raise WarehouseError(self._explain(exc, "Cannot open")) from None

    def _explain(self, exc: BaseException, doing: str) -> str:
        """One line for a DuckDB error whose cause is the machine: disk, memory, permissions."""
        cause = environment_cause(exc)
        detail = first_line(exc)
        if cause is None:
            return f"{doing} the DuckDB warehouse {self.path}: {detail}"
        advice = {
            "it ran out of memory": f"raise {DUCKDB_MEMORY_LIMIT} (now {self._config()['memory_limit']}) "
            "or free memory, then run again",
            "permission was denied": f"check that this user may write {self.path.absolute().parent}",
            "the file system is read-only": f"move the warehouse off the read-only {self.path.absolute().parent}",
        }.get(
            cause,
            f"free space in {self.path.absolute().parent} (the warehouse and its .tmp spill folder), then run again",
        )
        return f"{doing} the DuckDB warehouse {self.path}: {cause} ({detail}); {advice}."

    def _config(self) -> dict[str, str]:
        """Cap DuckDB's memory (SPARKIFY_DUCKDB_MEMORY_LIMIT, default 1GB: its own default is 80%
        of the machine) and let big transforms spill to a folder beside the database instead."""
        return {
            "memory_limit": duckdb_memory_limit(),
            "temp_directory": str(self.path.with_name(self.path.name + ".tmp")),
        }

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        import duckdb

        con = self.connect()
        try:
            con.begin()
            yield _DuckDBSession(con)
            con.commit()
        except BaseException as exc:
            try:
                con.rollback()
            except duckdb.Error:
                # DuckDB already ended a transaction that failed to write or commit ("cannot
                # rollback - no transaction is active"): the error to report is the first one.
                pass
            if isinstance(exc, duckdb.Error) and environment_cause(exc):
                raise WarehouseError(
                    self._explain(exc, "Writing to")
                    + " The transaction was rolled back: the tables are as before."
                ) from None
            raise
        finally:
            con.close()


# --- PostgreSQL (and Redshift, which speaks its protocol) --------------------------------


class _PostgresSession(Session):
    def __init__(self, con, dialect_name: str) -> None:
        self.con = con
        self.dialect = dialect_name
        self._columns: list[str] = []

    def execute(self, sql: str, params: Params = ()) -> None:
        with self.con.cursor() as cur:
            _send(cur, sql, params)

    def query(self, sql: str, params: Params = ()) -> list[tuple]:
        with self.con.cursor() as cur:
            _send(cur, sql, params)
            self._columns = [d[0] for d in cur.description or []]
            return cur.fetchall()

    def columns(self) -> list[str]:
        return self._columns

    def after_error(self, sql: str) -> list[tuple] | None:
        self.con.rollback()
        try:
            return self.query(sql)
        except Exception:
            self.con.rollback()
            return None

    def append(self, table: Table, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        # Arrow's CSV writer tells NULL (empty) from the empty string ("") as COPY CSV expects.
        buf = io.BytesIO()
        pa_csv.write_csv(rows.select(table.column_names), buf, pa_csv.WriteOptions(include_header=False))
        buf.seek(0)
        import psycopg2

        try:
            with self.con.cursor() as cur:
                cur.copy_expert(
                    f"COPY {table.name} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT csv)", buf
                )
        except psycopg2.Error as exc:
            raise WarehouseError(_copy_error(table, rows, exc)) from None


def _send(cursor, sql: str, params: Params) -> None:
    """Execute on a psycopg2 cursor: with parameters in its `%s` style, or (none) as written, so
    a `%` in SQL without parameters stays itself."""
    if params:
        cursor.execute(dialect.pyformat(sql), tuple(params))
    else:
        cursor.execute(sql)


def _copy_error(table: Table, rows: pa.Table, exc) -> str:
    """Name the lake file and line of the row a PostgreSQL COPY rejected."""
    diag = getattr(exc, "diag", None)
    reason = (getattr(diag, "message_primary", None) or first_line(exc)).strip()
    found = re.search(r"line (\d+)", getattr(diag, "context", None) or "")
    where = ""
    if found and "source_key" in rows.column_names:
        row = rows.slice(int(found.group(1)) - 1, 1).to_pylist()
        if row:
            line = row[0].get("source_line")
            where = f" at {row[0]['source_key']}" + (f" line {line}" if line else "")
    column = getattr(diag, "column_name", None)
    column = f", column {column}" if column else ""
    return f"Loading {table.name} failed{where}{column}: {reason}. The table keeps its previous contents."


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    def __init__(
        self, host: str, port: int, user: str, database: str, password: str | None, sslmode: str
    ) -> None:
        self.host, self.port, self.user, self.database = host, port, user, database
        self._password = password
        self.sslmode = sslmode

    def describe(self) -> str:
        scheme = "redshift" if self.dialect == "redshift" else "postgresql"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"

    def lock_path(self) -> Path:
        # One lock per server and database (not per user: two users' runs overlap just the same).
        where = f"{self.host.lower()}:{self.port}/{self.database}"
        return SERVER_LOCK_DIR / f"{hashlib.sha256(where.encode()).hexdigest()[:20]}.lock"

    def connect(self):
        import psycopg2

        def transient(exc: BaseException) -> bool:
            # A refused login or a missing database will not change on retry: say so at once.
            return isinstance(exc, psycopg2.OperationalError) and not any(
                phrase in str(exc) for phrase in ("authentication", "no password supplied", "does not exist")
            )

        retrying = self.retrying(transient)
        try:
            return retrying(self._connect_once)
        except psycopg2.OperationalError as exc:
            first = first_line(exc)
            if self._password:
                first = first.replace(self._password, "***")
            attempt = retrying.statistics["attempt_number"]
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            raise WarehouseError(
                f"Cannot connect to the warehouse {self.describe()}{tries}: {first}. "
                "Check the host, port, user, database and SPARKIFY_WAREHOUSE_PASSWORD."
            ) from None

    def _connect_once(self):
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=self.database,
            password=self._password,
            sslmode=self.sslmode,
            connect_timeout=10,
        )

    @property
    def transient_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg2

        return (psycopg2.OperationalError, psycopg2.InterfaceError)

    def read_only_query(self, sql: str, params: Params = ()) -> tuple[list[str], list[tuple]]:
        # A READ ONLY transaction, rolled back: the server refuses any write in it.
        import psycopg2

        con = self.connect()
        try:
            con.set_session(readonly=True)
            with con.cursor() as cur:
                _send(cur, sql, params)
                return _result(cur)
        except psycopg2.Error as exc:
            raise WarehouseError(f"query failed: {first_line(exc)}") from None
        finally:
            con.rollback()
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        con = self.connect()
        try:
            yield _PostgresSession(con, self.dialect)
            con.commit()
        except BaseException as exc:
            if not con.closed:
                try:
                    con.rollback()
                except Exception:  # the connection died with the transaction: nothing to undo
                    pass
            cause = environment_cause(exc) if getattr(exc, "pgcode", None) else None
            if cause:
                raise WarehouseError(
                    f"Writing to the warehouse {self.describe()} failed: {cause} on the server "
                    f"({first_line(exc)}). The transaction was rolled back: the tables are as before."
                ) from None
            raise
        finally:
            con.close()


class RedshiftWarehouse(PostgresWarehouse):
    dialect = "redshift"


# --- The resource -------------------------------------------------------------------------

_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redshift": 5439}


URL_FORMS = (
    "duckdb:///abs/path/file.duckdb, duckdb://relative/path/file.duckdb, a bare path/file.duckdb, "
    "postgresql://user@host:port/db or redshift://user@host:5439/db"
)
# scheme://[user[:password]@]host[:port]/database[?query]. The user information runs to the last
# "@", so a password holding "/", "#", "?" or "@" still parses (it is percent-decoded as well).
_SERVER_URL = re.compile(
    r"^(?:(?P<user>[^:@]*)(?::(?P<password>.*))?@)?(?P<host>\[[^\]]+\]|[^:/?#@]+)(?::(?P<port>[^/?#]*))?"
    r"(?:/(?P<database>[^?#]*))?(?:\?(?P<query>[^#]*))?(?:#.*)?$",
    re.S,
)


def _scheme(url: str) -> str:
    found = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
    return found.group(1).lower() if found else ""


def open_warehouse(url: str, password: str | None = None, sslmode: str | None = None) -> Warehouse:
    """Build the backend named by a warehouse URL (DESIGN.md section 3); nothing is opened yet.

    `duckdb:///abs/path.duckdb` is absolute; `duckdb://rel/path.duckdb` is relative to the
    working directory, like a bare `path.duckdb`. A password in a server URL is percent-decoded;
    `password` (SPARKIFY_WAREHOUSE_PASSWORD) wins over it.
    """
    url = url.strip()
    scheme = _scheme(url)
    if (
        scheme
        and not url[len(scheme) + 1 :].startswith("//")
        and (scheme in _DEFAULT_PORTS or scheme == "duckdb")
    ):
        # `duckdb:/tmp/x.duckdb` would otherwise be a relative path under a folder named "duckdb:".
        shown = url if scheme == "duckdb" else f"{scheme}:/…"  # a server URL may hold a password
        raise WarehouseError(
            f"SPARKIFY_WAREHOUSE_URL {shown} needs two slashes after {scheme}: it takes {URL_FORMS}."
        )
    if not scheme and url.endswith(".duckdb"):
        return DuckDBWarehouse(Path(url))
    rest = url[len(scheme) + 3 :]
    if scheme == "duckdb":
        return _duckdb_from_url(rest)
    if scheme in _DEFAULT_PORTS:
        return _server_from_url(scheme, rest, password, sslmode)
    raise WarehouseError(
        f"Unknown warehouse URL scheme {scheme + '://' if scheme else repr(url)}: SPARKIFY_WAREHOUSE_URL "
        f"takes {URL_FORMS}."
    )


def _duckdb_from_url(rest: str) -> DuckDBWarehouse:
    """A DuckDB warehouse from what follows `duckdb://`."""
    path = rest.split("?", 1)[0]
    if not path:
        raise WarehouseError(
            f"A duckdb:// warehouse URL needs a file path, e.g. duckdb:///tmp/sparkify.duckdb; "
            f"SPARKIFY_WAREHOUSE_URL takes {URL_FORMS}."
        )
    return DuckDBWarehouse(Path(unquote(path)))


def _server_from_url(scheme: str, rest: str, password: str | None, sslmode: str | None) -> PostgresWarehouse:
    """A PostgreSQL or Redshift warehouse from what follows `scheme://`."""
    parts = _SERVER_URL.match(rest)
    port = parts and parts["port"]
    if not parts or not parts["user"] or not (parts["database"] or "").strip("/"):
        raise WarehouseError(
            f"A {scheme}:// warehouse URL needs a user, a host and a database: {scheme}://user@host:port/db "
            f"(a password goes in SPARKIFY_WAREHOUSE_PASSWORD, or percent-encoded in the URL)."
        )
    if port and not port.isdigit():
        raise WarehouseError(
            f"The port in the {scheme}:// warehouse URL must be a number: {scheme}://user@host:port/db."
        )
    cls = RedshiftWarehouse if scheme == "redshift" else PostgresWarehouse
    sslmode = sslmode or parse_qs(parts["query"] or "").get("sslmode", [None])[0]
    return cls(
        host=parts["host"].strip("[]"),
        port=int(port) if port else _DEFAULT_PORTS[scheme],
        user=unquote(parts["user"]),
        database=unquote(parts["database"].strip("/")),
        password=password or (unquote(parts["password"]) if parts["password"] else None),
        sslmode=sslmode or ("require" if scheme == "redshift" else "prefer"),
    )


class WarehouseResource(ConfigurableResource):
    """The star-schema warehouse: DuckDB (default), PostgreSQL or Redshift, chosen by URL."""

    url: str = Field(
        default=f"duckdb://{DEFAULT_DUCKDB_PATH}",
        description="duckdb:///path/file.duckdb, postgresql://user@host:port/db or redshift://user@host:5439/db",
    )
    password: str | None = Field(default=None, description="Password for PostgreSQL or Redshift (use EnvVar)")
    sslmode: str | None = Field(default=None, description="psycopg2 sslmode; defaults to require on Redshift")
    iam_role: str | None = Field(default=None, description="Redshift: IAM role ARN that COPY uses to read S3")
    region: str | None = Field(default=None, description="Redshift: the S3 lake's region for COPY")
    log_jsonpath: str | None = Field(
        default=None, description="Redshift: s3:// URL of the logs' JSONPaths file; default: next to the data"
    )
    dwh_cfg: str | None = Field(
        default=None,
        description="A seed-style dwh.cfg whose password ([DWH] DWH_DB_PASSWORD, else [CLUSTER] "
        "DB_PASSWORD) is read when connecting",
    )

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[WarehouseResource]:
        """A run holds the warehouse's run lock from its start to its end (every step of it, so two
        runs never interleave), whoever launched it. Opened outside a run (`sparkify tables`,
        a test reading tables) nothing is locked."""
        run = context.run
        if run is None:
            yield self
            return
        with self.lock(say=context.log.info, run_id=run.run_id, instance=context.instance):
            yield self

    @contextmanager
    def lock(
        self,
        *,
        wait: bool = True,
        say: Callable[[str], None] | None = None,
        run_id: str | None = None,
        instance: DagsterInstance | None = None,
    ) -> Iterator[Holder | None]:
        """Hold this warehouse's run lock for the block: the one serialiser of runs. Re-entrant in
        one thread (`sparkify run` holds it around its run, whose resource asks again). A run of
        `instance` that died holding it (SIGKILL) is marked failed and its pool slots freed."""
        with self.open().hold(wait=wait, say=say, run_id=run_id) as previous:
            if previous is not None and previous.run_id and instance is not None:
                _fail_dead_run(instance, previous, say)
            yield previous

    def open(self) -> Warehouse:
        password = self.password
        if password is None and self.dwh_cfg:
            from sparkify_assets.infra.settings import SOURCES, read_dwh_cfg

            # Read at connection time, so the password never enters the run's config. The same
            # dwh.cfg keys, in the same order, as `sparkify infra up` used to create the cluster:
            # the password it was created with is the one we connect with.
            cfg = read_dwh_cfg(self.dwh_cfg)
            password = next((cfg[key] for key in SOURCES["db_password"][1] if key in cfg), None)
        return open_warehouse(self.url, password, self.sslmode)


def _fail_dead_run(instance: DagsterInstance, holder: Holder, say: Callable[[str], None] | None) -> None:
    """A run whose process died holding the warehouse lock stays "started" for good, and keeps any
    pool slot it had claimed: mark it failed and free its slots, so nothing waits for it."""
    run = instance.get_run_by_id(holder.run_id or "")
    if run is None or run.is_finished:
        return
    message = f"Marked run {run.run_id} failed: its {holder.describe().split(' (')[0]} died holding the warehouse lock."
    try:
        instance.report_run_failed(run, message=message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    except Exception as exc:  # bookkeeping only: never stop the new run for it
        message = f"{message} Could not mark it failed: {first_line(exc)}"
    if say:
        say(message)
