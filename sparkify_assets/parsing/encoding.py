"""A lake file's bytes as JSON text: gzip undone, whole files that are not UTF-8 JSON named, and
UTF-8 decoded so that invalid bytes stay visible to the records that hold them.

A file compressed with gzip is read decompressed, by its magic bytes whatever its name (as
Redshift's COPY … GZIP reads it). A file that is not UTF-8 JSON at all (UTF-16, binary, another
compression) is one reject that names the cause.
"""

from __future__ import annotations

import gzip
import zlib

BOM = b"\xef\xbb\xbf"

GZIP_MAGIC = b"\x1f\x8b"
# The first bytes of a file tell UTF-16, binary and other compressions from JSON text.
SNIFF_BYTES = 4096
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed twice"),
    (b"PK\x03\x04", "a zip archive, not JSON (only gzip is read)"),
    (b"BZh", "bzip2-compressed (only gzip is read)"),
    (b"\xfd7zXZ\x00", "xz-compressed (only gzip is read)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed (only gzip is read)"),
    (b"PAR1", "a Parquet file, not JSON"),
)
_UTF32 = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_UTF16 = (b"\xff\xfe", b"\xfe\xff")
_PREFIXES = _UTF32 + _UTF16 + tuple(magic for magic, _ in _MAGIC)
# Bytes no JSON text holds outside a string, and no string holds unescaped.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\b")
BINARY_SHARE = 0.1


def unpack(data: bytes) -> tuple[bytes, str | None]:
    """A lake file's JSON bytes (gunzipped when gzip-compressed, by its magic bytes whatever its
    name, as Redshift's COPY … GZIP reads it), or the reason the whole file is rejected."""
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return b"", "file is gzip-compressed but cannot be decompressed (truncated or corrupt)"
    return data, _sniff(data[:SNIFF_BYTES])


def _sniff(head: bytes) -> str | None:
    """Why a file is not UTF-8 JSON text at all, from its first bytes; None when it may be. A few
    bad bytes in text are left to the records they are in ("invalid UTF-8 bytes")."""
    if head.startswith(_PREFIXES):  # one test for the usual case, where none matches
        if head.startswith(_UTF32):
            return "file is UTF-32 encoded, not UTF-8"
        if head.startswith(_UTF16):
            return "file is UTF-16 encoded, not UTF-8"
        for magic, what in _MAGIC:
            if head.startswith(magic):
                return f"file is {what}"
    if b"\x00" in head and len(head) >= 2:
        even, odd = head[0::2], head[1::2]
        if (odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even)) or (
            even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd)
        ):
            return "file is UTF-16 encoded, not UTF-8"
    bad = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if not head.isascii():
        bad += len(head) - len(head.decode("utf-8", "ignore").encode("utf-8"))
    if bad > BINARY_SHARE * len(head):
        return "file is binary, not JSON"
    return None


def strip_bom(data: bytes) -> bytes:
    """A UTF-8 byte order mark is allowed at the start of a file (only there)."""
    return data[3:] if data.startswith(BOM) else data


def decode(data: bytes) -> tuple[str, bool]:
    """UTF-8 text, and whether it holds invalid bytes: those are kept as surrogates, so their
    records can be rejected ("invalid UTF-8 bytes") and the others still load. A byte order mark
    is not removed here (`strip_bom`: that rule is for a file's first bytes, not a segment's)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape"), True
