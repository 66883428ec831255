"""A corpus of bad inputs (bad_lake/, hand-made) through the whole pipeline on DuckDB, PostgreSQL
and an S3 lake: every record is staged or rejected with a readable reason, the recoverable ones
load normally, and the reconciliation checks pass."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from sparkify_assets.parsing import RAW_TEXT_LIMIT
from sparkify_assets_tests.conftest import upload_folder
from sparkify_assets_tests.helpers import check_results, count, load, rows

BAD_LAKE = Path(__file__).resolve().parent / "bad_lake"
LOG = "log_data/2018/11/2018-11-{:02d}-events.json"

# key: (records read, rows staged, [reasons of the rejected records, in line order])
EXPECTED = {
    # BOM, CRLF endings, blank lines, a pretty-printed object, no final newline: all recoverable.
    LOG.format(1): (4, 4, []),
    LOG.format(2): (4, 2, ["invalid JSON: Expecting value", "truncated JSON at end of file"]),
    LOG.format(3): (
        5,
        1,
        [
            "missing required field ts",
            "missing required field sessionId",
            "missing required field page",
            "required field ts is null",
        ],
    ),
    LOG.format(4): (
        5,
        1,
        [
            'ts is not an integer: "1541100030000"',
            'length is not a number: "abc"',
            "itemInSession is not an integer: 1.5",
            "sessionId is not an integer: true",
        ],
    ),
    LOG.format(5): (
        4,
        1,
        [
            "ts is out of range: -5 is before 2000 or in the future",
            "ts is out of range: 32503680000000 is before 2000 or in the future",
            "userAgent is longer than 65535 bytes",
        ],
    ),
    LOG.format(6): (2, 1, ["invalid UTF-8 bytes"]),
    LOG.format(7): (1, 0, ["empty file"]),
    LOG.format(8): (2, 0, ["invalid JSON: Expecting value", "invalid JSON: Expecting value"]),
    LOG.format(9): (2, 1, ["not a JSON object but str"]),
    "song_data/A/A/A/TRAAAAA128F0000001.json": (1, 1, []),  # pretty-printed
    "song_data/A/A/B/TRAAABB128F0000002.json": (2, 2, []),  # two objects in one file
    "song_data/A/A/C/TRAAACC128F0000003.json": (1, 0, ["missing required field song_id"]),
    "song_data/A/A/D/TRAAADD128F0000004.json": (1, 0, ["empty file"]),  # zero bytes
    "song_data/A/A/E/TRAAAEE128F0000005.json": (2, 2, []),  # a JSON array of two songs
}


# What a Python exception's text or repr looks like, as opposed to a sentence for a person.
NOT_A_SENTENCE = re.compile(
    r"Traceback|\w+(Error|Exception)\b|<[^>]*>|\(char \d+\)|\bb'|\\x[0-9a-f]{2}|^\w+\(|\bNone\b|\bcodec\b"
)


def _readable(reason: str) -> bool:
    """One short line of words, starting with a word or a field name, and no exception repr."""
    return (
        0 < len(reason) <= 120
        and "\n" not in reason
        and reason == reason.strip()
        and re.match(r"^[a-zA-Z]+ ", reason) is not None
        and NOT_A_SENTENCE.search(reason) is None
    )


def test_the_readability_rule_tells_sentences_from_exceptions():
    assert _readable("invalid JSON: Expecting value")
    assert _readable('ts is not an integer: "1541100030000"')
    for raw in (
        "JSONDecodeError('Expecting value: line 1 column 1 (char 0)')",
        "Expecting value: line 1 column 1 (char 0)",
        "'utf-8' codec can't decode byte 0xff in position 3: invalid start byte",
        "invalid UTF-8 bytes: b'\\xff\\xfe'",
        "KeyError: 'ts'",
        "ValueError: invalid literal for int() with base 10: 'abc'",
        "missing required field <class 'str'>",
        "Traceback (most recent call last):",
    ):
        assert not _readable(raw), raw


def _assert_corpus(url: str, result) -> None:
    # Every reason in the table, on this backend, reads as a sentence, not an exception.
    reasons = [r for (r,) in rows(url, "staging_rejects", ["reason"])]
    assert len(reasons) == sum(len(v[2]) for v in EXPECTED.values())
    assert [r for r in reasons if not _readable(r)] == []
    files = {
        k: (r, s, j)
        for k, r, s, j in rows(
            url, "staging_files", ["source_key", "records_read", "rows_staged", "rows_rejected"]
        )
    }
    assert files == {k: (r, s, len(reasons)) for k, (r, s, reasons) in EXPECTED.items()}
    rejects = rows(url, "staging_rejects", ["source_key", "source_line", "reason"])
    got: dict[str, list[str]] = {}
    for key, _line, reason in sorted(rejects, key=lambda r: (r[0], r[1])):
        got.setdefault(key, []).append(reason)
    for key, (_, _, reasons) in EXPECTED.items():
        assert len(got.get(key, [])) == len(reasons), key
        for have, want in zip(got.get(key, []), reasons, strict=True):
            assert have.startswith(want), (key, have, want)
    # Rows actually in the tables, not just the loader's counts.
    assert count(url, "staging_events") == sum(
        s for k, (_, s, _) in EXPECTED.items() if k.startswith("log_data")
    )
    assert count(url, "staging_songs") == 5
    checks = check_results(result)
    assert checks["staging_events:reconcile_records"] is True
    assert checks["staging_songs:reconcile_records"] is True
    assert all(checks.values()), [k for k, ok in checks.items() if not ok]


def test_corpus_on_duckdb(duckdb_url):
    result = load(duckdb_url, str(BAD_LAKE))
    _assert_corpus(duckdb_url, result)
    # Lines are where the record starts. File 1: an event, a blank line, an event, the
    # pretty-printed object (18 keys, so 20 lines: 4 to 23), a blank line, the last event on 25.
    lines = [
        r[0]
        for r in rows(duckdb_url, "staging_events", ["source_line", "source_date"])
        if str(r[1]) == "2018-11-01"
    ]
    assert sorted(lines) == [1, 3, 4, 25]
    # Raw text is kept, truncated at the stated limit.
    raw = rows(duckdb_url, "staging_rejects", ["reason", "raw_text"])
    long = [t for reason, t in raw if reason.startswith("userAgent is longer")]
    assert len(long) == 1 and len(long[0]) == RAW_TEXT_LIMIT


def test_corpus_on_postgres(pg_url):
    result = load(pg_url, str(BAD_LAKE))
    _assert_corpus(pg_url, result)


def test_corpus_in_s3_with_a_zero_byte_object(aws_env, duckdb_url):
    bucket = f"bad-lake-{uuid.uuid4().hex[:8]}"
    sent = upload_folder(BAD_LAKE, bucket, "raw")
    assert sent == len(EXPECTED)
    result = load(duckdb_url, f"s3://{bucket}/raw")
    _assert_corpus(duckdb_url, result)


def test_staging_metadata_reports_rejects(duckdb_url):
    result = load(duckdb_url, str(BAD_LAKE))
    meta = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert meta["staging_events"]["rows_rejected"].value == 18  # 2+4+4+3+1+1+2+1, from EXPECTED
    assert meta["staging_events"]["records_read"].value == 29
    # One event per day: each carries its own day's rows; run_rows is the run's total.
    assert meta["staging_events"]["run_rows"].value == 11
    per_day = [
        e.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "staging_events"
    ]
    assert sum(per_day) == 11
    assert meta["staging_songs"]["rows_rejected"].value == 2


@pytest.mark.parametrize("name", ["missing", "empty"])
def test_lake_without_logs_is_a_clear_error(tmp_path, duckdb_url, name):
    lake = tmp_path / "lake"
    if name == "empty":
        (lake / "log_data").mkdir(parents=True)
    with pytest.raises(Exception) as info:
        load(duckdb_url, str(lake))
    message = str(info.value)
    if name == "missing":
        assert "does not exist" in message and "SPARKIFY_LAKE_URL" in message
    else:
        assert "holds no log files" in message
