"""BioLogic EC-Lab binary ``.mpr`` files, through the optional extra ``operando[mpr]``.

The binary "modular file" format is decoded by yadg's ``eclab.mpr`` extractor
(dgbowl/yadg, GPL-3.0-or-later), which is never vendored and only imported when an ``.mpr``
file is opened; results obtained through it fall under its licence terms. yadg follows the
column ids of current EC-Lab versions (11.50-11.62, BT-Lab), which galvani 0.5 does not.
This module only turns yadg's dataset into operando's conventions (``docs/conventions.md``):
the same variable names, units, canonical ``potential``/``current``/``cycle`` and start
time as the ``.mpt`` export of the same run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from dems.errors import DemsReadError
from dems.io.backend import provenance, sniff
from dems.io.biologic import warn_empty_technique
from dems.io.eclab_columns import ec_variables
from dems.io.timestamps import iso, localize, resolve_timezone

__all__ = ["FORMAT", "KIND", "TECHNIQUE_NAMES", "MprBackend", "can_open", "read_ec"]

FORMAT = "BioLogic EC-Lab .mpr (binary, via yadg)"
KIND = "ec"
MAGIC = "BIO-LOGIC MODULAR FILE"
INSTALL_HINT = (
    'reading .mpr needs the optional extra: pip install "operando[mpr]" (yadg, GPL-3.0-or-later)'
)

#: The ``.mpt`` header's technique name for the technique codes of the ``.mpr`` settings
#: module, as found in the paired ``.mpt``/``.mpr`` files of yadg's test suite.
TECHNIQUE_NAMES = {
    "BCD": "Battery Capacity Determination",
    "CA": "Chronoamperometry / Chronocoulometry",
    "coC": "Constant Current",
    "CP": "Chronopotentiometry",
    "CV": "Cyclic Voltammetry",
    "CVA": "Cyclic Voltammetry Advanced",
    "GCPL": "Galvanostatic Cycling with Potential Limitation",
    "GEIS": "Galvano Electrochemical Impedance Spectroscopy",
    "LSV": "Linear Sweep Voltammetry",
    "MB": "Modulo Bat",
    "OCV": "Open Circuit Voltage",
    "PEIS": "Potentio Electrochemical Impedance Spectroscopy",
    "WAIT": "Wait",
    "ZIR": "IR compensation (PEIS)",
}

#: yadg's unit spelling -> the spelling of EC-Lab's ``.mpt`` titles.
_UNIT_SPELLING = {"·": ".", "Ω": "Ohm", "⁻²": "-2"}
#: Start of the OLE automation date used by the ``.mpr`` log module.
_OLE_EPOCH = datetime(1899, 12, 30)


def can_open(path: str | os.PathLike[str], head: bytes) -> bool:
    """Whether the file starts with the ``BIO-LOGIC MODULAR FILE`` magic."""
    return head.startswith(MAGIC.encode("ascii"))


def _yadg_extract(path: str | os.PathLike[str]) -> Any:
    """Import ``yadg.extractors.extract`` or raise a :class:`DemsReadError` saying how."""
    try:
        return importlib.import_module("yadg.extractors").extract
    except ImportError:
        raise DemsReadError(path, f"{INSTALL_HINT}; or export the file as .mpt in EC-Lab") from None


class _LogCollector(logging.Handler):
    """Collect the log messages one thread's yadg call emits (yadg logs, it does not warn)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _yadg_notes_as_warnings(source: str) -> Iterator[None]:
    """Re-issue yadg's logged notes (ambiguous column ids, missing log module) as warnings."""
    logger = logging.getLogger("yadg")
    collector = _LogCollector()
    logger.addHandler(collector)
    try:
        yield
    finally:
        logger.removeHandler(collector)
    for message in dict.fromkeys(collector.messages):
        warnings.warn(f"{source}: yadg: {message}", UserWarning, stacklevel=4)


def _mpt_title(name: str, unit: str | None) -> str:
    """Return the ``.mpt`` column title of a yadg variable (``"ox or red"`` -> ``"ox/red"``)."""
    quantity = name.removeprefix("duplicate ").replace(" or ", "/")
    if not unit:
        return quantity
    for yadg_spelling, mpt_spelling in _UNIT_SPELLING.items():
        unit = unit.replace(yadg_spelling, mpt_spelling)
    return f"{quantity}/{unit}"


def _control_column(ds: xr.Dataset) -> np.ndarray | None:
    """Rejoin yadg's ``control_V``/``control_I`` into EC-Lab's ``control/V/mA`` column.

    yadg splits the one stored ``control`` column by ``mode`` (V on potentiostatic rows,
    mA on the others); the ``.mpt`` export keeps it whole. Returns None when the two are
    not such a split (separate ``control/V`` and ``control/mA`` columns).
    """
    if not {"control_V", "control_I", "mode"} <= set(ds.data_vars):
        return None
    potentiostatic = ds["mode"].to_numpy() == 2
    volts = ds["control_V"].to_numpy().astype(float)
    milliamps = ds["control_I"].to_numpy().astype(float)
    if np.isnan(volts[~potentiostatic]).all() and np.isnan(milliamps[potentiostatic]).all():
        return np.where(potentiostatic, volts, milliamps)
    return None


