"""Clock values as PSS senders write them: ``2:00``, ``02:00``, bare seconds ``58``, KP&P's ``0.00``."""

from __future__ import annotations

__all__ = ["format_clock", "parse_clock"]


def parse_clock(text: str) -> int | None:
    """Seconds for a PSS clock value, or ``None`` when it is not one."""
    text = text.strip()
    if not text:
        return None
    for sep in (":", "."):
        if sep in text:
            minutes, _, seconds = text.partition(sep)
            if not (_is_ascii_digits(minutes) and _is_ascii_digits(seconds) and len(seconds) == 2):
                return None
            secs = int(seconds)
            if secs >= 60:
                return None
            return int(minutes) * 60 + secs
    return int(text) if _is_ascii_digits(text) else None


def format_clock(seconds: int) -> str:
    """``m:ss`` as the v2.3 specification writes it."""
    return f"{seconds // 60}:{seconds % 60:02d}"


def _is_ascii_digits(text: str) -> bool:
    """``str.isdigit`` alone accepts ``²`` and other digits ``int()`` rejects."""
    return text.isascii() and text.isdigit()
