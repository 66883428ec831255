"""The acceptance rules: what a record must hold to be staged, and the reason it is rejected.

Written once, deciding for every path: the careful parser applies them record by record
(`_event_row`, `_song_row`), and the fast paths (orjson per line, Arrow's JSON reader) apply the
same rules to whole columns (`_valid_columns`), sending any row a column check refuses to the
careful parser, which then says why.

Types are read as the engines read JSON (DESIGN.md section 2): a number or boolean in a text field
is its JSON text as written (`3.10` is '3.10', `true` is 'true'); a string with a lone surrogate
escape (`"\\ud800"`), which no warehouse can store, is a reject.

The JSON key of each column is derived from the table declaration (snake_case column,
camelCase key), so `tables.py` stays the one place that names the fields.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sparkify_assets.tables import STAGING_EVENTS, STAGING_SONGS, Table

RAW_TEXT_LIMIT = 1000
# Redshift's VARCHAR(MAX) holds 65,535 bytes; longer text could not be loaded there.
MAX_TEXT_BYTES = 65535
# Events before 2000 or more than a day ahead of now cannot be real app events.
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
INT32 = 2**31 - 1
INT64 = 2**63 - 1

ARROW_TYPES = {
    "text": pa.string(),
    "hash": pa.string(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


# The line number of a reject that concerns the whole file (not UTF-8 JSON, not a lake file).
WHOLE_FILE_LINE = 0


class RejectError(ValueError):
    """A record that cannot be staged; the message is the reason stored with it."""


class _JsonFloat(float):
    """A JSON number with a fraction or exponent that remembers its text as written, so a text
    field stores '1.10' or '1E5' as the file has it (Python would print 1.1 and 100000.0)."""

    __slots__ = ("text",)


def _json_float(text: str) -> float:
    value = _JsonFloat(text)
    value.text = text
    return value


_DECODER = json.JSONDecoder(parse_float=_json_float)


def _shown(value: object) -> str:
    """A value as it reads in a reason: its JSON text, cut to 40 characters."""
    text = getattr(value, "text", None)
    if text is None:
        try:
            text = json.dumps(value)
        except (ValueError, TypeError, RecursionError):
            text = type(value).__name__
    return text[:40]


def _unexpected(exc: BaseException) -> str:
    """The reason for a record whose parse raised something no rule foresaw: still a reject."""
    # The message may quote the content: keep it storable (no lone surrogates, no NUL).
    message = " ".join(str(exc).split())[:80].encode("utf-8", "backslashreplace").decode("utf-8")
    message = message.replace("\x00", "\\x00")
    return f"record could not be read: {message}" if message else "record could not be read"


def _json_problem(exc: BaseException) -> str:
    """Why the JSON decoder gave up, for errors that are not a JSONDecodeError."""
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    if "digits" in str(exc):
        return "invalid JSON: a number has too many digits"
    return "invalid JSON: " + (" ".join(str(exc).split())[:60] or "unreadable value")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _json_text(value: object, name: str) -> str:
    """A number or boolean in a text field, as its JSON text (DESIGN.md section 2)."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        text = getattr(value, "text", None)
        if text is None:  # NaN or Infinity: Python's json reads them, but they are not JSON
            raise RejectError(f"{name} is not a JSON value: {_shown(value)}")
        return text
    if isinstance(value, int):
        return str(value)
    raise RejectError(f"{name} is not text: {_shown(value)}")


def _text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        value = _json_text(value, name)
    if "\x00" in value:
        raise RejectError(f"{name} contains a NUL character")
    if not value.isascii():
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            # json decodes "\ud800" to a lone surrogate, which UTF-8 (and every warehouse) refuses.
            raise RejectError(f"{name} holds an invalid Unicode escape (a lone surrogate)") from None
        if size > MAX_TEXT_BYTES:
            raise RejectError(f"{name} is longer than {MAX_TEXT_BYTES} bytes")
    elif len(value) > MAX_TEXT_BYTES:
        raise RejectError(f"{name} is longer than {MAX_TEXT_BYTES} bytes")
    return value


