import holoviews as hv
import numpy as np
import pytest

from dems import plots
from dems.palette import gas_colour
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
    np.testing.assert_allclose(found["Ewe"].dimension_values("ewe"), ec["potential"].values)
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


def onset_lines(view):
    """``{gas: (potential, colour)}`` of the onset lines of one frame."""
    found = {}
    for curve in view.traverse(lambda x: x, [hv.Curve]):
        if "onset" in curve.label:
            colour = hv.Store.lookup_options("bokeh", curve, "style").kwargs["color"]
            found[curve.label.split()[0]] = (curve.dimension_values(0)[0], colour)
    return found


def test_flux_vs_potential_marks_onsets_with_uncertainty_band():
    view = plots.flux_vs_potential(flux(), ONSETS)[1]
    lines = onset_lines(view)
    assert {gas: x for gas, (x, _) in lines.items()} == {"O2": 4.39, "CO2": 4.05}
    spans = view.traverse(lambda x: x.data, [hv.VSpan])
    assert len(spans) == 1  # CO2 has no uncertainty, so no band
    assert list(spans[0]) == [pytest.approx(4.38), pytest.approx(4.40)]
    labels = [c.label for c in view.traverse(lambda x: x, [hv.Curve])]
    assert "O2 onset 4.390 ± 0.010 V" in labels  # the value is in the legend, not on the plot
    assert view.traverse(lambda x: x, [hv.Text]) == []


def test_each_gas_has_one_colour_in_curves_onsets_and_bars():
    data = flux()
    frame = plots.flux_vs_potential(data, ONSETS)[1]
    colours = {
        c.label.split()[0]: hv.Store.lookup_options("bokeh", c, "style").kwargs["color"]
        for c in frame.traverse(lambda x: x, [hv.Curve])
    }
    assert colours == {"O2": gas_colour("O2"), "CO2": gas_colour("CO2")}
    assert {gas: colour for gas, (_, colour) in onset_lines(frame).items()} == colours
    # the same gas in another order, alone, or in the bars keeps its colour
    alone = plots.flux_vs_potential(data.sel(gas=["CO2"]), ONSETS)[1]
    assert {g: c for g, (_, c) in onset_lines(alone).items()} == {"CO2": gas_colour("CO2")}
    _, bars = plots.cumulative_gas(data)
    mapping = hv.Store.lookup_options("bokeh", bars.Bars.I, "style").kwargs["color"]
    assert {g: mapping.apply(bars.Bars.I.select(gas=g))[0] for g in ("O2", "CO2")} == colours


def test_hover_names_the_series():
    curve = curves(plots.flux_vs_time(flux()))["O2"]
    tooltips = hv.Store.lookup_options("bokeh", curve, "plot").kwargs["hover_tooltips"]
    assert tooltips[0] == ("gas", "O2")


def test_potential_axis_names_its_reference():
    data = flux()
    data["potential"].attrs["reference_electrode"] = "Li/Li+ (0.000 V)"
    o2 = curves(plots.flux_vs_potential(data)[1])["O2"]
    assert o2.kdims[0].pprint_label == "Potential (V vs Li/Li⁺)"
    assert plots.potential_dimension("SCE Saturated Calomel Electrode (0.241 V)").unit == (
        "V vs SCE"
    )
    assert plots.potential_dimension(None).unit == "V"


def test_flux_vs_potential_skips_undetermined_onsets():
    onsets = {"O2": {"potential_V": float("nan"), "uncertainty_V": float("nan"), "method": "x"}}
    view = plots.flux_vs_potential(flux(), onsets)[1]
    assert onset_lines(view) == {}


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


def test_cumulative_gas_bars_in_the_prefix_that_suits_them():
    running, bars = plots.cumulative_gas(flux(constant=1e-9))
    table = dict(
        zip(bars.Bars.I.dimension_values("bar"), bars.Bars.I.dimension_values(1), strict=True)
    )
    assert table["O2 · 1"] == pytest.approx(99.0)
    assert table["CO2 · 2"] == pytest.approx(198.0)
    assert bars.Bars.I.vdims[0].unit == "nmol"
    o2 = curves(running)["O2"].dimension_values("amount")
    # 1 nmol/s: 0 at each cycle start, +1 nmol per second, 99 nmol at its end
    assert o2[0] == 0 and o2[100] == 0
    np.testing.assert_allclose(o2[:100], np.arange(100) * 1.0, atol=1e-9)


def test_amount_bars_show_the_given_amounts_with_whiskers():
    amounts = {1: {"O2": (35.4e-6, 0.46e-6), "CO2": (110.3e-6, 1.4e-6)}}
    _, bars = plots.cumulative_gas(flux(), amounts)
    assert bars.Bars.I.vdims[0].unit == "µmol"
    np.testing.assert_allclose(bars.Bars.I.dimension_values(1), [35.4, 110.3])
    np.testing.assert_allclose(bars.ErrorBars.I.dimension_values(2), [0.46, 1.4])
    assert list(bars.Bars.I.dimension_values("text")) == ["35.400 ± 0.460", "110.300 ± 1.400"]
    assert "± 1σ" in hv.Store.lookup_options("bokeh", bars, "plot").kwargs["title"]


def test_ec_ms_links_fluxes_with_potential_and_current_on_one_time_axis():
    _, ec = ms_and_ec()
    data = flux().isel(time=slice(0, 101)).assign_coords(time=ec["time"].values)
    layout = plots.ec_ms(data, ec)
    upper, lower = layout
    assert upper.Curve.O2.kdims[0].name == lower.Curve.Ewe.kdims[0].name == "time"
    assert lower.Curve.I.vdims[0].pprint_label == "Current (mA)"
    rendered = hv.render(layout, backend="bokeh")
    top, bottom = (child[0] for child in rendered.children)
    assert top.x_range is bottom.x_range  # zooming one zooms the other
    assert top.min_border_left == bottom.min_border_left  # frames aligned
    by_potential = plots.ec_ms(data, ec, against="potential")
    assert by_potential[0].Curve.O2.kdims[0].name == "potential"


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
