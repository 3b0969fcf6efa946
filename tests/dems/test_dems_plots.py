import holoviews as hv
import numpy as np
import pytest

from dems import plots
from tests.plot_data import ONSETS, flux, ms_and_ec


def curves(obj):
    return {c.label: c for c in obj.traverse(lambda x: x, [hv.Curve])}


def test_ion_currents_one_curve_per_channel_on_its_own_clock():
    ms, ec = ms_and_ec()
    view = plots.ion_currents(ms, ec)
    found = curves(view)
    assert set(found) == {"M32", "M44", "Ewe"}
    np.testing.assert_allclose(found["M44"].dimension_values("time"), ms["time"].values[1])
    # shown in pA (largest current 3e-10 A), hover and axis say so
    assert found["M32"].vdims[0].unit == "pA"
    np.testing.assert_allclose(
        found["M32"].dimension_values("signal"), ms["signal"].values[0] * 1e12
    )
    np.testing.assert_allclose(found["Ewe"].dimension_values("potential"), ec["potential"].values)
    options = hv.Store.lookup_options("bokeh", view, "plot").kwargs
    assert options["multi_y"] is True
    assert (options["width"], options["title"]) == (plots.WIDTH, "Ion currents")


@pytest.mark.parametrize(
    ("peak", "unit", "expected"),
    [
        (3e-10, "A", (1e12, "pA")),
        (2.5e-9, "mol/s", (1e9, "nmol/s")),
        (999e-9, "mol/s", (1e9, "nmol/s")),
        (1e-6, "mol", (1e6, "µmol")),
        (5.0, "A", (1.0, "A")),
        (1e-18, "A", (1e15, "fA")),
        (3e-10, "mbar", (1.0, "mbar")),  # partial pressures are shown as stored
    ],
)
def test_display_scale_picks_the_prefix(peak, unit, expected):
    factor, shown = plots.display_scale(np.array([np.nan, -peak / 2, peak]), unit)
    assert shown == expected[1]
    assert factor == pytest.approx(expected[0])


def test_display_scale_of_all_nan_or_zero():
    assert plots.display_scale(np.array([np.nan]), "A") == (1.0, "A")
    assert plots.display_scale(np.zeros(3), "mol/s") == (1.0, "mol/s")


def test_ion_currents_log_axis_drops_non_positive_and_nan_samples():
    ms, _ = ms_and_ec()
    ms["signal"][0, :5] = 0.0
    ms["signal"][0, 5] = np.nan
    found = curves(plots.ion_currents(ms, logy=True))
    assert len(found["M32"]) == ms.sizes["sample"] - 6
    assert len(curves(plots.ion_currents(ms, logy=False))["M32"]) == ms.sizes["sample"] - 1


def test_ion_currents_stacked_layout_for_png():
    ms, ec = ms_and_ec()
    view = plots.ion_currents(ms, ec, stacked=True)
    assert isinstance(view, hv.Layout) and len(view) == 2


def test_flux_vs_potential_frames_per_cycle_keep_charging_samples_only():
    data = flux()
    view = plots.flux_vs_potential(data, ONSETS)
    assert list(view.keys()) == [1, 2]
    o2 = curves(view[1])["O2"]
    potential = o2.dimension_values("potential")
    # cycle 1 = t 0..99; the potential rises for t < 50 (np.gradient: up to the apex sample)
    assert 45 <= len(potential) <= 51
    assert potential.min() == pytest.approx(3.0) and potential.max() == pytest.approx(4.5, abs=0.04)
    assert len(curves(plots.flux_vs_potential(data, charge_only=False)[1])["O2"]) == 100


def test_flux_vs_potential_marks_onsets_with_uncertainty_band():
    view = plots.flux_vs_potential(flux(), ONSETS)[1]
    lines = view.traverse(lambda x: x.data, [hv.VLine])
    spans = view.traverse(lambda x: x.data, [hv.VSpan])
    assert sorted(lines) == [4.05, 4.39]
    assert len(spans) == 1  # CO2 has no uncertainty, so no band
    assert list(spans[0]) == [pytest.approx(4.38), pytest.approx(4.40)]
    texts = view.traverse(lambda x: x.text, [hv.Text])
    assert any("4.390 V ± 0.010 V" in t for t in texts)


def test_flux_vs_potential_skips_undetermined_onsets():
    onsets = {"O2": {"potential_V": float("nan"), "uncertainty_V": float("nan"), "method": "x"}}
    view = plots.flux_vs_potential(flux(), onsets)[1]
    assert view.traverse(lambda x: x, [hv.VLine]) == []


def test_flux_vs_potential_uses_charge_coordinate_when_given():
    data = flux()
    data = data.assign_coords(charge=("time", data["time"].values % 100 >= 90))
    o2 = curves(plots.flux_vs_potential(data)[1])["O2"]
    assert len(o2) == 10


def test_flux_vs_time_has_potential_twin_axis():
    found = curves(plots.flux_vs_time(flux()))
    assert set(found) == {"O2", "CO2", "Ewe"}


def test_amount_per_cycle_integrates_constant_flux():
    amount = plots.amount_per_cycle(flux(constant=1e-9))
    assert amount.dims == ("gas", "cycle")
    # each cycle spans 99 s of samples (t = 0..99 and 100..199)
    np.testing.assert_allclose(amount.sel(gas="O2").values, [99e-9, 99e-9])
    np.testing.assert_allclose(amount.sel(gas="CO2").values, [198e-9, 198e-9])
    assert amount.attrs["units"] == "mol"