def _integer(value: object, name: str, limit: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RejectError(f"{name} is not an integer: {_shown(value)}")
    if not -limit - 1 <= value <= limit:
        raise RejectError(f"{name} is out of range: {_shown(value)}")
    return int(value)


def _double(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RejectError(f"{name} is not a number: {_shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond double precision's range
        raise RejectError(f"{name} is not a finite number") from None
    if not math.isfinite(value):
        raise RejectError(f"{name} is not a finite number")
    return value


_CONVERTERS = {
    "text": _text,
    "integer": lambda v, n: _integer(v, n, INT32),
    "bigint": lambda v, n: _integer(v, n, INT64),
    "double": _double,
}


@dataclass(frozen=True)
class _Field:
    key: str
    column: str
    convert: object
    required: bool


def _fields(table: Table, camel: bool) -> tuple[_Field, ...]:
    return tuple(
        _Field(_camel(c.name) if camel else c.name, c.name, _CONVERTERS[c.type], c.not_null)
        for c in table.columns
        if c.name not in table.lineage_columns
    )


EVENT_FIELDS = _fields(STAGING_EVENTS, camel=True)
SONG_FIELDS = _fields(STAGING_SONGS, camel=False)


def _convert(obj: dict, fields: tuple[_Field, ...]) -> list:
    values = []
    for f in fields:
        if f.key not in obj:
            if f.required:
                raise RejectError(f"missing required field {f.key}")
            values.append(None)
            continue
        value = f.convert(obj[f.key], f.key)
        if value is None and f.required:
            raise RejectError(f"required field {f.key} is null")
        values.append(value)
    return values


def _max_ts_ms() -> float:
    """The latest event time accepted: a day ahead of now (clocks differ)."""
    return time.time() * 1000 + 86_400_000


def _event_row(obj: dict) -> list:
    if obj.get("userId") == "":
        obj = {**obj, "userId": None}
    row = _convert(obj, EVENT_FIELDS)
    ts = row[_EVENT_TS]
    if ts < MIN_TS_MS or ts > _max_ts_ms():
        raise RejectError(f"ts is out of range: {ts} is before 2000 or in the future")
    if row[_EVENT_PAGE] == "":
        raise RejectError("required field page is empty")
    return row


def _song_row(obj: dict) -> list:
    row = _convert(obj, SONG_FIELDS)
    if row[_SONG_ID] == "":
        raise RejectError("required field song_id is empty")
    return row


_EVENT_TS = [f.column for f in EVENT_FIELDS].index("ts")
_EVENT_PAGE = [f.column for f in EVENT_FIELDS].index("page")
_SONG_ID = [f.column for f in SONG_FIELDS].index("song_id")

_NO_TYPE = type(None)
_STRING = pa.string()
_DOUBLE = pa.float64()
_ALLOWED_TYPES = {"text": {str}, "integer": {int}, "bigint": {int}, "double": {float, int}}


@dataclass(frozen=True)
class _Spec:
    """One staging table's rules as the paths need them, computed once: its fields, their JSON
    keys, the Python types each may hold on the fast path, their Arrow types and the row rule."""

    table: Table
    fields: tuple[_Field, ...]
    keys: tuple[str, ...]
    allowed: tuple[frozenset, ...]
    arrow_types: tuple[pa.DataType, ...]
    make_row: object

    @property
    def arrow_schema(self) -> pa.Schema:
        """The declared fields by JSON key, for Arrow's reader."""
        return pa.schema(list(zip(self.keys, self.arrow_types, strict=True)))

    def index(self, column: str) -> int:
        return [f.column for f in self.fields].index(column)


def _spec(table: Table, fields: tuple[_Field, ...], make_row) -> _Spec:
    types = {c.name: c.type for c in table.columns}
    return _Spec(
        table=table,
        fields=fields,
        keys=tuple(f.key for f in fields),
        allowed=tuple(
            frozenset(_ALLOWED_TYPES[types[f.column]] | (set() if f.required else {_NO_TYPE})) for f in fields
        ),
        arrow_types=tuple(ARROW_TYPES[types[f.column]] for f in fields),
        make_row=make_row,
    )


_SPECS = {
    STAGING_EVENTS.name: _spec(STAGING_EVENTS, EVENT_FIELDS, _event_row),
    STAGING_SONGS.name: _spec(STAGING_SONGS, SONG_FIELDS, _song_row),
}


def _valid_columns(spec: _Spec, arrays: list[pa.Array]) -> list[pa.Array] | None:
    """Typed columns (in field order) as staged, or None when any value meets a rule of
    `_event_row`/`_song_row` (a NULL in a required field, an empty page or song_id, a ts out of
    range, a double that is not finite): those rows go to the careful path, which says why. Both
    fast paths (Python objects, Arrow's reader) end here, so these checks exist once."""
    arrays = list(arrays)
    for i, (f, arrow_type) in enumerate(zip(spec.fields, spec.arrow_types, strict=True)):
        array = arrays[i]
        if f.column == "user_id" and pc.any(pc.equal(array, "")).as_py():
            array = arrays[i] = pc.if_else(pc.equal(array, ""), pa.scalar(None, _STRING), array)
        if f.column in ("page", "song_id") and pc.any(pc.equal(array, "")).as_py():
            return None
        if f.required and array.null_count:
            return None
        # orjson refuses NaN and infinities, but the stdlib fallback (and Arrow's reader) read them.
        if (
            arrow_type == _DOUBLE
            and array.null_count < len(array)
            and not pc.all(pc.is_finite(array)).as_py()
        ):
            return None
    if spec.table is STAGING_EVENTS and len(arrays[_EVENT_TS]):
        low, high = pc.min_max(arrays[_EVENT_TS]).values()
        if low.as_py() < MIN_TS_MS or high.as_py() > _max_ts_ms():
            return None
    return arrays
