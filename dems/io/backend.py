"""Plumbing of the DEMS xarray backends: provenance and content sniffing.

Every reader module in :mod:`dems.io` defines

* ``FORMAT``: the display name, and ``KIND``: ``"ms"``, ``"ec"`` or ``"ms+ec"`` (a file
  holding both, like Zilien v2);
* ``can_open(path, head: bytes) -> bool``: content sniffing on the first ~8 kB;
* ``read_ms(path, **options)`` and/or ``read_ec(path, **options)`` returning
  :class:`xarray.Dataset` objects that follow ``docs/conventions.md``;
* a :class:`xarray.backends.BackendEntrypoint` subclass registered under the
  ``xarray.backends`` entry-point group (engine ``dems_*``) with a ``sniff_order``.

The registry and these helpers are shared with :mod:`tofsims` (:mod:`operando_core.readers`).
"""

from __future__ import annotations

from operando_core.readers import header_json, provenance, sniff

__all__ = ["header_json", "provenance", "sniff"]
