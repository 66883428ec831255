"""The song catalog of a generated lake: one JSON object per file under song_data/A/B/C/.

Files are written as they are made; only what the event generator needs to pick plays (title,
artist name, duration) stays in memory, so memory follows the catalog, never the event count.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from sparkify_assets.generator_words import (
    ARTIST_PLACES,
    ARTIST_WORDS,
    FIRST_NAMES_F,
    LAST_NAMES,
    TITLE_WORDS,
)

ARTISTS_PER_SONG = 0.6  # the Million Song Dataset subset has fewer artists than songs
VARIANT_ARTIST_SHARE = 0.15  # artists that appear under several spellings
VARIANT_SONG_SHARE = 0.35  # songs of such an artist that use a variant spelling
RERELEASE_SHARE = 0.02  # same title and artist as another song, other duration and song_id
YEAR_UNKNOWN_SHARE = 0.55  # year 0 in the catalog (43 of 71 in the sample)
COORDS_SHARE = 0.45  # artists with a latitude and longitude (31 of 71 in the sample)
EMPTY_LOCATION_SHARE = 0.4  # empty artist_location (28 of 71 in the sample)

_ID_HEAD = string.ascii_uppercase + string.digits
_ID_TAIL = "0123456789ABCDEF"


@dataclass(frozen=True, slots=True)
class PlayableSong:
    """What an event needs to name a song: the log carries title, artist name and length."""

    title: str
    artist: str
    duration: float


@dataclass
class _Artist:
    artist_id: str
    names: list[str]
    location: str
    latitude: float | None
    longitude: float | None


def msd_id(rng: random.Random, prefix: str) -> str:
    """An 18-character Million Song Dataset style id, e.g. SOGVQGJ12AB017F169."""
    head = "".join(rng.choice(_ID_HEAD) for _ in range(5))
    return prefix + head + "".join(rng.choice(_ID_TAIL) for _ in range(11))


def track_id(rng: random.Random) -> str:
    """TR + three letters (the folder path) + 13 characters, as TRABBNP128F932546F."""
    return "TR" + "".join(rng.choice(string.ascii_uppercase) for _ in range(5)) + msd_id(rng, "")[:11]


def song_key(tid: str) -> str:
    """song_data/A/B/B/TRABB….json: the folders are the track id's third to fifth letters."""
    return f"song_data/{tid[2]}/{tid[3]}/{tid[4]}/{tid}.json"


def title(rng: random.Random) -> str:
    words = [rng.choice(TITLE_WORDS) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))]
    return " ".join(words).capitalize()


def artist_name(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return f"{rng.choice(FIRST_NAMES_F)} {rng.choice(LAST_NAMES)}"
    return " ".join(rng.choice(ARTIST_WORDS) for _ in range(rng.choice((1, 1, 2, 3))))


def _spellings(rng: random.Random, name: str) -> list[str]:
    """The ways real catalogs write one artist: with "The", a featured guest, or another case."""
    variants = [
        f"The {name}",
        f"{name} featuring {rng.choice(FIRST_NAMES_F)} {rng.choice(LAST_NAMES)}",
        f"{name} & {rng.choice(ARTIST_WORDS)}",
        name.upper(),
    ]
    return [name, *rng.sample(variants, rng.choice((1, 2)))]


def _make_artist(rng: random.Random) -> _Artist:
    name = artist_name(rng)
    names = _spellings(rng, name) if rng.random() < VARIANT_ARTIST_SHARE else [name]
    has_coords = rng.random() < COORDS_SHARE
    return _Artist(
        artist_id=msd_id(rng, "AR"),
        names=names,
        location="" if rng.random() < EMPTY_LOCATION_SHARE else rng.choice(ARTIST_PLACES),
        latitude=round(rng.uniform(-60, 70), 5) if has_coords else None,
        longitude=round(rng.uniform(-160, 170), 5) if has_coords else None,
    )


def song_json(obj: dict) -> bytes:
    """A song file's bytes: Python's default spacing, ASCII with \\u escapes, no final newline."""
    return json.dumps(obj).encode("ascii")


def duration(rng: random.Random) -> float:
    # Log-normal around 3.7 minutes, like popular music; five decimals as in the catalog.
    return round(min(max(rng.lognormvariate(5.4, 0.35), 20.0), 1800.0), 5)


def write_catalog(
    rng: random.Random,
    n_songs: int,
    write: Callable[[str, bytes], None],
    progress: Callable[[int], None] | None = None,
) -> list[PlayableSong]:
    """Write `n_songs` song files through `write(key, bytes)`; return what plays can name."""
    artists = [_make_artist(rng) for _ in range(max(1, round(n_songs * ARTISTS_PER_SONG)))]
    tids: set[str] = set()
    song_ids: set[str] = set()
    playable: list[PlayableSong] = []
    artist_of: list[int] = []  # index into `artists` of each song, for re-releases
    for i in range(n_songs):
        tid = _unused(tids, lambda: track_id(rng))
        sid = _unused(song_ids, lambda: msd_id(rng, "SO"))
        a, name, song_title = _credit(rng, artists, playable, artist_of)
        obj = _song_file(rng, artists[a], name, sid, song_title)
        write(song_key(tid), song_json(obj))
        playable.append(PlayableSong(song_title, name, obj["duration"]))
        artist_of.append(a)
        if progress:
            progress(i + 1)
    return playable


def _unused(taken: set[str], draw: Callable[[], str]) -> str:
    """A fresh draw not in `taken`, added to it."""
    value = draw()
    while value in taken:
        value = draw()
    taken.add(value)
    return value


def _credit(
    rng: random.Random, artists: list[_Artist], playable: list[PlayableSong], artist_of: list[int]
) -> tuple[int, str, str]:
    """The next song's artist (an index into `artists`), artist name as spelt, and title."""
    if playable and rng.random() < RERELEASE_SHARE:
        # A re-release: the same title and artist spelling under another song_id.
        k = rng.randrange(len(playable))
        return artist_of[k], playable[k].artist, playable[k].title
    # Skewed: a few prolific artists, a long tail with one song each.
    a = int(len(artists) * rng.random() ** 1.6)
    artist = artists[a]
    use_variant = len(artist.names) > 1 and rng.random() < VARIANT_SONG_SHARE
    name = rng.choice(artist.names[1:]) if use_variant else artist.names[0]
    return a, name, title(rng)


def _song_file(rng: random.Random, artist: _Artist, name: str, song_id: str, song_title: str) -> dict:
    """A song file's fields, in the catalog's order."""
    # Real catalogs also disagree on an artist's place from one song to the next.
    blank_place = rng.random() < 0.1
    return {
        "num_songs": 1,
        "artist_id": artist.artist_id,
        "artist_latitude": None if blank_place else artist.latitude,
        "artist_longitude": None if blank_place else artist.longitude,
        "artist_location": "" if blank_place else artist.location,
        "artist_name": name,
        "song_id": song_id,
        "title": song_title,
        "duration": duration(rng),
        "year": 0 if rng.random() < YEAR_UNKNOWN_SHARE else rng.randint(1955, 2010),
    }


def missing_songs(rng: random.Random, catalog: list[PlayableSong], count: int) -> list[PlayableSong]:
    """Songs that plays name but the catalog lacks (most real plays match no catalog song)."""
    known = {(s.title, s.artist) for s in catalog}
    out: list[PlayableSong] = []
    while len(out) < count:
        song = PlayableSong(title(rng), artist_name(rng), duration(rng))
        if (song.title, song.artist) not in known:
            known.add((song.title, song.artist))
            out.append(song)
    return out
