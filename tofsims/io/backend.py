"""Plumbing of the TOF-SIMS xarray backends: provenance and content sniffing.

Every reader module in :mod:`tofsims.io` defines ``FORMAT`` (display name),
``can_open(path, head: bytes)`` (content sniffing on the first ~8 kB), ``read(path, **options)``
and a :class:`xarray.backends.BackendEntrypoint` subclass registered under the
``xarray.backends`` entry-point group (engine ``tofsims_*``) with a ``sniff_order``. A reader
whose data live in more than one file also defines ``input_files(path, **options)``: every
file a read opens (sidecars included).

The registry and these helpers are shared with :mod:`dems` (:mod:`operando_core.readers`).
"""

from __future__ import annotations

from operando_core.readers import header_json, provenance, sniff

__all__ = ["header_json", "provenance", "sniff"]
