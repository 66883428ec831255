"""The lake's raw files as external assets, so the UI's lineage starts where the data does.

Dagster does not materialize these: the app writes them. They exist so an analyst can follow a
number from an analytics table back through the star and staging tables to the raw JSON, and so
the sensors' runs (docs/sensors.md) read as updates of what these assets describe.
"""

from dagster import AssetKey, AssetSpec

from sparkify_assets.metadata import ENGINEERING_OWNERS

LOG_DATA = AssetKey(["lake", "log_data"])
SONG_DATA = AssetKey(["lake", "song_data"])

# build_defs adds the lake's kind (s3 for a bucket) and dagster/uri, from the lake resource.
_KINDS = {"json"}


def _lake_spec(key: AssetKey, description: str) -> AssetSpec:
    return AssetSpec(
        key,
        description=description,
        group_name="lake",
        kinds=_KINDS,
        owners=ENGINEERING_OWNERS,
        tags={"layer": "lake", "source": key.path[-1]},
    )


LAKE_ASSETS = [
    _lake_spec(
        LOG_DATA,
        "The app's activity logs: `log_data/YYYY/MM/YYYY-MM-DD-events.json`, JSON Lines, one "
        "event per line, one file per day. Written by the app; watched by `sparkify_log_sensor`.",
    ),
    _lake_spec(
        SONG_DATA,
        "The song catalog: `song_data/<A>/<B>/<C>/TR….json`, one song object per file. Written by "
        "the catalog export; watched by `sparkify_song_sensor`.",
    ),
]
