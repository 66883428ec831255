"""The app events of a generated lake: one JSON Lines file per day, in the real field order.

A day is made in two steps. First its sessions are drawn (user, length, start time) until the
day's event quota is met exactly; then the sessions are merged by time through a heap, and each
event is drawn only when it is written. Memory holds one small record per session of the day,
never the events, and the events of a file come out in time order as in the real logs.
"""

from __future__ import annotations

import heapq
import json
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from itertools import accumulate

from sparkify_assets.generator_catalog import PlayableSong
from sparkify_assets.generator_words import FIRST_NAMES_F, FIRST_NAMES_M, LAST_NAMES, LOCATIONS, USER_AGENTS

ZIPF_EXPONENT = 1.0  # song popularity: the r-th most popular song is played in proportion to 1/r
MEAN_SESSION = 9  # events per session (8.6 in the sample)
MAX_SESSION = 150
ANONYMOUS_SHARE = 0.03  # sessions of visitors who never log in
LOGIN_SHARE = 0.08  # sessions that start logged out and then log in
PAID_SHARE = 0.3
UPGRADE_SUBMIT = 0.3  # after the Upgrade page, chance the next event submits it
DOWNGRADE_SUBMIT = 0.15
# Every ts in the real logs ends in 796 ms: eventsim ticks in seconds from an odd origin.
MS_SUFFIX = 796

HTTP = {
    "NextSong": ("PUT", 200),
    "Home": ("GET", 200),
    "Login": ("PUT", 307),
    "Logout": ("PUT", 307),
    "Upgrade": ("GET", 200),
    "Downgrade": ("GET", 200),
    "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307),
    "Settings": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Help": ("GET", 200),
    "About": ("GET", 200),
    "Error": ("GET", 404),
}
# Mid-session pages of a logged-in user, weighted like the sample; "Change" is Upgrade or
# Downgrade depending on the user's level.
_PAGES = ("NextSong", "Home", "Change", "Settings", "Help", "About", "Save Settings", "Error")
_PAGE_CUM = list(accumulate((0.84, 0.075, 0.012, 0.007, 0.005, 0.003, 0.0013, 0.0012)))
_OUT_PAGES = ("Home", "Home", "Home", "About", "Help")

_LOGGED_IN = (
    '{"artist":%s,"auth":"Logged In","firstName":%s,"gender":%s,"itemInSession":%d,"lastName":%s,'
    '"length":%s,"level":"%s","location":%s,"method":"%s","page":"%s","registration":%s,"sessionId":%d,'
    '"song":%s,"status":%d,"ts":%d,"userAgent":%s,"userId":%s}'
)
_LOGGED_OUT = (
    '{"artist":null,"auth":"Logged Out","firstName":null,"gender":null,"itemInSession":%d,"lastName":null,'
    '"length":null,"level":"%s","location":null,"method":"%s","page":"%s","registration":null,"sessionId":%d,'
    '"song":null,"status":%d,"ts":%d,"userAgent":null,"userId":""}'
)


def enc(value: str) -> str:
    """A JSON string as the real logs write it: ASCII with \\u escapes and slashes escaped."""
    return json.dumps(value).replace("/", "\\/")


@dataclass(slots=True)
class User:
    user_id: str
    level: str
    # Pre-encoded JSON values: each event reuses them.
    first: str
    last: str
    gender: str
    location: str
    agent: str
    registration: str


def make_users(rng: random.Random, n_users: int, start: date) -> tuple[list[User], list[float]]:
    """Users "1".."n" and cumulative activity weights (a few heavy listeners, a long tail)."""
    start_s = _epoch(start)
    users, weights = [], []
    for i in range(n_users):
        gender = rng.choice("MF")
        first = rng.choice(FIRST_NAMES_M if gender == "M" else FIRST_NAMES_F)
        registered = start_s - rng.randint(1, 200) * 86400 - rng.randint(0, 86399)
        level = "paid" if rng.random() < PAID_SHARE else "free"
        users.append(
            User(
                user_id=enc(str(i + 1)),
                level=level,
                first=enc(first),
                last=enc(rng.choice(LAST_NAMES)),
                gender=enc(gender),
                location=enc(rng.choice(LOCATIONS)),
                agent=enc(rng.choice(USER_AGENTS)),
                registration=repr(float(registered * 1000 + MS_SUFFIX)),
            )
        )
        # Paid users listen more: most events of the sample are paid.
        weights.append(rng.lognormvariate(0, 1) * (2.5 if level == "paid" else 1.0))
    return users, list(accumulate(weights))


@dataclass(slots=True)
class _Session:
    ts: int  # epoch seconds of the session's next event
    session_id: int
    user: User | None  # None: a visitor who never logs in
    length: int
    logged_out: int  # leading logged-out events; with a user, the last of them is Login
    item: int = 0
    pending: str | None = None  # a Submit page that must follow the page just shown


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


