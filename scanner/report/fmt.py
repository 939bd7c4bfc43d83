"""Small formatting helpers shared by the renderers: safe text, times, byte counts, signature info.

Device-provided strings reach every renderer; ``clean`` makes them safe to encode and to show
(lone surrogates and control characters become visible escapes instead of breaking a file).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """``value`` as text that encodes as UTF-8 and shows no invisible control characters."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates -> \udcxx
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def clean_tree(value: Any) -> Any:
    """A JSON-like tree with every string (keys too) passed through ``clean``'s encoding step.

    Control characters are left alone here: JSON escapes them itself, and the sealed evidence
    must keep what was seen."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {clean_tree(str(k)): clean_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_tree(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN/Infinity are not JSON
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean_tree(str(value))


def number(value: object) -> float | None:
    """A finite float from a number-like value, else None (result documents read from files)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def when(ts: object) -> str:
    """Epoch seconds as local time with its UTC offset, e.g. ``2025-03-01 14:03:07 +0800``."""
    seconds = number(ts)
    if seconds is None:
        return "" if ts is None else clean(ts)
    try:
        return datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    except (OverflowError, OSError, ValueError):
        return clean(ts)


def iso_utc(ts: object) -> str:
    """Epoch seconds as ISO 8601 UTC (CSV cells: sortable, unambiguous); "" when absent or invalid."""
    seconds = number(ts)
    if seconds is None:
        return ""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return ""


def human_bytes(value: object) -> str:
    """1536 -> "1.5 KB"."""
    amount = number(value)
    if amount is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(amount) < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


def signature_info() -> dict[str, str]:
    """Counts and content version of the installed device and cloud signature sets (never raises)."""
    info: dict[str, str] = {}
    try:
        from scanner.signatures.loader import load_signatures

        devices = load_signatures(check_examples=False)
        info["device_signatures"] = str(len(devices))
        info["version"] = devices.version
    except Exception as exc:  # a broken signature directory must not stop a report
        info["device_signatures_error"] = clean(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    try:
        from scanner.passive.clouds import load_cloud_signatures

        info["cloud_signatures"] = str(len(load_cloud_signatures()))
    except Exception as exc:  # as above
        info["cloud_signatures_error"] = clean(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return info
