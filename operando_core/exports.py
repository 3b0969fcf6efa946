"""Lazy public names of a package: imported on first use, listed by ``dir()``.

A package keeps ``import package`` cheap (the command line imports it for ``--help``) and still
shows its public API to tab completion::

    __all__ = ["open_ms", "workflows"]
    __getattr__, __dir__ = lazy_exports(__name__, {"open_ms": "dems.io:open_ms",
                                                   "workflows": "dems.workflows"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], public: list[str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a module ``__getattr__`` and ``__dir__`` for lazily imported public names.

    Parameters
    ----------
    package
        The package's ``__name__`` (for error messages).
    exports
        Public name -> ``"module:attribute"``, or ``"module"`` for a module itself.
    public
        What ``dir()`` lists (default: the names of ``exports``); the package's ``__all__``.
    """
    names = sorted(public if public is not None else exports)

    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = exports[name].partition(":")
        imported = importlib.import_module(module)
        return getattr(imported, attribute) if attribute else imported

    def dir_() -> list[str]:
        return list(names)

    return getattr_, dir_
