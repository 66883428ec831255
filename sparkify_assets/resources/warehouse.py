"""The warehouse: one interface, one implementation per backend.

`WarehouseResource` is what assets and checks receive; `open()` turns its URL into a backend.
Every unit of work runs in one transaction on a connection opened for it and closed after it,
so a failed run leaves the warehouse as it was, and nothing (the UI, a sensor) holds DuckDB's
single-writer lock longer than a step needs it.
"""

from __future__ import annotations

import io
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa
import pyarrow.csv as pa_csv
from dagster import ConfigurableResource
from pydantic import Field

from sparkify_assets import dialect
from sparkify_assets.tables import Table

DEFAULT_DUCKDB_PATH = Path(".sparkify") / "sparkify.duckdb"
DUCKDB_MEMORY_LIMIT = "1GB"
T = TypeVar("T")


class WarehouseError(RuntimeError):
    """A warehouse problem a person can act on; the message never holds a password."""


@dataclass(frozen=True)
class LiveColumn:
    """A column as the warehouse holds it (information_schema.columns)."""

    name: str
    type: str  # data_type, with character_maximum_length as "(n)" when set
    nullable: bool


class Session(ABC):
    """One open transaction."""

    dialect: str

    @abstractmethod
    def execute(self, sql: str) -> None: ...

    @abstractmethod
    def query(self, sql: str) -> list[tuple]: ...

    @abstractmethod
    def columns(self) -> list[str]:
        """Column names of the last query."""

    @abstractmethod
    def append(self, table: Table, rows: pa.Table) -> None:
        """Bulk-load Arrow rows into `table` (columns in the table's declared order)."""

    def after_error(self, sql: str) -> list[tuple] | None:
        """Roll back the failed transaction, then run a diagnostic query; None if that fails too."""
        return None

    def sql(self, sql: str) -> None:
        self.execute(dialect.render(sql, self.dialect))

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
            f"WHERE table_name = '{dialect.identifier(table)}' AND table_schema = current_schema() "
            "ORDER BY ordinal_position"
        )
        return [
            LiveColumn(name, f"{type_}({length})" if length else type_, nullable == "YES")
            for name, type_, length, nullable in rows
        ]

    def scalar(self, sql: str):
        rows = self.query(dialect.render(sql, self.dialect))
        return rows[0][0] if rows else None


