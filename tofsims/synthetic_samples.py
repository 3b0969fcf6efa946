"""What a synthetic layered TOF-SIMS sample contains: species, levels, parameters and presets.

The species are the fragments of :data:`FRAGMENTS` (our notation, with their integration
windows), and with ``neighbours=True`` the isotopologues of :data:`ISOTOPOLOGUES` and the isobaric
neighbours of :data:`NEIGHBOURS` at their true masses (:func:`tofsims.fragments.ion_mass`). Each
species has an expected count rate per voxel in each layer (CEI, coating, bulk):
:data:`DEFAULT_LEVELS` for the study presets, :data:`REAL_LEVELS` at real 3D count levels.
:class:`LayeredSample` holds every parameter of a sample and :data:`PRESETS` the named ones;
:func:`tofsims.synthetic.layered_sample` generates the volume. See ``docs/methods.md``
("Synthetic layered samples").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tofsims.fragments import NATURAL_6LI_7LI, NATURAL_10B_11B

__all__ = [
    "DEFAULT_LEVELS",
    "DOPED_BULK_BO2",
    "FRAGMENTS",
    "ISOTOPOLOGUES",
    "ISOTOPOLOGUE_WINDOWS",
    "NEIGHBOURS",
    "PRESETS",
    "REAL_LEVELS",
    "LayeredSample",
]

#: Fragments of the synthetic samples, our notation, with integration windows (u).
FRAGMENTS: dict[str, tuple[float, float]] = {
    "C2HO-": (40.98, 41.03),
    "PO3-": (78.93, 78.99),
    "LiF2-": (44.99, 45.04),
    "BO2-": (42.98, 43.02),
    "NiO2-": (89.90, 89.95),
    "CeO2-": (171.85, 171.94),
}

#: Isotopologues added with ``neighbours=True``: species → (main isotopologue, natural
#: ratio); their levels are the ratio times the main one's in every layer.
ISOTOPOLOGUES: dict[str, tuple[str, float]] = {
    "10BO2-": ("BO2-", NATURAL_10B_11B),
    "6LiF2-": ("LiF2-", NATURAL_6LI_7LI),
}
#: Integration windows (u) of the isotopologues.
ISOTOPOLOGUE_WINDOWS: dict[str, tuple[float, float]] = {
    "10BO2-": (41.98, 42.02),
    "6LiF2-": (43.99, 44.03),
}

#: Isobaric neighbours added with ``neighbours=True`` at their true masses
#: (:func:`tofsims.fragments.ion_mass`): species → (target whose window it falls in,
#: reference fragment, fractions of the reference's level in the CEI, coating and bulk).
#: The reference sets the depth shape: organics follow C2HO− (CEI), C2F− follows LiF2−
#: (fluorinated CEI; none in the oxide bulk), AlO− follows NiO2− (Al-doped oxide bulk).
#: Levels and reasoning: docs/methods.md ("Synthetic data: isobaric neighbours").
NEIGHBOURS: dict[str, tuple[str, str, tuple[float, float, float]]] = {
    "CHN2-": ("C2HO-", "C2HO-", (0.05, 0.05, 0.05)),
    "C3H5-": ("C2HO-", "C2HO-", (0.20, 0.20, 0.20)),
    "Br-": ("PO3-", "PO3-", (0.05, 0.05, 0.05)),
    "CHO2-": ("LiF2-", "C2HO-", (0.20, 0.20, 0.20)),
    "C2H5O-": ("LiF2-", "C2HO-", (0.05, 0.05, 0.05)),
    "C2F-": ("BO2-", "LiF2-", (0.03, 0.03, 0.0)),
    "CHNO-": ("BO2-", "C2HO-", (0.02, 0.02, 0.02)),
    "C2H3O-": ("BO2-", "C2HO-", (0.05, 0.05, 0.05)),
    "AlO-": ("BO2-", "NiO2-", (0.005, 0.005, 0.005)),
    "CNO-": ("10BO2-", "C2HO-", (0.01, 0.01, 0.01)),
    "C2H2O-": ("10BO2-", "C2HO-", (0.02, 0.02, 0.02)),
}

#: Bulk ¹¹BO2− level (counts per voxel) of a B-doped oxide (``boron_doped``).
DOPED_BULK_BO2 = 0.8

#: Expected counts per voxel in each layer (``cei``, ``coating``, ``bulk``) at full yield.
DEFAULT_LEVELS: dict[str, tuple[float, float, float]] = {
    "C2HO-": (3.0, 0.10, 0.05),
    "PO3-": (1.0, 0.05, 0.03),
    "LiF2-": (5.0, 0.20, 0.05),
    "BO2-": (0.10, 0.20, 0.05),
    "NiO2-": (0.05, 0.30, 4.0),
    "CeO2-": (0.02, 4.0, 0.02),
}


@dataclass(frozen=True)
class LayeredSample:
    """Parameters of a synthetic layered sample (lengths in nm, times in s).

    Attributes
    ----------
    cei_thickness_nm
        Mean CEI thickness (nm) before the tilt and bumps are added.
    cei_tilt
        Relative thickness change across the field (fraction of the mean, along x and y).
    cei_bumps
        Number of Gaussian bumps (random sign) added to the thickness map.
    cei_bump_amplitude
        Bump height as a fraction of the mean thickness.
    coating_thickness_nm
        CeO2 coating thickness below the CEI (nm); 0 means no coating.
    boron_doped
        Bulk BO2− level raised to 0.8 counts/voxel (B-doped oxide).
    boron_free
        No boron anywhere: BO2− (and ¹⁰BO2−) levels 0, so m/z 43 holds only its neighbours
        (C2F−, organics) and m/z 42 only CNO−/C2H2O− (with ``neighbours``).
    neighbours
        Add the isotopologues ¹⁰BO2−, ⁶LiF2− (natural ratios) and the isobaric neighbours
        of :data:`NEIGHBOURS` as separate species (fragments) at their true masses; the
        volume then carries coordinates ``target`` (the target window each species falls
        in; a target names itself) and ``species_mass`` (u).
    interface_sigma_nm
        Roughness σ of the depth resolution (nm); alone it gives erf edges, 16–84 % width 2σ.
    mixing_nm, information_depth_nm
        Atomic-mixing length w and information depth λ of the MRI depth resolution (nm,
        :mod:`tofsims.resolution`); 0 = none.
    sputter_rate_nm_per_s
        Constant sputter rate (nm/s) used to map time to depth.
    seconds_per_scan
        Sputter time per scan (s).
    n_scans, ny, nx
        Volume size.
    transient_depth_nm, transient_depth_fraction
        Surface transient: yield factor ``1 − a·exp(−z/λ)`` with a = fraction, λ = depth (nm).
    drift_px
        Total lateral drift (dy, dx) in pixels reached at the last scan (linear in scan).
    lateral_contrast
        Relative standard deviation of a smooth lateral yield map (secondary particles, binder,
        topography) multiplying every signal; it does not move interfaces but gives drift
        correction a structure to register.
    saturation_shots
        Primary shots per pixel and scan; when given, counts are binomial(N, 1 − exp(−λ/N)),
        the dead-time saturated detector; ``None`` gives Poisson counts.
    surface_excess
        Extra signal at the very surface (contamination, e.g. adventitious carbon on C2HO−)
        per fragment, as a fraction of its CEI level at z = 0, decaying as
        ``exp(−z/transient_depth_nm)``.
    levels
        Expected counts per voxel per layer (cei, coating, bulk) for every fragment, at full
        yield, before ``marker_peak`` scaling.
    marker_peak
        ``(fragment, counts)``: scale every level so that this fragment's field-mean expected
        counts per pixel and scan at its maximum equal ``counts`` (without drift; exact up to
        512 × 512 pixels); ``None`` = levels as given.
    """

    cei_thickness_nm: float = 10.0
    cei_tilt: float = 0.15
    cei_bumps: int = 4
    cei_bump_amplitude: float = 0.15
    coating_thickness_nm: float = 0.0
    boron_doped: bool = False
    boron_free: bool = False
    neighbours: bool = False
    interface_sigma_nm: float = 0.5
    mixing_nm: float = 0.0
    information_depth_nm: float = 0.0
    sputter_rate_nm_per_s: float = 0.05
    seconds_per_scan: float = 2.0
    n_scans: int = 150
    ny: int = 48
    nx: int = 48
    transient_depth_nm: float = 2.0
    transient_depth_fraction: float = 0.9
    drift_px: tuple[int, int] = (0, 0)
    lateral_contrast: float = 0.3
    saturation_shots: int | None = None
    surface_excess: dict[str, float] = field(default_factory=dict)
    levels: dict[str, tuple[float, float, float]] = field(
        default_factory=lambda: dict(DEFAULT_LEVELS)
    )
    marker_peak: tuple[str, float] | None = None


#: Counts per voxel per layer of a cycled NCM83 at real 3D levels (issue 12): at the LiF2−
#: maximum ≈ 0.55 counts per pixel and scan, C2HO− 0.76, PO3− 0.27, NiO2− plateau 0.41.
REAL_LEVELS: dict[str, tuple[float, float, float]] = {
    "C2HO-": (0.85, 0.03, 0.012),
    "PO3-": (0.30, 0.02, 0.008),
    "LiF2-": (0.62, 0.03, 0.008),
    "BO2-": (0.02, 0.06, 0.01),
    "NiO2-": (0.008, 0.05, 0.45),
    "CeO2-": (0.004, 0.70, 0.004),
}

#: A 64 × 64 × 250 acquisition at real levels, with a depth resolution comparable to 3 nm
#: layers (16–84 % width of an edge ≈ 2.4 nm), a surface transient and a C2HO− surface excess.
_REAL_SAMPLE: dict[str, Any] = {
    "interface_sigma_nm": 0.8,
    "mixing_nm": 1.0,
    "information_depth_nm": 0.3,
    "transient_depth_nm": 1.0,
    "transient_depth_fraction": 0.7,
    "surface_excess": {"C2HO-": 0.6},
    "n_scans": 250,
    "ny": 64,
    "nx": 64,
    "levels": REAL_LEVELS,
    "marker_peak": ("LiF2-", 0.55),
}

#: Presets of the study: pristine NCM83 (thick CEI, max of the CEI markers at ≈160 s) and the
#: B/Ce-modified one (thin CEI on a CeO2 coating, B-doped bulk, max at ≈60 s); and two at real
#: 3D count levels (issue 12): ``cycled`` (64 × 64 × 250, CEI 5–11 nm, mean 8 nm, LiF2− 0.55
#: counts per pixel and scan at its maximum) and ``thin`` (3 nm CEI on a 2 nm CeO2 coating).
PRESETS: dict[str, LayeredSample] = {
    "pristine": LayeredSample(cei_thickness_nm=10.0, cei_tilt=0.1, cei_bump_amplitude=0.1),
    "modified": LayeredSample(
        cei_thickness_nm=4.0, coating_thickness_nm=3.0, boron_doped=True, cei_tilt=0.1
    ),
    "cycled": LayeredSample(
        cei_thickness_nm=8.0, cei_tilt=0.45, cei_bumps=4, cei_bump_amplitude=0.2, **_REAL_SAMPLE
    ),
    "thin": LayeredSample(
        cei_thickness_nm=3.0,
        coating_thickness_nm=2.0,
        cei_tilt=0.2,
        cei_bumps=2,
        cei_bump_amplitude=0.1,
        **_REAL_SAMPLE,
    ),
}
