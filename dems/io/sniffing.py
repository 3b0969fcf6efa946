"""Content sniffing shared by the DEMS xarray backends' ``guess_can_open``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dems.io.backend import read_head

__all__ = ["sniff_file"]


def sniff_file(filename_or_obj: Any, can_open: Callable[[str, str], bool]) -> bool:
    """Whether ``filename_or_obj`` is an existing file that ``can_open(path, head)`` accepts.

    Parameters
    ----------
    filename_or_obj
        Whatever xarray passes to ``guess_can_open`` (path, file object, store ...).
    can_open
        A reader module's ``can_open``, judging the first ~8 kB of the file (latin-1).
    """
    try:
        path = os.fspath(filename_or_obj)
        return os.path.isfile(path) and can_open(path, read_head(path))
    except (TypeError, OSError):
        return False
