"""Exception types of the TOF-SIMS domain.

Library code raises these; the command line turns them into one-line messages
(exit status 1) without a traceback.
"""

from __future__ import annotations

import os


class TofsimsError(Exception):
    """Base class of every error raised on purpose by :mod:`tofsims`."""


class TofsimsReadError(TofsimsError, ValueError):
    """A file cannot be read: wrong format, truncated, malformed, empty ...

    Parameters
    ----------
    path
        The file that could not be read.
    problem
        One sentence saying what is wrong.
    line
        1-based line number (text files) where the problem was found, if known.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, line: int | None = None):
        self.path = os.fspath(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class FragmentError(TofsimsError, ValueError):
    """A fragment formula or IONTOF peak label cannot be understood."""


class AnalysisError(TofsimsError, ValueError):
    """Inputs of a numerical step (depth scale, interface fit ...) are inconsistent."""


class InputCheckError(TofsimsError, ValueError):
    """The input fails a check that makes a CEI thickness meaningless (``force`` overrides).

    Parameters
    ----------
    path
        The input (file or dataset source), or None.
    problem
        One sentence saying what the check found.
    """

    def __init__(self, path: str | os.PathLike[str] | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{problem}; give --force (force=True) to analyse it anyway")
