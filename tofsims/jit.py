"""numba kernels compiled once per user, not at every run.

:func:`cached_njit` is ``numba.njit(cache=True, ...)``. numba keeps the machine code beside
the module (its ``__pycache__``) when that folder is writable, else in the user's own cache
(``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``; ``NUMBA_CACHE_DIR`` overrides both), so a
read-only installation still compiles only once per user. When no location is writable
(read-only installation and home), numba refuses ``cache=True`` when the function is
decorated; the kernel is then compiled at its first call in every process instead of
failing the import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["cached_njit"]


def cached_njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Return ``numba.njit(cache=True, **options)``, uncached if no cache is writable.

    Parameters
    ----------
    **options
        Further :func:`numba.njit` options (``nogil=True``, ``error_model="numpy"`` …).
    """
    import numba

    def decorate(function: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError as err:  # "cannot cache function …: no locator available"
            if "no locator available" not in str(err):
                raise
            return numba.njit(cache=False, **options)(function)

    return decorate
