"""BioLogic EC-Lab binary ``.mpr`` files, through the optional extra ``operando[mpr]``.

The binary "modular file" format is read by galvani (GPL-3.0-or-later), which is never
vendored and only imported when an ``.mpr`` file is opened. Prefer exporting ``.mpt`` from
EC-Lab: ``.mpr`` column ids change between EC-Lab versions (galvani #74, #87, #112, #126).
Results obtained through galvani fall under its licence terms.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from dems.errors import DemsReadError
from dems.io.backend import provenance
from dems.io.eclab_columns import ec_variables
from dems.io.sniffing import sniff_file
from dems.io.timestamps import iso, localize, resolve_timezone

__all__ = ["FORMAT", "KIND", "MprBackend", "can_open", "read_ec"]

FORMAT = "BioLogic EC-Lab .mpr (binary, via galvani)"
KIND = "ec"
MAGIC = "BIO-LOGIC MODULAR FILE"
INSTALL_HINT = 'reading .mpr needs the optional extra: pip install "operando[mpr]" (galvani, GPL)'


def can_open(path: str | os.PathLike[str], head: str) -> bool:
    """Whether the file starts with the ``BIO-LOGIC MODULAR FILE`` magic."""
    return head.startswith(MAGIC)


def _galvani_biologic(path: str | os.PathLike[str]) -> Any:
    """Import ``galvani.BioLogic`` or raise a :class:`DemsReadError` saying how to install it."""
    try:
        return importlib.import_module("galvani.BioLogic")
    except ImportError:
        raise DemsReadError(path, f"{INSTALL_HINT}; or export the file as .mpt in EC-Lab") from None


def read_ec(path: str | os.PathLike[str], *, timezone: str | None = None) -> xr.Dataset:
    """Read a binary EC-Lab ``.mpr`` file with galvani.

    Parameters
    ----------
    path
        The ``.mpr`` file.
    timezone
        IANA zone of the naive acquisition time (default: this machine's).

    Returns
    -------
    xarray.Dataset
        Same layout as :func:`dems.io.biologic.read_ec` (``docs/conventions.md``).

    Raises
    ------
    DemsReadError
        If galvani is not installed, or cannot parse the file.
    """
    biologic = _galvani_biologic(path)
    try:
        mpr = biologic.MPRfile(os.fspath(path))
    except Exception as err:  # galvani raises bare ValueError/NotImplementedError/struct.error
        raise DemsReadError(path, f"galvani cannot read this .mpr file ({err})") from None
    data = {name: np.asarray(mpr.data[name]) for name in mpr.data.dtype.names}
    if "time/s" not in data:
        raise DemsReadError(path, "no 'time/s' column in the .mpr data module")
    titles = [name for name in data if name != "time/s"]
    lines = np.full(len(data["time/s"]), -1)
    variables, canonical = ec_variables(titles, data, lines, os.path.basename(path))
    zone, zone_name = resolve_timezone(timezone)
    start = getattr(mpr, "timestamp", None)
    attrs = {
        "start_time": iso(localize(start, zone)) if start is not None else "",
        "timezone": zone_name,
        "timezone_source": "user" if timezone else "machine",
        "technique": "",
        "characteristic_mass_g": np.nan,
        "mass_key": "",
        "decimal": "",
        "clock": "EC-Lab",
        **canonical,
        **provenance(path, "dems.io.mpr.read_ec", FORMAT),
    }
    coords = {"time": ("time", np.asarray(data["time/s"], float), {"units": "s"})}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


class MprBackend(BackendEntrypoint):
    """xarray backend for ``.mpr``: ``xr.open_dataset(p, engine="dems_mpr")`` (needs galvani)."""

    description = "BioLogic EC-Lab binary .mpr (optional extra operando[mpr], galvani, GPL)"
    url = "https://github.com/operando/operando/blob/main/docs/formats.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "timezone")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        timezone: str | None = None,
    ) -> xr.Dataset:
        """Open an ``.mpr`` file (see :func:`read_ec`)."""
        ds = read_ec(os.fspath(filename_or_obj), timezone=timezone)
        return ds.drop_vars(drop_variables or [], errors="ignore")

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Sniff the ``BIO-LOGIC MODULAR FILE`` magic."""
        return sniff_file(filename_or_obj, can_open)