def _columns(ds: xr.Dataset) -> tuple[list[str], list[np.ndarray]]:
    """``.mpt`` titles and arrays of every yadg data column except time and uncertainties."""
    control = _control_column(ds)
    titles: list[str] = []
    values: list[np.ndarray] = []
    for name, variable in ds.data_vars.items():
        name = str(name)
        if name == "time" or name.endswith("_uncertainty") or variable.dims != ("uts",):
            continue
        if control is not None and name in ("control_V", "control_I"):
            if name == "control_V":
                titles.append("control/V/mA")
                values.append(control)
            continue
        titles.append(_mpt_title(name, variable.attrs.get("units")))
        values.append(variable.to_numpy())
    return titles, values


def _start_time(log: dict[str, Any] | None, timezone: str | None) -> dict[str, Any]:
    """``start_time`` attributes from the log module's OLE timestamp (naive local time)."""
    zone, zone_name = resolve_timezone(timezone)
    attrs: dict[str, Any] = {
        "timezone": zone_name,
        "timezone_source": "user" if timezone else "machine",
    }
    ole = (log or {}).get("ole_timestamp")
    if ole is None:
        attrs["start_time"] = ""
        attrs["start_time_missing"] = "no log module in the .mpr (no acquisition time stored)"
        return attrs
    naive = _OLE_EPOCH + timedelta(days=float(ole))
    attrs["start_time"] = iso(localize(naive, zone))
    return attrs


def _software_attrs(log: dict[str, Any] | None) -> dict[str, Any]:
    version = str((log or {}).get("ec_lab_version") or "")
    if version:
        return {"software": "", "ec_lab_version": version}
    return {
        "software": "",
        "ec_lab_version": "",
        "ec_lab_version_missing": "no log module in the .mpr (software version not stored)",
    }


def read_ec(path: str | os.PathLike[str], *, timezone: str | None = None) -> xr.Dataset:
    """Read a binary EC-Lab ``.mpr`` file with yadg's extractor.

    Parameters
    ----------
    path
        The ``.mpr`` file.
    timezone
        IANA zone of the naive acquisition time (default: this machine's).

    Returns
    -------
    xarray.Dataset
        Same layout as :func:`dems.io.biologic.read_ec` (``docs/conventions.md``): every
        column under its ``.mpt`` name, ``potential`` (V), ``current`` (mA; ``dq``/Δt for
        galvanostatic techniques, which store no current), ``cycle`` (``half cycle // 2``
        when no cycle number is stored), ``technique``, ``ec_lab_version``. A technique
        that recorded no points (WAIT) gives an empty dataset with a warning.

    Raises
    ------
    DemsReadError
        If yadg is not installed, or cannot decode the file.
    """
    extract = _yadg_extract(path)
    _zone, zone_name = resolve_timezone(timezone)
    name = os.path.basename(path)
    try:
        with _yadg_notes_as_warnings(name):
            tree = extract(filetype="eclab.mpr", path=os.fspath(path), timezone=zone_name)
    except Exception as err:  # yadg raises bare AssertionError/KeyError/NotImplementedError
        raise DemsReadError(
            path, f"yadg cannot read this .mpr file ({type(err).__name__}: {err})"
        ) from None
    ds = tree.to_dataset()
    metadata = json.loads(ds.attrs.get("original_metadata", "{}"))
    log = metadata.get("log")
    code = str(metadata.get("settings", {}).get("technique", ""))
    technique = TECHNIQUE_NAMES.get(code, code)
    if "time" in ds.data_vars:
        time = ds["time"].to_numpy().astype(float)
        titles, values = _columns(ds)
    else:
        warn_empty_technique(name, technique)
        time, titles, values = np.empty(0), [], []
    lines = np.full(len(time), -1)
    variables, canonical = ec_variables(titles, values, time, lines, name)
    attrs = {
        **_start_time(log, timezone),
        "technique": technique,
        "technique_code": code,
        **_software_attrs(log),
        "characteristic_mass_g": np.nan,
        "mass_key": "",
        "characteristic_mass_missing": "the .mpr stores the active mass without its unit",
        "decimal": "",
        "clock": "EC-Lab",
        **canonical,
        "header_json": json.dumps(metadata, ensure_ascii=False, default=str),
        "extractor": f"yadg {ds.attrs.get('yadg_version', '')}".strip(),
        **provenance(path, "dems.io.mpr.read_ec", FORMAT),
    }
    coords = {"time": ("time", time, {"units": "s", "long_name": "time/s"})}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


class MprBackend(BackendEntrypoint):
    """xarray backend for ``.mpr``: ``xr.open_dataset(p, engine="dems_mpr")`` (needs yadg)."""

    sniff_order = 60

    description = "BioLogic EC-Lab binary .mpr (optional extra operando[mpr], yadg, GPL)"
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
        return sniff(can_open, filename_or_obj)
