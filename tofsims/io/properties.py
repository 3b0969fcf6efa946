"""Parser of IONTOF ``properties.txt`` files (written by SurfaceLab beside raw/GRD exports).

Layout (``docs/formats.md``): one property per line, four TAB-separated columns
``key, integer (truncated, unreliable), double (SI units), display string with unit``;
cp1252 encoding (``µ`` = byte 0xB5); ``NaN`` occurs. We use the double and fall back to
the number at the start of the display string when the double is missing.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from tofsims.errors import TofsimsReadError

__all__ = ["Properties", "Property", "parse_properties", "read_properties"]

KEY_SF = "Context.MassScale.SF"
KEY_K0 = "Context.MassScale.K0"
KEY_POLARITY = "Context.MassScale.Polarity"
KEY_TIME_RESOLUTION = "Registration.TimeResolution"
KEY_RESOLUTION = "Registration.Raster.Resolution"
KEY_RESOLUTION_X = "Registration.Raster.StageRaster.TotalResolution.X"
KEY_RESOLUTION_Y = "Registration.Raster.StageRaster.TotalResolution.Y"
KEY_SCANS = "Analysis.TotalScans"
KEY_SHOTS = "Registration.Raster.ShotsPerPixel"
KEY_PI_SHOTS = "Analysis.PIShots"
#: Most TOF channels a mass scale may reach (2²⁴ channels of 50 ps = 0.84 ms, beyond any
#: TOF cycle): tables of that many channels are allocated from SF and K0.
MAX_TOF_CHANNELS = 1 << 24
#: Largest SF accepted: 1000 u within :data:`MAX_TOF_CHANNELS`.
MAX_SF = MAX_TOF_CHANNELS / math.sqrt(1000)
#: Largest raster side accepted (pixels): instrument rasters reach 4096, stage mosaics beyond;
#: a larger claim is damage, and images are built from it.
MAX_RASTER_SIDE = 16384
KEY_FOV = "Registration.Raster.FieldOfView"
KEY_DEAD_TIME = "Context.Mode.StaticSIMS.TDC.DeadTime"
KEY_CYCLE_TIME = "Measurement.CycleTime"
KEY_SPUTTER_TIME = "Analysis.SputterTime"

_LEADING_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


@dataclass(frozen=True)
class Property:
    """One line of ``properties.txt``.

    Attributes
    ----------
    key
        Dotted property name, e.g. ``"Context.MassScale.SF"``.
    integer
        The (truncated) integer column, verbatim.
    value
        The double column (SI units: s, m), NaN when absent.
    display
        The display string with unit, e.g. ``"199.207 µm"``.
    line
        1-based line number in the file.
    """

    key: str
    integer: str
    value: float
    display: str
    line: int


@dataclass
class Properties:
    """All properties of one file, with typed accessors for the ones we use.

    Accessors raise :class:`~tofsims.errors.TofsimsReadError` naming the file (and the
    line, when the value is present but unusable) if a required property is missing.
    """

    path: str
    items: dict[str, Property] = field(default_factory=dict)

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def number(self, key: str) -> float:
        """Return the double of ``key``; raise if missing or NaN."""
        prop = self.items.get(key)
        if prop is None:
            raise TofsimsReadError(self.path, f"property {key} is missing")
        if not math.isfinite(prop.value):
            raise TofsimsReadError(
                self.path, f"property {key} has no numeric value ({prop.display!r})", prop.line
            )
        return prop.value

    def optional(self, key: str) -> float:
        """Return the double of ``key``, NaN when absent."""
        prop = self.items.get(key)
        return prop.value if prop is not None else math.nan

    def count(self, key: str) -> int:
        """Return a positive integer property (scans, pixels, shots)."""
        value = self.number(key)
        if value < 1 or value != int(value):
            raise TofsimsReadError(
                self.path,
                f"property {key} must be a positive integer, not {value!r}",
                self.items[key].line,
            )
        return int(value)

    @property
    def sf(self) -> float:
        """Mass-scale factor SF (TOF channels per √u, > 0: heavier ions arrive later).

        At most :data:`MAX_TOF_CHANNELS` / √1000: the channels up to 1000 u are allocated.
        """
        value = self.number(KEY_SF)
        if not 0 < value <= MAX_SF:
            raise TofsimsReadError(
                self.path,
                f"{KEY_SF} must be > 0 and at most {MAX_SF:.0f} channels per √u, not {value!r}",
                self.items[KEY_SF].line,
            )
        return value

    @property
    def k0(self) -> float:
        """Mass-scale offset K0 (TOF channels; SF + K0 > 0: 1 u arrives after the start)."""
        value, sf = self.number(KEY_K0), self.sf
        if not 0 < sf + value <= MAX_TOF_CHANNELS:
            raise TofsimsReadError(
                self.path,
                f"{KEY_K0} = {value!r} puts the flight time of 1 u at {sf + value:.6g} channels "
                f"(with {KEY_SF} = {sf!r}), outside 0…{MAX_TOF_CHANNELS}",
                self.items[KEY_K0].line,
            )
        return value

    @property
    def time_resolution_s(self) -> float:
        """Width of one TOF channel in s (typically 5e-11)."""
        value = self.number(KEY_TIME_RESOLUTION)
        if value <= 0:
            raise TofsimsReadError(
                self.path,
                f"{KEY_TIME_RESOLUTION} must be > 0 s, not {value!r}",
                self.items[KEY_TIME_RESOLUTION].line,
            )
        return value

    @property
    def raster(self) -> tuple[int, int]:
        """Image size ``(ny, nx)`` in pixels (each side at most :data:`MAX_RASTER_SIDE`)."""
        if KEY_RESOLUTION_X in self.items and KEY_RESOLUTION_Y in self.items:
            keys = (KEY_RESOLUTION_Y, KEY_RESOLUTION_X)
        else:
            keys = (KEY_RESOLUTION, KEY_RESOLUTION)
        sides = tuple(self.count(key) for key in keys)
        for key, side in zip(keys, sides, strict=True):
            if side > MAX_RASTER_SIDE:
                raise TofsimsReadError(
                    self.path,
                    f"property {key} claims {side} pixels per side, more than the "
                    f"{MAX_RASTER_SIDE} this reader accepts",
                    self.items[key].line,
                )
        return sides

    @property
    def total_scans(self) -> int:
        """Number of scans (depth slices)."""
        return self.count(KEY_SCANS)

    @property
    def shots_per_pixel(self) -> int:
        """Primary-ion shots per pixel and scan.

        Taken from ``Registration.Raster.ShotsPerPixel``; when that key is missing (SurfaceLab 7,
        pySPM #26) it is derived from ``Analysis.PIShots`` / (pixels × scans).
        """
        if KEY_SHOTS in self.items:
            return self.count(KEY_SHOTS)
        if KEY_PI_SHOTS in self.items:
            ny, nx = self.raster
            shots = self.number(KEY_PI_SHOTS) / (ny * nx * self.total_scans)
            if shots >= 1 and shots == int(shots):
                return int(shots)
            raise TofsimsReadError(
                self.path,
                f"{KEY_SHOTS} is missing and {KEY_PI_SHOTS} is not a multiple of pixels × scans",
                self.items[KEY_PI_SHOTS].line,
            )
        raise TofsimsReadError(self.path, f"property {KEY_SHOTS} is missing")

    @property
    def field_of_view_m(self) -> float:
        """Side of the analysed field in m (NaN if absent)."""
        return self.optional(KEY_FOV)

    @property
    def dead_time_s(self) -> float:
        """Detector (TDC) dead time in s (NaN if absent)."""
        return self.optional(KEY_DEAD_TIME)

    @property
    def cycle_time_s(self) -> float:
        """Primary-ion cycle time in s (NaN if absent)."""
        return self.optional(KEY_CYCLE_TIME)

    @property
    def polarity(self) -> str:
        """``"negative"`` or ``"positive"`` (from the display string, else the sign)."""
        prop = self.items.get(KEY_POLARITY)
        if prop is None:
            raise TofsimsReadError(self.path, f"property {KEY_POLARITY} is missing")
        text = prop.display.strip().lower()
        if text.startswith(("neg", "pos")):
            return "negative" if text.startswith("neg") else "positive"
        if math.isfinite(prop.value) and prop.value != 0:
            return "negative" if prop.value < 0 else "positive"
        raise TofsimsReadError(self.path, f"cannot read the polarity {prop.display!r}", prop.line)

    def seconds_per_scan(self) -> tuple[float, str]:
        """Sputter time per scan (s) and where it came from.

        ``Analysis.SputterTime`` (total sputter time, s) / ``Analysis.TotalScans``, e.g.
        1310.72 s over 100 scans = 13.1072 s per scan. No per-scan property is read: none
        is documented (``docs/formats.md``).

        Returns
        -------
        seconds, source
            ``(s, "properties.txt: Analysis.SputterTime / Analysis.TotalScans")``, or
            ``(nan, reason)`` when the file holds no usable sputter time (missing, NaN, or 0 s:
            a static acquisition without a sputter beam).
        """
        prop = self.items.get(KEY_SPUTTER_TIME)
        if prop is None:
            return math.nan, f"properties.txt has no {KEY_SPUTTER_TIME}"
        if not math.isfinite(prop.value):
            return math.nan, f"{KEY_SPUTTER_TIME} has no numeric value ({prop.display!r})"
        if prop.value <= 0:
            return math.nan, f"{KEY_SPUTTER_TIME} is {prop.value:g} s (no sputtering: static?)"
        scans = self.total_scans
        return prop.value / scans, f"properties.txt: {KEY_SPUTTER_TIME} / {KEY_SCANS}"

    def check_pi_shots(self) -> None:
        """Check ``Analysis.PIShots`` = pixels × scans × shots per pixel (when present)."""
        prop = self.items.get(KEY_PI_SHOTS)
        if prop is None or not math.isfinite(prop.value):
            return
        ny, nx = self.raster
        expected = ny * nx * self.total_scans * self.shots_per_pixel
        if int(prop.value) != expected:
            raise TofsimsReadError(
                self.path,
                f"{KEY_PI_SHOTS} = {prop.value:.0f} but raster {ny}×{nx} × {self.total_scans} "
                f"scans × {self.shots_per_pixel} shots per pixel = {expected}",
                prop.line,
            )

    def as_attrs(self) -> dict[str, Any]:
        """Raw properties as ``{key: double}`` (NaN kept) for a JSON header attribute."""
        return {
            key: (p.value if math.isfinite(p.value) else p.display) for key, p in self.items.items()
        }


def _parse_double(text: str, display: str) -> float:
    text = text.strip()
    try:
        return float(text)  # accepts "NaN", "inf"
    except ValueError:
        pass
    match = _LEADING_NUMBER.match(display)
    if text == "" and match:
        return float(match.group(1))
    raise ValueError(text)


def parse_properties(text: str, path: str | os.PathLike[str]) -> Properties:
    """Parse the text of a ``properties.txt`` file.

    Parameters
    ----------
    text
        Decoded file content.
    path
        The file name, used in error messages.

    Returns
    -------
    Properties

    Raises
    ------
    TofsimsReadError
        Empty file, a line without the TAB columns, a non-numeric double, a repeated key.
    """
    props = Properties(path=os.fspath(path))
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        columns = raw.split("\t")
        if len(columns) < 3 or not columns[0].strip():
            raise TofsimsReadError(
                path,
                f"expected 'key<TAB>integer<TAB>double<TAB>display' but found {raw[:60]!r}",
                number,
            )
        key = columns[0].strip()
        if " " in key:
            raise TofsimsReadError(path, f"malformed property name {key!r}", number)
        display = columns[3] if len(columns) > 3 else ""
        try:
            value = _parse_double(columns[2], display)
        except ValueError:
            raise TofsimsReadError(
                path, f"property {key}: the value {columns[2].strip()!r} is not a number", number
            ) from None
        if key in props.items:
            raise TofsimsReadError(
                path,
                f"property {key} appears twice (first on line {props.items[key].line})",
                number,
            )
        props.items[key] = Property(key, columns[1].strip(), value, display.strip(), number)
    if not props.items:
        raise TofsimsReadError(path, "no properties found (empty file?)")
    return props


def read_properties(path: str | os.PathLike[str]) -> Properties:
    """Read a ``properties.txt`` file (cp1252).

    Raises
    ------
    TofsimsReadError
        Missing, binary or malformed file.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise TofsimsReadError(path, "no such file") from None
    if b"\x00" in data:
        raise TofsimsReadError(path, "binary content, not a properties.txt text file")
    return parse_properties(data.decode("cp1252", errors="replace"), path)
