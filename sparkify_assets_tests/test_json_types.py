"""Types as the engines read JSON (DESIGN.md section 2), through the whole pipeline on DuckDB and
PostgreSQL: a number or boolean in a text field is stored as its JSON text as written; a value
that cannot be read as its column's type is a reject with its reason, and so is text no
warehouse can store (a lone surrogate escape). The lake and expectations are hand-made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkify_assets_tests.helpers import WAREHOUSE_FIXTURES, count, load, rows

BASE = {
    "artist": "Artist",
    "auth": "Logged In",
    "firstName": "Ann",
    "gender": "F",
    "itemInSession": 0,
    "lastName": "Lee",
    "length": 200.5,
    "level": "free",
    "location": "Paris",
    "method": "PUT",
    "page": "NextSong",
    "registration": 1540919166796.0,
    "sessionId": 1,
    "song": "Song",
    "status": 200,
    "ts": 1541030400000,
    "userAgent": "Mozilla",
    "userId": "7",
}


def _line(n: int, raw: dict[str, str]) -> str:
    """Event `n` (its own ts, so its own songplay_id), whose named fields hold the given raw JSON
    text, exactly as written."""
    obj = {**BASE, "ts": BASE["ts"] + n, **{k: f"@@{k}@@" for k in raw}}
    text = json.dumps(obj)
    for key, value in raw.items():
        text = text.replace(f'"@@{key}@@"', value)
    return text


# (raw JSON of some fields, what staging_events holds for them, or the reject's reason)
EVENTS = [
    ({"song": "3.14"}, {"song": "3.14"}),
    ({"artist": "1984", "song": "1e400"}, {"artist": "1984", "song": "1e400"}),
    ({"firstName": "true", "lastName": "false"}, {"first_name": "true", "last_name": "false"}),
    ({"userAgent": "1.10", "location": "1E5"}, {"user_agent": "1.10", "location": "1E5"}),
    ({"userId": "17", "level": "-0.0"}, {"user_id": "17", "level": "-0.0"}),
    ({"length": '"abc"'}, 'length is not a number: "abc"'),
    ({"itemInSession": "1.5"}, "itemInSession is not an integer: 1.5"),
    ({"sessionId": '"7"'}, 'sessionId is not an integer: "7"'),
    ({"lastName": '{"a": 1}'}, 'lastName is not text: {"a": 1}'),
    ({"lastName": '"\\ud800"'}, "lastName holds an invalid Unicode escape (a lone surrogate)"),
    ({"length": "1" + "0" * 400}, "length is not a finite number"),
]
SONG = {
    "num_songs": 1,
    "artist_id": "AR1",
    "artist_latitude": None,
    "artist_longitude": None,
    "artist_location": "",
    "artist_name": "Name",
    "song_id": "SO1",
    "title": "Title",
    "duration": 100.0,
    "year": 2000,
}


def _lake(root: Path) -> Path:
    day = root / "log_data/2018/11/2018-11-01-events.json"
    day.parent.mkdir(parents=True)
    day.write_text("\n".join(_line(n, raw) for n, (raw, _) in enumerate(EVENTS)) + "\n")
    songs = root / "song_data/A/A/A"
    songs.mkdir(parents=True)
    (songs / "TRA1.json").write_text(json.dumps({**SONG, "title": 1984, "artist_name": True}))
    (songs / "TRA2.json").write_text(json.dumps({**SONG, "song_id": "SO2", "year": "1999"}))
    return root


@pytest.mark.parametrize("backend", sorted(WAREHOUSE_FIXTURES))
def test_numbers_and_booleans_in_text_fields_are_their_json_text(request, backend, tmp_path):
    url = request.getfixturevalue(WAREHOUSE_FIXTURES[backend])
    load(url, str(_lake(tmp_path / "lake")))

    staged = [want for _, want in EVENTS if isinstance(want, dict)]
    columns = sorted({c for want in staged for c in want})
    got = rows(url, "staging_events", ["source_line", *columns])
    lines = [i + 1 for i, (_, want) in enumerate(EVENTS) if isinstance(want, dict)]
    assert [r[0] for r in got] == lines
    for row, want in zip(got, staged, strict=True):
        values = dict(zip(columns, row[1:], strict=True))
        assert {c: values[c] for c in want} == want

    rejects = rows(url, "staging_rejects", ["source_key", "source_line", "reason"])
    assert sorted((line, reason) for key, line, reason in rejects if key.startswith("log_data")) == [
        (i + 1, want) for i, (_, want) in enumerate(EVENTS) if isinstance(want, str)
    ]
    # Songs: a number and a boolean in text fields load; text where the year (an integer) is
    # declared does not.
    assert rows(url, "staging_songs", ["song_id", "title", "artist_name"]) == [("SO1", "1984", "true")]
    assert [(k, r) for k, _, r in rejects if k.startswith("song_data")] == [
        ("song_data/A/A/A/TRA2.json", 'year is not an integer: "1999"')
    ]
    assert rows(url, "songs", ["song_id", "title"]) == [("SO1", "1984")]
    assert count(url, "songplays") == len(staged)
