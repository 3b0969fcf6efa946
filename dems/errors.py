"""Exception types of the DEMS domain.

Library code raises these; the command line turns them into one-line messages
(exit status 1) without a traceback.
"""

from __future__ import annotations

import os


class DemsError(Exception):
    """Base class of every error raised on purpose by :mod:`dems`."""


class DemsReadError(DemsError, ValueError):
    """A file cannot be read: wrong format, truncated, malformed, empty ...

    Parameters
    ----------
    path
        The file that could not be read.
    problem
        One sentence saying what is wrong, e.g. ``"time is not monotonic"``.
    line
        1-based line number where the problem was found, if known.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, line: int | None = None):
        self.path = os.fspath(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class CalibrationError(DemsError, ValueError):
    """Calibration input (steps file, windows, gases) is inconsistent."""


class AlignmentError(DemsError, ValueError):
    """Two streams cannot be put on one time axis."""


class MissingStreamError(DemsReadError, LookupError):
    """The file is readable but does not hold the requested stream (e.g. no EC block)."""