class EventStream:
    """Draws the events of consecutive days; state (session ids, users' levels) carries over."""

    def __init__(
        self,
        rng: random.Random,
        users: list[User],
        user_cum: list[float],
        catalog: list[PlayableSong],
        missing: list[PlayableSong],
        miss_rate: float,
    ) -> None:
        self.rng = rng
        self.users, self.user_cum = users, user_cum
        self.catalog, self.missing, self.miss_rate = catalog, missing, miss_rate
        self.next_session_id = 1
        # Popularity by rank, ranks shuffled over the catalog so popular songs are anywhere in it.
        self.rank_to_song = list(range(len(catalog)))
        rng.shuffle(self.rank_to_song)
        self.song_cum = list(accumulate(1.0 / (r + 1) ** ZIPF_EXPONENT for r in range(len(catalog))))

    def _sessions(self, day_start: int, quota: int) -> list[_Session]:
        rng, users, cum = self.rng, self.users, self.user_cum
        sessions = []
        left = quota
        while left > 0:
            if rng.random() < ANONYMOUS_SHARE or not users:
                user, length = None, min(rng.randint(1, 3), left)
                logged_out = length
            else:
                user = users[min(bisect_right(cum, rng.random() * cum[-1]), len(users) - 1)]
                length = min(1 + int(rng.expovariate(1 / MEAN_SESSION)), MAX_SESSION, left)
                logged_out = rng.randint(2, 3) if length > 3 and rng.random() < LOGIN_SHARE else 0
            # Long sessions start earlier so that they can end the same day.
            start = day_start + int(rng.random() * max(1, 86400 - length * 200))
            sessions.append(_Session(start, self.next_session_id, user, length, logged_out))
            self.next_session_id += 1
            left -= length
        sessions.sort(key=lambda s: (s.ts, s.session_id))
        return sessions

    def day_lines(self, day: date, quota: int) -> Iterator[str]:
        """The `quota` event lines of one day, in time order, without line ends."""
        day_start = _epoch(day)
        limit = day_start + 86399
        sessions = self._sessions(day_start, quota)
        heap: list[tuple[int, int, _Session]] = []
        i = 0
        while i < len(sessions) or heap:
            if i < len(sessions) and (not heap or sessions[i].ts <= heap[0][0]):
                s = sessions[i]
                i += 1
            else:
                s = heapq.heappop(heap)[2]
            yield self._event(s, limit)
            if s.item < s.length:
                heapq.heappush(heap, (s.ts, s.session_id, s))

    def _pick_song(self) -> PlayableSong:
        rng = self.rng
        if not self.catalog or rng.random() < self.miss_rate:
            return self.missing[int(len(self.missing) * rng.random() ** 2)]
        rank = min(bisect_right(self.song_cum, rng.random() * self.song_cum[-1]), len(self.catalog) - 1)
        return self.catalog[self.rank_to_song[rank]]

    def _event(self, s: _Session, limit: int) -> str:
        rng, k, u = self.rng, s.item, s.user
        ts_ms = s.ts * 1000 + MS_SUFFIX
        if k < s.logged_out:
            if u is not None and k == s.logged_out - 1:
                page = "Login"
            else:
                page = (
                    "Login"
                    if u is None and k == s.length - 1 and rng.random() < 0.3
                    else rng.choice(_OUT_PAGES)
                )
            method, status = HTTP[page]
            level = u.level if u else "free"
            line = _LOGGED_OUT % (k, level, method, page, s.session_id, status, ts_ms)
            gap = rng.randint(5, 120)
        else:
            page = self._logged_in_page(s, u)
            method, status = HTTP[page]
            artist = song = length = "null"
            gap = rng.randint(5, 90)
            if page == "NextSong":
                played = self._pick_song()
                artist, song, length = enc(played.artist), enc(played.title), repr(played.duration)
                gap = int(played.duration) + rng.randint(0, 3)
            line = _LOGGED_IN % (
                artist, u.first, u.gender, k, u.last, length, u.level, u.location, method, page,
                u.registration, s.session_id, song, status, ts_ms, u.agent, u.user_id,
            )  # fmt: skip
            # The submit event still shows the old level; the user's later events the new one.
            if page == "Submit Upgrade":
                u.level = "paid"
            elif page == "Submit Downgrade":
                u.level = "free"
        s.item += 1
        remaining = s.length - s.item
        if remaining:
            # Squeeze the gaps near midnight: every event of a day file happens on that day.
            s.ts += min(gap, (limit - s.ts) // remaining)
        return line

    def _logged_in_page(self, s: _Session, u: User) -> str:
        rng, k = self.rng, s.item
        pending, s.pending = s.pending, None
        # Another session of the same user may have changed the level meanwhile.
        if pending == "Submit Upgrade" and u.level == "free":
            return pending
        if pending == "Submit Downgrade" and u.level == "paid":
            return pending
        if k == s.logged_out:
            return "Home" if rng.random() < 0.5 else "NextSong"
        if k == s.length - 1 and rng.random() < 0.15:
            return "Logout"
        page = _PAGES[min(bisect_right(_PAGE_CUM, rng.random() * _PAGE_CUM[-1]), len(_PAGES) - 1)]
        if page == "Change":
            page = "Upgrade" if u.level == "free" else "Downgrade"
            chance = UPGRADE_SUBMIT if page == "Upgrade" else DOWNGRADE_SUBMIT
            if k + 1 < s.length and rng.random() < chance:
                s.pending = "Submit " + page
        return page
