"""Column lineage of the star and analytics tables, derived from their SQL files.

Which upstream columns feed each column is read from `sql/<table>.sql` by sqlglot's lineage,
but not when the definitions load: `derive()` writes it to `lineage.json` beside this module,
and the definitions read that file. sqlglot stays a test dependency (importing it cost ~0.5 s
of every process that loads the code location, benchmarks/README.md), and a test regenerates
the file and fails when it differs from the SQL, so the committed lineage cannot go stale.

    python -m sparkify_assets.lineage          # rewrite lineage.json after changing a SQL file
    python -m sparkify_assets.lineage --check  # exit 1 if lineage.json is out of date
"""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from pathlib import Path

from dagster import AssetKey, TableColumnDep, TableColumnLineage

from sparkify_assets.tables import STAR_TABLES, TABLES, TYPES, Table

LINEAGE_FILE = Path(__file__).with_name("lineage.json")

# {table: {column: ["upstream_table.upstream_column", ...]}}; a column computed from no column
# (COUNT(*)) has an empty list.
Lineage = dict[str, dict[str, list[str]]]


def _derived_tables() -> tuple[Table, ...]:
    from sparkify_assets.assets.analytics import ANALYTICS_TABLES

    return (*STAR_TABLES, *ANALYTICS_TABLES)


def derive() -> Lineage:
    """Each column's upstream columns, by sqlglot's lineage over the table's SQL file."""
    from sqlglot import exp
    from sqlglot.lineage import lineage

    tables = _derived_tables()
    schema = {
        t.name: {c.name: TYPES[c.type]["duckdb"] for c in t.columns} for t in (*TABLES.values(), *tables)
    }
    result: Lineage = {}
    for table in tables:
        # songplays' partition condition is filled in at run time; it selects rows, not columns.
        sql = table.transform_sql().replace("{partition_filter}", "TRUE")
        result[table.name] = {}
        for column in table.column_names:
            root = lineage(column, sql, schema=schema, dialect="duckdb")
            sources = {
                (node.source.name, node.name.split(".")[-1])
                for node in root.walk()
                if isinstance(node.source, exp.Table) and not node.downstream
            }
            result[table.name][column] = [f"{t}.{c}" for t, c in sorted(sources)]
    return result


def render(lineage: Lineage) -> str:
    """One line per column, so a diff of the file reads as a diff of the lineage."""
    lines = []
    for name in sorted(lineage):
        cols = [f"    {json.dumps(c)}: {json.dumps(lineage[name][c])}" for c in lineage[name]]
        lines.append(f"  {json.dumps(name)}: {{\n" + ",\n".join(cols) + "\n  }")
    return "{\n" + ",\n".join(lines) + "\n}\n"


@cache
def committed() -> Lineage:
    """The lineage committed in lineage.json (read once per process)."""
    text = resources.files("sparkify_assets").joinpath(LINEAGE_FILE.name).read_text()
    return json.loads(text)


def column_lineage(table: Table) -> TableColumnLineage | None:
    """`dagster/column_lineage` for a star or analytics table; None for tables loaded from the lake."""
    columns = committed().get(table.name)
    if columns is None:
        return None
    return TableColumnLineage(
        deps_by_column={
            column: [
                TableColumnDep(asset_key=AssetKey(t), column_name=c)
                for t, c in (source.split(".") for source in sources)
            ]
            for column, sources in columns.items()
            if sources
        }
    )


def main(argv: list[str] | None = None) -> int:
    text = render(derive())
    if "--check" in (argv if argv is not None else sys.argv[1:]):
        if LINEAGE_FILE.read_text() != text:
            print(f"{LINEAGE_FILE} is out of date: run `python -m sparkify_assets.lineage`", file=sys.stderr)
            return 1
        return 0
    LINEAGE_FILE.write_text(text)
    print(f"wrote {LINEAGE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
