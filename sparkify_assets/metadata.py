"""Dagster metadata derived from the table declarations and the warehouse's contents."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from dagster import (
    AssetExecutionContext,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
)

from sparkify_assets.lineage import column_lineage
from sparkify_assets.partitions import date_filter
from sparkify_assets.resources.warehouse import Session
from sparkify_assets.tables import Table

PREVIEW_ROWS = 5

# Who answers for each layer: data engineering owns what loads and models the lake; the
# analytics team owns its answers (assets/analytics.py).
ENGINEERING_OWNERS = ["team:data-engineering"]
ANALYTICS_OWNERS = ["team:analytics"]


def layer_tags(layer: str, source: str) -> dict[str, str]:
    """Tags the UI can filter on: the layer (staging, star, analytics) and where rows come from."""
    return {"layer": layer, "source": source}


def column_constraints(table: Table, column: str, nullable: bool) -> TableColumnConstraints:
    """Nullability (as declared, or as the live table has it), uniqueness from a one-column
    primary key, and the key and references as text (the asset checks verify them: no backend
    enforces them, see Table.ddl)."""
    other = [f"references {r.table}.{r.to_column}" for r in table.references if r.column == column]
    if column in table.primary_key and len(table.primary_key) > 1:
        other.insert(0, f"part of the primary key ({', '.join(table.primary_key)})")
    return TableColumnConstraints(
        nullable=nullable, unique=table.primary_key == (column,), other=other or None
    )


def column_schema(table: Table) -> TableSchema:
    """The declared schema, shown on the asset before it is materialized."""
    return TableSchema(
        columns=[
            TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=column_constraints(table, c.name, nullable=not c.not_null),
            )
            for c in table.columns
        ]
    )


def live_column_schema(tx: Session, table: Table) -> TableSchema:
    """The schema of the table as the warehouse holds it (types as the backend names them)."""
    declared = {c.name: c for c in table.columns}
    return TableSchema(
        columns=[
            TableColumn(
                name=live.name,
                type=live.type,
                description=declared[live.name].description if live.name in declared else None,
                constraints=column_constraints(table, live.name, nullable=live.nullable),
            )
            for live in tx.live_columns(table.name)
        ]
    )


def sql_code_reference(table: Table) -> dict:
    """`dagster/code_references` to the table's SQL file (with_source_code_references adds the
    Python definition beside it when the definitions are built)."""
    path = table.sql_path
    if path is None:
        return {}
    ref = LocalFileCodeReference(file_path=str(path), label=f"SQL: sql/{path.name}")
    return {"dagster/code_references": CodeReferencesMetadataValue(code_references=[ref])}


def definition_metadata(table: Table) -> dict:
    """Static metadata shown on the asset before it is ever materialized."""
    meta = {
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": table.name,
        **sql_code_reference(table),
    }
    lineage = column_lineage(table)
    if lineage is not None:
        meta["dagster/column_lineage"] = lineage
    if table.primary_key:
        meta["primary_key"] = ", ".join(table.primary_key)
    if table.partition_column:
        meta["partition_column"] = table.partition_column
        meta["row_counts"] = PARTITION_ROW_COUNTS
    if table.layout_reason:
        meta["redshift_layout"] = MetadataValue.md(
            f"`DISTSTYLE {table.diststyle}`"
            + (f" `DISTKEY ({table.distkey})`" if table.distkey else "")
            + (f" `SORTKEY ({', '.join(table.sortkey)})`" if table.sortkey else "")
            # A reason that starts by naming the style again ("DISTSTYLE ALL: …", "EVEN: …") is not repeated.
            + f": {table.layout_reason.removeprefix(f'DISTSTYLE {table.diststyle}: ').removeprefix(f'{table.diststyle}: ')}"
        )
    return meta


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:60]


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def materialization_metadata(tx: Session, table: Table, row_count: int, where: str = "TRUE") -> dict:
    """Row count, column schema and a small preview of what a materialization wrote.

    For a daily-partitioned table, `where` selects the run's days and `row_count` counts them:
    it is reported as `run_rows`, and as `dagster/row_count` only until `report_partition_rows`
    gives each day's event its own count (a single run over many days emits one materialization
    per day, and without it every day would show the whole range's rows).
    """
    cols = table.contract_columns
    order = ", ".join(table.primary_key or cols[:1])
    preview = tx.query(
        f"SELECT {', '.join(cols)} FROM {table.name} WHERE {where} ORDER BY {order} LIMIT {PREVIEW_ROWS}"
    )
    meta = {
        "dagster/row_count": row_count,
        "dagster/column_schema": live_column_schema(tx, table),
        "table_rows": tx.scalar(f"SELECT COUNT(*) FROM {table.name}"),
        "preview": MetadataValue.md(markdown_table(cols, preview)),
    }
    lineage = column_lineage(table)
    if lineage is not None:
        meta["dagster/column_lineage"] = lineage
    if table.partition_column:
        meta["run_rows"] = row_count
    return meta


# How the row counts of a daily-partitioned asset read in the UI; shown on its definition.
PARTITION_ROW_COUNTS = MetadataValue.md(
    "Each day (partition) gets its own materialization event, also when one run loads many days:\n\n"
    '- `dagster/row_count` ("Row count"): the rows of **that day** (the partitions are the days of the lake, each with a log file),\n'
    "- `run_rows`: the rows the run wrote over all its days,\n"
    "- `table_rows`: the whole table after the run,\n"
    "- `preview`: the first rows of the run's days."
)


def partition_row_counts(tx: Session, table: Table, first: date, last: date) -> dict[str, int]:
    """Rows of a daily-partitioned table per day in first..last, keyed by partition key
    (YYYY-MM-DD); a day without rows is absent."""
    col = table.partition_column
    got = tx.query(
        f"SELECT {col}, COUNT(*) FROM {table.name} WHERE {date_filter(col, first, last)} GROUP BY {col}"
    )
    return {(day if isinstance(day, str) else day.isoformat())[:10]: int(n) for day, n in got}


def report_partition_rows(context: AssetExecutionContext, counts: Mapping[str, int]) -> None:
    """Give each partition this run materializes its own `dagster/row_count` (0 when absent from
    `counts`). Dagster merges partition-scoped metadata over the MaterializeResult's, event by event
    (`context.add_asset_metadata(..., partition_key=...)`, Dagster 1.13)."""
    for key in context.partition_keys:
        context.add_asset_metadata({"dagster/row_count": int(counts.get(key, 0))}, partition_key=key)
