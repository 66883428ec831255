"""The lake file version each staged day was loaded from, recorded on the day's materialization
of `staging_events`, so that the log sensor compares the lake with what actually landed rather
than with what it once asked for (docs/sensors.md, "When a day fails")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sparkify_assets.resources.lake import LakeFile

# Partition-scoped metadata key on staging_events: the loaded file's LakeFile.version.
LAKE_VERSION = "sparkify/lake_version"
# The version of a day that has no file (never had one, or it was deleted): it was loaded empty.
NO_FILE = "deleted"


def day_versions(files: Iterable[LakeFile], partition_keys: Sequence[str]) -> dict[str, str]:
    """{partition key: version of its file, or NO_FILE} for the partitions a run stages."""
    by_day = {f.day.isoformat(): f.version for f in files if f.day is not None}
    return {key: by_day.get(key, NO_FILE) for key in partition_keys}
