"""Dagster metadata derived from the table declarations and the warehouse's contents."""

from __future__ import annotations

from dagster import MetadataValue, TableColumn, TableSchema

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


def column_schema(table: Table) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=None,
            )
            for c in table.columns
        ]
    )


def definition_metadata(table: Table) -> dict:
    """Static metadata shown on the asset before it is ever materialized."""
    meta = {
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": table.name,
    }
    if table.primary_key:
        meta["primary_key"] = ", ".join(table.primary_key)
    if table.partition_column:
        meta["partition_column"] = table.partition_column
    if table.layout_reason:
        meta["redshift_layout"] = MetadataValue.md(
            f"`DISTSTYLE {table.diststyle}`"
            + (f" `DISTKEY ({table.distkey})`" if table.distkey else "")
            + (f" `SORTKEY ({', '.join(table.sortkey)})`" if table.sortkey else "")
            + f": {table.layout_reason}"
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
    """Row count, column schema and a small preview of what a materialization wrote."""
    cols = table.contract_columns
    order = ", ".join(table.primary_key or cols[:1])
    preview = tx.query(
        f"SELECT {', '.join(cols)} FROM {table.name} WHERE {where} ORDER BY {order} LIMIT {PREVIEW_ROWS}"
    )
    return {
        "dagster/row_count": row_count,
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": table.name,
        "table_rows": tx.scalar(f"SELECT COUNT(*) FROM {table.name}"),
        "preview": MetadataValue.md(markdown_table(cols, preview)),
    }
