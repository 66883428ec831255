"""The warehouse's tables, declared once.

Each `Table` lists its columns, primary key, references and Redshift layout. The DDL of every
backend, the key and reference asset checks and the column schema shown in the Dagster UI are all
derived from these declarations, so a column is added or renamed here and nowhere else.
The SQL that fills each star table lives beside it in `sql/<table>.sql`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

# Logical column types, rendered per backend. Floating point is always double precision: a
# classic loader that used REAL lost the sample's one song match (DESIGN.md section 5).
TYPES: dict[str, dict[str, str]] = {
    "text": {"duckdb": "VARCHAR", "postgres": "TEXT", "redshift": "VARCHAR(65535)"},
    "hash": {"duckdb": "VARCHAR", "postgres": "VARCHAR(32)", "redshift": "CHAR(32)"},
    "integer": {"duckdb": "INTEGER", "postgres": "INTEGER", "redshift": "INTEGER"},
    "bigint": {"duckdb": "BIGINT", "postgres": "BIGINT", "redshift": "BIGINT"},
    "double": {"duckdb": "DOUBLE", "postgres": "DOUBLE PRECISION", "redshift": "DOUBLE PRECISION"},
    "timestamp": {"duckdb": "TIMESTAMP", "postgres": "TIMESTAMP", "redshift": "TIMESTAMP"},
    "date": {"duckdb": "DATE", "postgres": "DATE", "redshift": "DATE"},
}

DIALECTS = ("duckdb", "postgres", "redshift")

# The same types as information_schema.columns reports them (data_type, with
# character_maximum_length in parentheses when there is one): what drift.py compares a live
# table with.
LIVE_TYPES: dict[str, dict[str, str]] = {
    "text": {"duckdb": "VARCHAR", "postgres": "text", "redshift": "character varying(65535)"},
    "hash": {"duckdb": "VARCHAR", "postgres": "character varying(32)", "redshift": "character(32)"},
    "integer": {"duckdb": "INTEGER", "postgres": "integer", "redshift": "integer"},
    "bigint": {"duckdb": "BIGINT", "postgres": "bigint", "redshift": "bigint"},
    "double": {"duckdb": "DOUBLE", "postgres": "double precision", "redshift": "double precision"},
    "timestamp": {
        "duckdb": "TIMESTAMP",
        "postgres": "timestamp without time zone",
        "redshift": "timestamp without time zone",
    },
    "date": {"duckdb": "DATE", "postgres": "date", "redshift": "date"},
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    not_null: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Reference:
    """`column` of this table must exist in `table.to_column` whenever it is not NULL.

    `built_from_here`: the referenced table is built from this one (time from songplays), so
    its check belongs to the referenced asset and runs after it, not before.
    """

    column: str
    table: str
    to_column: str
    built_from_here: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    # The column that holds a daily partition's date, for partitioned tables.
    partition_column: str | None = None
    # Redshift layout: "EVEN", "ALL" or "KEY"; with KEY, `distkey` names the column.
    diststyle: str = "EVEN"
    distkey: str | None = None
    sortkey: tuple[str, ...] = ()
    layout_reason: str = ""
    lineage_columns: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def contract_columns(self) -> list[str]:
        """The columns the data contract defines, without lineage bookkeeping."""
        return [c for c in self.column_names if c not in self.lineage_columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name}")

    def ddl(self, dialect: str, temporary: bool = False) -> str:
        """CREATE TABLE IF NOT EXISTS for one backend.

        Keys are not declared as constraints: Redshift does not enforce them, and the asset
        checks verify them on every backend alike.
        """
        cols = ",\n".join(
            f"    {c.name} {TYPES[c.type][dialect]}{' NOT NULL' if c.not_null else ''}" for c in self.columns
        )
        ddl = f"CREATE {'TEMP ' if temporary else ''}TABLE IF NOT EXISTS {self.name} (\n{cols}\n)"
        if dialect == "redshift":
            ddl += f"\nDISTSTYLE {self.diststyle}"
            if self.diststyle == "KEY":
                ddl += f"\nDISTKEY ({self.distkey})"
            if self.sortkey:
                ddl += f"\nSORTKEY ({', '.join(self.sortkey)})"
        return ddl

    def transform_sql(self) -> str:
        """The SELECT that fills this table, from `sql/<name>.sql`."""
        return resources.files("sparkify_assets.sql").joinpath(f"{self.name}.sql").read_text()

    @property
    def sql_path(self) -> Path | None:
        """The file of `transform_sql`, None for tables loaded from the lake."""
        path = Path(str(resources.files("sparkify_assets.sql").joinpath(f"{self.name}.sql")))
        return path if path.is_file() else None


def _c(name: str, type_: str, description: str, not_null: bool = False) -> Column:
    return Column(name, type_, description, not_null)


_LINEAGE = ("source_key", "source_line", "source_date")

STAGING_EVENTS = Table(
    name="staging_events",
    description="One row per valid event line of log_data, fields as in the log, empty userId as NULL.",
    columns=(
        _c("artist", "text", "Artist of the song played (NextSong events)"),
        _c("auth", "text", "Logged In, Logged Out, Guest or Cancelled"),
        _c("first_name", "text", "User's first name"),
        _c("gender", "text", "User's gender, M or F"),
        _c("item_in_session", "integer", "Position of the event in its session"),
        _c("last_name", "text", "User's last name"),
        _c("length", "double", "Length of the song played, in seconds"),
        _c("level", "text", "Subscription level at the event: free or paid"),
        _c("location", "text", "User's location"),
        _c("method", "text", "HTTP method"),
        _c("page", "text", "Page visited; NextSong is a song play", not_null=True),
        _c("registration", "double", "Registration time, epoch milliseconds"),
        _c("session_id", "integer", "Session identifier", not_null=True),
        _c("song", "text", "Title of the song played"),
        _c("status", "integer", "HTTP status"),
        _c("ts", "bigint", "Event time, epoch milliseconds UTC", not_null=True),
        _c("user_agent", "text", "User's browser user agent"),
        _c("user_id", "text", "User identifier; NULL for logged-out visitors"),
        _c("source_key", "text", "Lake key of the log file the event came from", not_null=True),
        _c(
            "source_line",
            "integer",
            "Line number of the event in its file (1-based); NULL on Redshift, whose COPY does not report it",
        ),
        _c("source_date", "date", "Date of the log file (the daily partition)", not_null=True),
    ),
    partition_column="source_date",
    lineage_columns=_LINEAGE,
    sortkey=("source_date",),
    layout_reason="EVEN: staging is scanned whole by the transforms, so spreading rows evenly balances "
    "the COPY and the scans; sorted by source_date so a partition's DELETE touches few blocks.",
)

STAGING_SONGS = Table(
    name="staging_songs",
    description="One row per song object of song_data, as in the catalog files.",
    columns=(
        _c("num_songs", "integer", "Always 1 in the Million Song Dataset subset"),
        _c("artist_id", "text", "Artist identifier"),
        _c("artist_latitude", "double", "Artist latitude"),
        _c("artist_longitude", "double", "Artist longitude"),
        _c("artist_location", "text", "Artist location"),
        _c("artist_name", "text", "Artist name"),
        _c("song_id", "text", "Song identifier", not_null=True),
        _c("title", "text", "Song title"),
        _c("duration", "double", "Song duration in seconds"),
        _c("year", "integer", "Release year; 0 when unknown"),
        _c(
            "source_key",
            "text",
            "Lake key of the song file (on Redshift, the song_data/ prefix one COPY read)",
            not_null=True,
        ),
        _c("source_line", "integer", "Line where the object starts in its file (1-based); NULL on Redshift"),
    ),
    lineage_columns=("source_key", "source_line"),
    layout_reason="EVEN: loaded by COPY and scanned whole by the songs and artists transforms.",
)

SONGPLAYS = Table(
    name="songplays",
    description="Fact: one row per NextSong event, with the catalog song it matches when there is one.",
    columns=(
        _c(
            "songplay_id",
            "hash",
            "md5 of the event's ts, user, session and item: stable across runs and backends",
            not_null=True,
        ),
        _c("start_time", "timestamp", "Time of the play, UTC", not_null=True),
        _c("user_id", "text", "User who played"),
        _c("level", "text", "User's level at the play"),
        _c(
            "song_id",
            "text",
            "Matched catalog song: staging_songs.song_id of the song whose title and artist name are the "
            "play's (closest duration); NULL when the play matches none",
        ),
        _c("artist_id", "text", "Matched catalog song's artist_id, by the same match; NULL when none"),
        _c("session_id", "integer", "Session of the play"),
        _c("location", "text", "User's location at the play"),
        _c("user_agent", "text", "User's browser"),
        _c(
            "source_date",
            "date",
            "Date of the log file the play came from (the daily partition)",
            not_null=True,
        ),
    ),
    primary_key=("songplay_id",),
    references=(
        Reference("user_id", "users", "user_id"),
        Reference("start_time", "time", "start_time", built_from_here=True),
        Reference("song_id", "songs", "song_id"),
        Reference("artist_id", "artists", "artist_id"),
    ),
    partition_column="source_date",
    lineage_columns=("source_date",),
    # Not DISTKEY song_id: a play's song_id is NULL whenever it matches no catalog song (6,819 of
    # 6,820 plays on the sample, about 95% on the full public catalog), and every NULL hashes to
    # one slice. user_id is set on every play and spread over thousands of users.
    diststyle="KEY",
    distkey="user_id",
    sortkey=("start_time",),
    layout_reason="DISTKEY user_id, not song_id: song_id is NULL for every play that matches no catalog "
    "song (6,819 of 6,820 on the sample, about 95% on the full catalog), which would put nearly every "
    "row on one slice; user_id is known on every play and spreads them evenly, and per-user questions "
    "stay node-local. SORTKEY start_time because analysts filter and group plays by time.",
)

USERS = Table(
    name="users",
    description="Dimension: one row per user seen in any event, as of the user's latest event.",
    columns=(
        _c("user_id", "text", "User identifier", not_null=True),
        _c("first_name", "text", "First name at the latest event"),
        _c("last_name", "text", "Last name at the latest event"),
        _c("gender", "text", "Gender at the latest event"),
        _c("level", "text", "Subscription level at the latest event"),
    ),
    primary_key=("user_id",),
    diststyle="ALL",
    layout_reason="DISTSTYLE ALL: a small dimension copied to every node, so joins never move it.",
)

SONGS = Table(
    name="songs",
    description="Dimension: one row per catalog song.",
    columns=(
        _c("song_id", "text", "Song identifier", not_null=True),
        _c("title", "text", "Song title"),
        _c("artist_id", "text", "Artist identifier"),
        _c("year", "integer", "Release year; NULL when unknown (0 in the catalog)"),
        _c("duration", "double", "Duration in seconds"),
    ),
    primary_key=("song_id",),
    references=(Reference("artist_id", "artists", "artist_id"),),
    diststyle="KEY",
    distkey="song_id",
    sortkey=("song_id",),
    layout_reason="DISTKEY song_id: songs are looked up by song_id; the fact is distributed on user_id "
    "(see songplays), and so few plays match a song that moving them for the join costs little.",
)

ARTISTS = Table(
    name="artists",
    description=(
        "Dimension: one row per catalog artist. When the catalog gives an artist several names or "
        "places, the row kept is the song row with the most known values among name, location, "
        "latitude and longitude (an empty name or location is unknown), then the smallest song_id, "
        "then the smallest name, location, latitude and longitude (unknown last). Only values "
        "decide, never files, so the choice does not depend on file order or names, and known "
        "values win over NULL."
    ),
    columns=(
        _c("artist_id", "text", "Artist identifier", not_null=True),
        _c("name", "text", "Artist name"),
        _c("location", "text", "Artist location; NULL when unknown (empty in the catalog)"),
        _c("latitude", "double", "Artist latitude"),
        _c("longitude", "double", "Artist longitude"),
    ),
    primary_key=("artist_id",),
    diststyle="KEY",
    distkey="artist_id",
    sortkey=("artist_id",),
    layout_reason="DISTKEY artist_id: artists are joined on artist_id; the table is too large for ALL "
    "in a full catalog.",
)

TIME = Table(
    name="time",
    description="Dimension: one row per distinct songplays.start_time, broken into calendar units.",
    columns=(
        _c("start_time", "timestamp", "Time of a play, UTC", not_null=True),
        _c("hour", "integer", "Hour of day, 0-23"),
        _c("day", "integer", "Day of month"),
        _c("week", "integer", "ISO week of year"),
        _c("month", "integer", "Month, 1-12"),
        _c("year", "integer", "Year"),
        _c("weekday", "integer", "Day of week, 0 = Sunday ... 6 = Saturday (Redshift's DOW)"),
    ),
    primary_key=("start_time",),
    diststyle="ALL",
    sortkey=("start_time",),
    layout_reason="DISTSTYLE ALL: small, joined to songplays on start_time from every node.",
)

STAGING_REJECTS = Table(
    name="staging_rejects",
    description="Every raw event line or song object that could not be staged, with the reason.",
    columns=(
        _c("target_table", "text", "The staging table the record was meant for", not_null=True),
        _c("source_key", "text", "Lake key of the file", not_null=True),
        _c("source_line", "integer", "Line number where the record starts (1-based)", not_null=True),
        _c("source_date", "date", "Date of the log file; NULL for song files"),
        _c("reason", "text", "Why the record was rejected", not_null=True),
        _c("raw_text", "text", "The raw record, truncated to 1,000 characters"),
    ),
    lineage_columns=("source_key", "source_line", "source_date"),
    layout_reason="EVEN: small and append-mostly.",
)

STAGING_FILES = Table(
    name="staging_files",
    description="One row per lake file staged: what the loader read, for reconciliation and sensors.",
    columns=(
        _c("target_table", "text", "The staging table the file was loaded into", not_null=True),
        _c("source_key", "text", "Lake key of the file", not_null=True),
        _c("source_date", "date", "Date of the log file; NULL for song files"),
        _c("version", "text", "ETag (S3) or mtime and size (folder) of the file as loaded"),
        _c("bytes", "bigint", "Size of the file as loaded"),
        _c("records_read", "integer", "Raw records read from the file (lines or objects)", not_null=True),
        _c("rows_staged", "integer", "Records staged", not_null=True),
        _c("rows_rejected", "integer", "Records rejected", not_null=True),
    ),
    primary_key=("target_table", "source_key"),
    layout_reason="EVEN: tiny bookkeeping table.",
)

STAR_TABLES = (SONGPLAYS, USERS, SONGS, ARTISTS, TIME)
STAGING_TABLES = (STAGING_EVENTS, STAGING_SONGS, STAGING_REJECTS, STAGING_FILES)
ALL_TABLES = STAGING_TABLES + STAR_TABLES
TABLES = {t.name: t for t in ALL_TABLES}
