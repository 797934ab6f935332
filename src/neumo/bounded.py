"""Bounded reads of user files: never read more than a limit (``/dev/zero`` ends with an error, not a hang).

Each limit names the environment variable that raises it, so the error can say how.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from neumo.errors import NeumoError

MAX_TEXT_BYTES = 8 * 1024 * 1024  # a text to score: far above what a 135M scorer handles in minutes
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a config file: shipped ones are a few KiB


def limit_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise NeumoError(f"${name} must be a whole number of bytes, got {raw!r}") from None
    if value < 1:
        raise NeumoError(f"${name} must be >= 1, got {value}")
    return value


def read_bytes_bounded(source: str | Path, limit: int, env: str, what: str = "input") -> bytes:
    """Read a file (or ``-`` for stdin) in chunks, refusing it once it passes ``limit`` bytes."""
    name = "stdin" if str(source) == "-" else str(source)
    p = Path(source)
    if str(source) != "-":
        if p.is_dir():
            raise NeumoError(f"{name} is a folder; give a file")
        if not p.exists():
            raise NeumoError(f"file {name} does not exist; check the path")
    f = sys.stdin.buffer if str(source) == "-" else open(p, "rb")
    try:
        chunks, total = [], 0
        while True:
            chunk = f.read(min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise NeumoError(f"{what} {name} is larger than {limit} bytes; shorten it or raise ${env}")
        return b"".join(chunks)
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def read_limited(source: str | Path, env: str, default: int, what: str = "input") -> bytes:
    """:func:`read_bytes_bounded` with the limit ``$env`` sets (``default`` when unset): how user files are read."""
    return read_bytes_bounded(source, limit_from_env(env, default), env, what)


def decode_utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NeumoError(f"{name} is not UTF-8 text (byte {e.start}); convert it, e.g. iconv -t utf-8") from None
