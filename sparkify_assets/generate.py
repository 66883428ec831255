"""`sparkify generate`: realistic Sparkify lakes of any size.

    sparkify generate --events 1000000 --songs 100000 --users 1000 --days 30 --seed 1 --out /tmp/lake

The lake has the real layout and formats (see generator_catalog.py and generator_events.py):
one song per file in song_data/A/B/C/, one JSON Lines file per day in log_data/YYYY/MM/. The
same arguments give the same bytes: every random draw comes from random.Random streams seeded
from --seed. Days are streamed one after another, so memory does not grow with --events.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta

from sparkify_assets.errors import UsageError
from sparkify_assets.generator_catalog import missing_songs, write_catalog
from sparkify_assets.generator_events import EventStream, make_users
from sparkify_assets.generator_output import Sink, open_sink
from sparkify_assets.partitions import FIRST_DAY

SONG_PROGRESS_EVERY = 10_000
# Progress follows time, not items: one line at most this often, and the last line of each part.
PROGRESS_SECONDS = 2.0


@dataclass(frozen=True)
class LakeSpec:
    events: int = 10_000
    songs: int = 1_000
    users: int = 100
    days: int = 30
    seed: int = 0
    start: date = date.fromisoformat(FIRST_DAY)
    miss_rate: float = 0.2  # share of plays naming a song the catalog lacks

    def validate(self) -> None:
        if self.events < 0 or self.songs < 0:
            raise UsageError("--events and --songs cannot be negative")
        if self.users < 1 or self.days < 1:
            raise UsageError("--users and --days must be at least 1")
        if not 0.0 <= self.miss_rate <= 1.0:
            raise UsageError("--miss-rate is a share between 0 and 1")
        if self.start < date.fromisoformat(FIRST_DAY):
            raise UsageError(f"--start must be on or after {FIRST_DAY}, the first daily partition")


def log_key(day: date) -> str:
    return f"log_data/{day:%Y}/{day:%m}/{day.isoformat()}-events.json"


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = self.last = time.monotonic()

    def say(self, text: str, final: bool = False) -> None:
        """Print `text` if PROGRESS_SECONDS passed since the last line, or if it ends a part."""
        now = time.monotonic()
        if self.enabled and (final or now - self.last >= PROGRESS_SECONDS):
            self.last = now
            print(f"[{now - self.t0:7.1f}s] {text}", file=sys.stderr, flush=True)


def generate_lake(spec: LakeSpec, sink: Sink, progress: bool = False) -> dict[str, int]:
    """Write a whole lake to `sink`; return what was written."""
    spec.validate()
    say = _Progress(progress).say
    # Separate streams, so the events do not shift when only the catalog size changes.
    catalog_rng = random.Random(f"{spec.seed}:catalog")
    events_rng = random.Random(f"{spec.seed}:events")

    def song_progress(n: int) -> None:
        if n % SONG_PROGRESS_EVERY == 0 or n == spec.songs:
            say(f"song_data: {n:,}/{spec.songs:,} files", final=n == spec.songs)

    catalog = write_catalog(catalog_rng, spec.songs, sink.write, song_progress)
    missing = missing_songs(catalog_rng, catalog, max(50, spec.songs // 5))
    users, user_cum = make_users(events_rng, spec.users, spec.start)
    stream = EventStream(events_rng, users, user_cum, catalog, missing, spec.miss_rate)
    written = files = 0
    last_day = max(
        (d for d in range(spec.days) if spec.events // spec.days or d < spec.events % spec.days), default=-1
    )
    for d in range(spec.days):
        quota = spec.events // spec.days + (1 if d < spec.events % spec.days else 0)
        day = spec.start + timedelta(days=d)
        if quota == 0:
            continue  # an empty log file would only be rejected as empty
        written += sink.write_lines(log_key(day), stream.day_lines(day, quota))
        files += 1
        say(
            f"log_data: {day} done, {written:,}/{spec.events:,} events ({written / max(spec.events, 1):.0%})",
            final=d == last_day,
        )
    sink.close()
    return {"events": written, "log_files": files, "songs": spec.songs, "users": spec.users}


def cmd_generate(args: argparse.Namespace) -> int:
    spec = LakeSpec(
        events=args.events,
        songs=args.songs,
        users=args.users,
        days=args.days,
        seed=args.seed,
        start=date.fromisoformat(args.start),
        miss_rate=args.miss_rate,
    )
    spec.validate()
    sink = open_sink(args.out)
    sink.check_empty()
    done = generate_lake(spec, sink, progress=not args.quiet)
    print(
        f"wrote {done['events']:,} events in {done['log_files']} daily log files and "
        f"{done['songs']:,} song files to {sink.url}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `generate` subcommand to the `sparkify` parser."""
    d = LakeSpec()
    p = sub.add_parser(
        "generate",
        help="write a realistic lake of any size (same seed, same bytes)",
        description="Write a Sparkify lake in the real layout and formats: log_data/YYYY/MM/*.json "
        "(JSON Lines, one file per day) and song_data/A/B/C/TR*.json (one song per file).",
    )
    p.add_argument(
        "--out", required=True, help="a new local folder, or s3://bucket/prefix (bucket must exist)"
    )
    p.add_argument("--events", type=int, default=d.events, help=f"events in all (default {d.events:,})")
    p.add_argument("--songs", type=int, default=d.songs, help=f"song files (default {d.songs:,})")
    p.add_argument("--users", type=int, default=d.users, help=f"users (default {d.users:,})")
    p.add_argument("--days", type=int, default=d.days, help=f"days of logs (default {d.days})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--start", default=d.start.isoformat(), help=f"first day (default {d.start})")
    p.add_argument(
        "--miss-rate",
        type=float,
        default=d.miss_rate,
        help=f"share of plays of songs not in the catalog (default {d.miss_rate})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_generate)
