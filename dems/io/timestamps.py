"""Absolute time handling shared by every DEMS reader.

Vendor files mostly write naive local wall-clock times. They are interpreted in
an explicit IANA time zone (``timezone=`` of every reader; default: the zone of
this machine) and stored as ISO 8601 strings *with* their UTC offset, so a file
read in Copenhagen and in Berlin gives the same instant (ixdat #189/#190).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["from_unix", "iso", "localize", "machine_timezone_name", "resolve_timezone"]


def machine_timezone_name() -> str:
    """Return the IANA name of this machine's time zone (``"UTC"`` if unknown).

    Looks at ``$TZ`` first, then the ``/etc/localtime`` symlink.
    """
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz
    try:
        target = Path("/etc/localtime").resolve()
        parts = target.parts
        if "zoneinfo" in parts:
            return "/".join(parts[parts.index("zoneinfo") + 1 :])
    except OSError:
        pass
    return "UTC"


def resolve_timezone(name: str | None) -> tuple[tzinfo, str]:
    """Return ``(tzinfo, name)`` for an IANA zone name, or the machine's zone for ``None``.

    Parameters
    ----------
    name
        IANA zone such as ``"Europe/Copenhagen"``, ``"UTC"``, or ``None``.

    Raises
    ------
    ValueError
        If the zone is unknown.
    """
    chosen = name or machine_timezone_name()
    try:
        return ZoneInfo(chosen), chosen
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"unknown time zone {chosen!r} (use an IANA name such as 'Europe/Berlin')"
        ) from err


def localize(naive: datetime, zone: tzinfo) -> datetime:
    """Attach ``zone`` to a naive wall-clock datetime (no shift of the clock reading)."""
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=zone)


def from_unix(seconds: float, zone: tzinfo | None = None) -> datetime:
    """Convert a UNIX epoch (s) to an aware datetime, shown in ``zone`` (default UTC)."""
    return datetime.fromtimestamp(seconds, tz=UTC).astimezone(zone or UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 text with microseconds and UTC offset, e.g. ``2022-09-19T11:28:02.704037+02:00``."""
    if moment.tzinfo is None:
        raise ValueError("refusing to format a naive datetime: the time zone is unknown")
    return moment.isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso`."""
    return datetime.fromisoformat(text)