class Warehouse(ABC):
    dialect: str
    # A lost connection or an unreachable server is retried this many times, with backoff.
    attempts = 3
    backoff_seconds = 0.5
    transient_errors: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def transaction(self) -> Iterator[Session]: ...

    def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction; if the connection is lost, roll back and run it again
        in a new one (safe: the transaction never committed), a bounded number of times."""
        for attempt in range(1, self.attempts + 1):
            try:
                with self.transaction() as tx:
                    return work(tx)
            except self.transient_errors as exc:
                if attempt == self.attempts:
                    raise WarehouseError(
                        f"Lost the connection to the warehouse {self.describe()} {self.attempts} times; "
                        f"last error: {_first_line(exc)}. Check that the server is up and reachable."
                    ) from None
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    @abstractmethod
    def describe(self) -> str:
        """Where the warehouse is, for logs and metadata: never the password."""

    def query(self, sql: str) -> list[tuple]:
        with self.transaction() as tx:
            return tx.query(dialect.render(sql, self.dialect))

    def table_exists(self, name: str) -> bool:
        with self.transaction() as tx:
            return bool(
                tx.query(
                    f"SELECT 1 FROM information_schema.tables WHERE table_name = '{dialect.identifier(name)}'"
                )
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- DuckDB -------------------------------------------------------------------------------


class _DuckDBSession(Session):
    dialect = "duckdb"

    def __init__(self, con) -> None:
        self.con = con

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def query(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

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

    def connect(self, read_only: bool = False):
        import duckdb

        if read_only and not self.path.exists():
            raise WarehouseError(f"No DuckDB warehouse at {self.path} yet: run `sparkify run` first.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), read_only=read_only, config=self._config())
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                holder = re.search(r"PID (\d+)", msg)
                who = f" (held by process {holder.group(1)})" if holder else ""
                raise WarehouseError(
                    f"The DuckDB warehouse {self.path} is locked by another process{who}; DuckDB allows "
                    "one writer at a time: wait for that run to finish or stop it."
                ) from None
            raise WarehouseError(f"Cannot open the DuckDB warehouse {self.path}: {msg}") from None
        return con

    def _config(self) -> dict[str, str]:
        """Cap DuckDB's memory (SPARKIFY_DUCKDB_MEMORY_LIMIT, default 1GB: its own default is 80%
        of the machine) and let big transforms spill to a folder beside the database instead."""
        return {
            "memory_limit": os.environ.get("SPARKIFY_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT),
            "temp_directory": str(self.path.with_name(self.path.name + ".tmp")),
        }

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        con = self.connect()
        try:
            con.begin()
            yield _DuckDBSession(con)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()


# --- PostgreSQL (and Redshift, which speaks its protocol) --------------------------------


class _PostgresSession(Session):
    def __init__(self, con, dialect_name: str) -> None:
        self.con = con
        self.dialect = dialect_name
        self._columns: list[str] = []

    def execute(self, sql: str) -> None:
        with self.con.cursor() as cur:
            cur.execute(sql)

    def query(self, sql: str) -> list[tuple]:
        with self.con.cursor() as cur:
            cur.execute(sql)
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


def _copy_error(table: Table, rows: pa.Table, exc) -> str:
    """Name the lake file and line of the row a PostgreSQL COPY rejected."""
    diag = getattr(exc, "diag", None)
    reason = (getattr(diag, "message_primary", None) or str(exc).splitlines()[0]).strip()
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

    def connect(self):
        import psycopg2

        for attempt in range(1, self.attempts + 1):
            try:
                return self._connect_once()
            except psycopg2.OperationalError as exc:
                # A wrong password or database will not fix itself: fail at once.
                # A refused login or a missing database will not change on retry: say so at once.
                final = attempt == self.attempts or any(
                    phrase in str(exc)
                    for phrase in ("authentication", "no password supplied", "does not exist")
                )
                if not final:
                    time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
                    continue
                first = _first_line(exc)
                if self._password:
                    first = first.replace(self._password, "***")
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise WarehouseError(
                    f"Cannot connect to the warehouse {self.describe()}{tries}: {first}. "
                    "Check the host, port, user, database and SPARKIFY_WAREHOUSE_PASSWORD."
                ) from None
        raise AssertionError("unreachable")

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

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        con = self.connect()
        try:
            yield _PostgresSession(con, self.dialect)
            con.commit()
        except BaseException:
            if not con.closed:
                try:
                    con.rollback()
                except Exception:  # the connection died with the transaction: nothing to undo
                    pass
            raise
        finally:
            con.close()


class RedshiftWarehouse(PostgresWarehouse):
    dialect = "redshift"


# --- The resource -------------------------------------------------------------------------

_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redshift": 5439}


def open_warehouse(url: str, password: str | None = None, sslmode: str | None = None) -> Warehouse:
    """Build the backend named by a warehouse URL (DESIGN.md section 3).

    `duckdb:///abs/path.duckdb` is absolute; `duckdb://rel/path.duckdb` is relative to the
    working directory, like a bare `path.duckdb`.
    """
    url = url.strip()
    if url.endswith(".duckdb") and "://" not in url:
        return DuckDBWarehouse(Path(url))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "duckdb":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise WarehouseError(
                "A duckdb:// warehouse URL needs a file path, e.g. duckdb:///tmp/sparkify.duckdb"
            )
        return DuckDBWarehouse(Path(unquote(path)))
    if scheme in _DEFAULT_PORTS:
        if not parts.hostname or not parts.username or not parts.path.strip("/"):
            raise WarehouseError(
                f"A {scheme}:// warehouse URL needs a user, a host and a database: {scheme}://user@host:port/db"
            )
        cls = RedshiftWarehouse if scheme == "redshift" else PostgresWarehouse
        sslmode = sslmode or parse_qs(parts.query).get("sslmode", [None])[0]
        return cls(
            host=parts.hostname,
            port=parts.port or _DEFAULT_PORTS[scheme],
            user=unquote(parts.username),
            database=parts.path.strip("/"),
            password=password or (unquote(parts.password) if parts.password else None),
            sslmode=sslmode or ("require" if scheme == "redshift" else "prefer"),
        )
    raise WarehouseError(
        f"Unknown warehouse URL scheme {scheme + '://' if scheme else repr(url)}: SPARKIFY_WAREHOUSE_URL "
        "takes duckdb:///path/file.duckdb, postgresql://user@host:port/db or redshift://user@host:5439/db."
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