def test_amount_per_cycle_stays_lazy_on_dask_input():
    import dask
    import dask.array

    eager = flux()
    lazy = eager.copy(data=dask.array.from_array(eager.values, chunks=(1, 50)))
    with dask.config.set(scheduler=_refuse):
        amount = plots.amount_per_cycle(lazy)
    assert amount.chunks is not None
    np.testing.assert_allclose(amount.sel(gas="O2").values, [99e-9, 99e-9])


def _refuse(*args, **kwargs):
    raise AssertionError("computed while building the graph")


def test_cumulative_gas_bars_in_micromol():
    running, bars = plots.cumulative_gas(flux(constant=1e-9))
    table = {
        (c, g): v for c, g, v in zip(*(bars.dimension_values(i) for i in range(3)), strict=True)
    }
    assert table[("1", "O2")] == pytest.approx(0.099)
    assert table[("2", "CO2")] == pytest.approx(0.198)
    o2 = curves(running)["O2"].dimension_values("amount")
    # 1 nmol/s: 0 at each cycle start, +1e-3 µmol per second, 0.099 µmol at its end
    assert o2[0] == 0 and o2[100] == 0
    np.testing.assert_allclose(o2[:100], np.arange(100) * 1e-3, atol=1e-12)


def test_running_amount_restarts_every_cycle_and_matches_the_total():
    data = flux(constant=2e-9)
    running = plots.running_amount(data)
    assert running.dims == ("gas", "time")
    per_cycle = plots.amount_per_cycle(data)
    np.testing.assert_allclose(running.sel(gas="O2").values[[99, 199]], per_cycle.sel(gas="O2"))


def test_calibration_fit_line_matches_sensitivity():
    import xarray as xr

    calibration = xr.Dataset(
        {
            "flux": (("gas", "point"), [[1e-9, 2e-9, 3e-9]], {"units": "mol/s"}),
            "signal": (("gas", "point"), [[1.1e-10, 2.0e-10, 3.05e-10]], {"units": "A"}),
            "sensitivity": ("gas", [0.1]),
            "intercept": ("gas", [5e-12]),
        },
        coords={"gas": ["O2"]},
    )
    layout = plots.calibration_fit(calibration)
    line = layout.traverse(lambda x: x, [hv.Curve])[0]
    # shown in nmol/s and pA
    assert (line.kdims[0].unit, line.vdims[0].unit) == ("nmol/s", "pA")
    x, y = line.dimension_values("flux") * 1e-9, line.dimension_values("signal") * 1e-12
    np.testing.assert_allclose(y, 0.1 * x + 5e-12)
    points = layout.traverse(lambda x: x, [hv.Scatter])[0]
    np.testing.assert_allclose(points.dimension_values("signal"), [110.0, 200.0, 305.0])
    assert (
        "0.1 C/mol"
        in layout.traverse(lambda x: x.opts.get().kwargs.get("title", ""), [hv.Overlay])[0]
    )


def test_potentiostat_view():
    _, ec = ms_and_ec()
    found = curves(plots.potentiostat(ec))
    np.testing.assert_allclose(found["I"].dimension_values("current"), 0.1)


def test_views_render_with_bokeh_and_matplotlib():
    ms, ec = ms_and_ec()
    for view in (
        plots.ion_currents(ms, ec),
        plots.flux_vs_potential(flux(), ONSETS),
        plots.cumulative_gas(flux()),
    ):
        hv.renderer("bokeh").get_plot(view)
    for view in (
        plots.ion_currents(ms, ec, stacked=True),
        plots.flux_vs_time(flux(), stacked=True),
        plots.flux_vs_potential(flux(), ONSETS).last,
        plots.cumulative_gas(flux()),
        plots.calibration_fit(_calibration()),
    ):
        hv.renderer("matplotlib").get_plot(view)
    hv.renderer("bokeh").get_plot(plots.calibration_fit(_calibration()))
    hv.renderer("bokeh").get_plot(plots.potentiostat(ec))


def _calibration():
    import xarray as xr

    return xr.Dataset(
        {
            "flux": (("gas", "point"), [[1e-9, 2e-9], [1e-9, 3e-9]], {"units": "mol/s"}),
            "signal": (("gas", "point"), [[1e-10, 2e-10], [2e-10, 6e-10]], {"units": "A"}),
            "sensitivity": ("gas", [0.1, 0.2]),
        },
        coords={"gas": ["O2", "CO2"]},
    )


def test_envelope_thins_long_curves_but_keeps_spikes():
    t = np.arange(100_000, dtype=float)
    y = np.sin(t / 5000.0)
    y[12_345] = 50.0  # a single-sample spike
    y[67_890] = -50.0
    kept_t, kept_y = plots.envelope(t, y, 1000)
    assert kept_t.size <= 1000
    assert np.all(np.diff(kept_t) > 0)  # time order kept
    assert 50.0 in kept_y and -50.0 in kept_y
    assert kept_t[kept_y == 50.0] == 12_345
    np.testing.assert_array_equal(kept_y, y[kept_t.astype(int)])  # only real samples
    assert plots.envelope(t[:10], y[:10], 1000)[0].size == 10
    assert plots.envelope(t, y, None)[0].size == t.size


def test_ion_currents_thin_long_channels():
    import xarray as xr

    n = 50_000
    t = np.arange(n, dtype=float)
    ms = xr.Dataset(
        {"signal": (("channel", "sample"), [1e-10 + 1e-12 * np.sin(t)], {"units": "A"})},
        coords={"channel": ["M32"], "time": (("channel", "sample"), [t])},
    )
    assert len(curves(plots.ion_currents(ms, max_points=2000))["M32"]) <= 2000
    assert len(curves(plots.ion_currents(ms, max_points=None))["M32"]) == n
