import holoviews as hv
import numpy as np
import pytest
from holoviews.core.spaces import get_nested_streams

from tests.plot_data import FRAGMENTS, BlockCounter, profile, thickness, volume, volume_values
from tofsims import plots


def curves(obj):
    return {c.label: c for c in obj.traverse(lambda x: x, [hv.Curve])}


def first(obj, kind):
    return obj.traverse(lambda x: x, [kind])[0]


# --- depth profiles -----------------------------------------------------------------------------


def test_depth_profile_draws_single_peaks_by_default():
    found = curves(plots.depth_profile(profile()))
    assert set(found) == {"C_2HO-", "LiF_2-"}
    np.testing.assert_allclose(
        found["C_2HO-"].dimension_values("sputter_time"), np.arange(40) * 2.0
    )
    np.testing.assert_allclose(found["LiF_2-"].dimension_values("intensity")[:2], [10.0, 10.0])


def test_depth_profile_selects_peaks_by_label_or_fragment():
    assert set(curves(plots.depth_profile(profile(), ["LiF2-", "total"]))) == {"LiF_2-", "total"}
    with pytest.raises(KeyError, match="no peak 'Mn-'"):
        plots.depth_profile(profile(), ["Mn-"])


def test_depth_profile_normalised_to_total():
    found = curves(plots.depth_profile(profile(), normalise="total", logy=False))
    ratio = found["C_2HO-"].dimension_values("intensity")
    np.testing.assert_allclose(ratio[0], 1000.0 / 1100.0)
    np.testing.assert_allclose(ratio[-1], 10.0 / 600.0)


def test_normalise_to_max_and_unknown_method():
    norm = plots.normalise_profile(profile(), "max")
    np.testing.assert_allclose(norm.max("scan").values, 1.0)
    with pytest.raises(ValueError, match="unknown normalisation"):
        plots.normalise_profile(profile(), "median")


def test_normalise_to_total_without_total_column_sums_singles():
    data = profile().isel(peak=[1, 2])
    norm = plots.normalise_profile(data, "total")
    np.testing.assert_allclose(norm.sum("peak").values, 1.0)


def test_depth_profile_depth_axis_and_interface_markers():
    view = plots.depth_profile(profile(), axis="depth", interfaces={"CEI/NMC": 10.0})
    curve = curves(view)["C_2HO-"]
    assert curve.kdims[0].name == "depth" and curve.kdims[0].unit == "nm"
    np.testing.assert_allclose(curve.dimension_values("depth")[-1], 19.5)
    (line,) = [c for c in view.traverse(lambda x: x, [hv.Curve]) if c.label == "CEI/NMC"]
    assert set(line.dimension_values("depth")) == {10.0}  # named in the legend
    assert view.traverse(lambda x: x, [hv.Text]) == []  # no label written over the data


def test_depth_profile_without_depth_coordinate_is_a_clear_error():
    with pytest.raises(KeyError, match="no 'depth' coordinate"):
        plots.depth_profile(profile().drop_vars("depth"), axis="depth")


def test_log_profile_drops_zero_intensities():
    data = profile()
    data["intensity"][:5, 1] = 0.0
    assert len(curves(plots.depth_profile(data))["C_2HO-"]) == 35


# --- slices -------------------------------------------------------------------------------------


def test_slice_viewer_shows_the_requested_scan_of_the_fragment():
    layout = plots.slice_viewer(volume(), "LiF2-")
    frame = layout[0][7]  # x-y overlay at scan 7
    image = first(frame, hv.Image)
    expected = volume_values()[1, 7]
    np.testing.assert_array_equal(image.dimension_values("counts", flat=False), expected)
    assert image[35.0, 25.0] == expected[2, 3]  # x, y in µm: pixel (3, 2) of 10 µm pixels
    assert [d.pprint_label for d in image.kdims] == ["x (µm)", "y (µm)"]
    assert image.vdims[0].pprint_label == "Counts (counts per pixel)"
    assert image.opts.get().kwargs["title"] == "LiF2-, scan 7 (12 s)"  # sputter time (7 + 1)·1.5 s


def test_slice_viewer_sections_follow_the_tap():
    layout = plots.slice_viewer(volume(), "C2HO-")
    tap = next(s for s in get_nested_streams(layout[1]) if isinstance(s, hv.streams.Tap))
    tap.event(x=64.0, y=26.0)  # µm: nearest pixel centres x = 65 µm (6), y = 25 µm (2)
    xz = first(layout[1][0], hv.Image)  # (x, scan) at y = 2
    yz = first(layout[2][0], hv.Image)  # (y, scan) at x = 6
    values = volume_values()[0]
    np.testing.assert_array_equal(xz.dimension_values("counts", flat=False), values[:, 2, :])
    np.testing.assert_array_equal(yz.dimension_values("counts", flat=False), values[:, :, 6])
    assert "y = 25 µm" in xz.opts.get().kwargs["title"]
    # the vertical axis of a section is physical: sputter time here (no depth scale)
    assert xz.kdims[1].pprint_label == "Sputter time (s)"
    np.testing.assert_allclose(xz.dimension_values(1, expanded=False), (np.arange(12) + 1) * 1.5)


def test_sections_are_on_depth_when_the_volume_has_one():
    data = volume().assign_coords(depth=("scan", np.arange(12) * 0.5))
    layout = plots.slice_viewer(data, "C2HO-")
    xz = first(layout[1][0], hv.Image)
    assert xz.kdims[1].pprint_label == "Depth (nm)"


def test_images_without_a_field_of_view_say_pixel():
    image = first(plots.slice_viewer(volume(field_of_view_m=None), "C2HO-")[0][0], hv.Image)
    assert [d.pprint_label for d in image.kdims] == ["x (pixel)", "y (pixel)"]


def test_slice_viewer_reads_only_the_blocks_it_shows():
    counter = BlockCounter()
    layout = plots.slice_viewer(volume(scans=12, scan_chunk=4, counter=counter), "LiF2-")
    assert counter.blocks == []  # building the view reads nothing
    layout[0][9]
    assert counter.blocks == [(1, 2, 0, 0)]  # fragment 1, scans 8-11
    counter.blocks.clear()
    layout[1][9]  # x-z section: one row through every scan block of this fragment only
    assert sorted(counter.blocks) == [(1, 0, 0, 0), (1, 1, 0, 0), (1, 2, 0, 0)]


def test_block_average_limits_plane_size_lazily():
    counter = BlockCounter()
    layout = plots.slice_viewer(volume(ny=8, nx=10, counter=counter), "C2HO-", max_pixels=4)
    image = first(layout[0][0], hv.Image)
    assert image.dimension_values("counts", flat=False).shape == (4, 3)  # 8/2 rows, 10//3 columns
    np.testing.assert_allclose(
        image.dimension_values("counts", flat=False)[0, 0], volume_values()[0, 0, :2, :3].mean()
    )


def test_slice_holomap_embeds_evenly_spaced_scans():
    holomap = plots.slice_holomap(volume(scans=12), "PO2-", max_frames=4)
    assert list(holomap.keys()) == [0, 4, 7, 11]
    np.testing.assert_array_equal(
        holomap[7].dimension_values("counts", flat=False), volume_values()[2, 7]
    )


def test_unknown_fragment_raises_key_error():
    with pytest.raises(KeyError):
        plots.slice_viewer(volume(), "Mn-")


# --- RGB, thickness, 3D -------------------------------------------------------------------------


def test_rgb_overlay_channels_are_the_three_fragments_stretched():
    rgb = plots.rgb_overlay(volume(), FRAGMENTS, scans=3, percentile=100)
    values = volume_values()[:, 3]
    for index, channel in enumerate("RGB"):
        plane = rgb.dimension_values(channel, flat=False)
        np.testing.assert_allclose(plane, values[index] / values[index].max())


def test_rgb_overlay_sums_scans_and_checks_arguments():
    rgb = plots.rgb_overlay(volume(), FRAGMENTS, scans=slice(0, 2), percentile=100)
    summed = volume_values()[0, :2].sum(axis=0)
    np.testing.assert_allclose(rgb.dimension_values("R", flat=False), summed / summed.max())
    with pytest.raises(ValueError, match="exactly three"):
        plots.rgb_overlay(volume(), FRAGMENTS[:2])


def test_rgb_overlay_of_an_empty_channel_is_black():
    data = volume()
    data["counts"] = data["counts"] * 0
    rgb = plots.rgb_overlay(data, FRAGMENTS)
    assert rgb.dimension_values("G").max() == 0


def test_thickness_map_and_histogram_ignore_undetermined_cells():
    layout = plots.thickness_map(thickness())
    image, histogram = layout
    values = thickness().values
    np.testing.assert_array_equal(image.dimension_values("thickness", flat=False), values)
    assert histogram.dimension_values("cells").sum() == values.size - 2
    assert histogram.vdims[0].pprint_label == "Map cells (count)"
    title = image.opts.get().kwargs["title"]
    mean, sd = np.nanmean(values), np.nanstd(values, ddof=1)
    assert f"mean {mean:.2f} ± {sd:.2f} nm (± SD of cells)" in title
    assert "318 of 320 cells" in title
    # 2 µm cells: the axes are in µm
    assert [d.pprint_label for d in image.kdims] == ["x (µm)", "y (µm)"]
    np.testing.assert_allclose(image.dimension_values("x", expanded=False)[:2], [1.0, 3.0])


def test_thickness_map_title_states_the_summary_value_and_a_shared_scale():
    image, _ = plots.thickness_map(thickness(), headline=(10.07, 0.16), clim=(0.0, 40.0))
    options = image.opts.get().kwargs
    assert "mean 10.07 ± 0.16 nm" in options["title"]
    assert options["clim"] == (0.0, 40.0)


def test_thickness_map_all_nan():
    data = thickness() * np.nan
    image, histogram = plots.thickness_map(data)
    assert histogram.dimension_values("cells").sum() == 0
    assert "0 of 320" in image.opts.get().kwargs["title"]


def _vtk(view):
    import panel as pn

    return next(iter(view.select(pn.pane.VTKVolume)))


def test_volume_3d_is_block_averaged_and_ordered_x_y_scan():
    view = plots.volume_3d(volume(scans=12, ny=8, nx=10), "C2HO-", max_size=4)
    data = _vtk(view).object
    assert data.shape == (3, 4, 4)  # x 10→3 (factor 3, trimmed), y 8→4 (2), scan 12→4 (3)
    np.testing.assert_allclose(data[0, 0, 0], volume_values()[0, :3, :2, :3].mean())


def test_volume_3d_opens_obliquely_with_axes_in_physical_units_and_a_colour_bar():
    import panel as pn

    data = volume().assign_coords(depth=("scan", np.arange(12) * 1.0))
    view = plots.volume_3d(data, "C2HO-")
    pane = _vtk(view)
    position = np.array(pane.camera["position"]) - np.array(pane.camera["focalPoint"])
    assert np.count_nonzero(np.abs(position) > 1e-9) == 3  # not along any axis
    assert position[2] < 0  # from above the surface (depth grows downwards)
    x_labels = pane.axes["xticker"]["labels"]
    assert x_labels and float(x_labels[-1]) <= 100  # µm, within the 100 µm field
    z_labels = [float(v) for v in pane.axes["zticker"]["labels"]]
    assert max(z_labels) <= 11  # nm of depth, not scan numbers scaled
    text = " ".join(str(m.object) for m in view.select(pn.pane.Markdown))
    assert "µm" in text and "depth in nm" in text
    bars = [p.object for p in view.select(pn.pane.HoloViews)]
    assert bars and bars[0].kdims[1].pprint_label == "C2HO- counts per voxel (counts)"


def test_views_render_with_bokeh_and_matplotlib():
    for view in (
        plots.depth_profile(profile(), interfaces={"x": 20.0}),
        plots.thickness_map(thickness()),
        plots.rgb_overlay(volume(), FRAGMENTS),
    ):
        hv.renderer("bokeh").get_plot(view)
        hv.renderer("matplotlib").get_plot(view)
    hv.renderer("bokeh").get_plot(plots.slice_viewer(volume(), "C2HO-"))


def test_slider_step_in_a_rendered_viewer_reads_one_block():
    counter = BlockCounter()
    layout = plots.slice_viewer(volume(scans=12, scan_chunk=4, counter=counter), "PO2-")
    plot = hv.renderer("bokeh").get_plot(layout)  # first view: slice + both sections
    assert {block[0] for block in counter.blocks} == {2}  # only this fragment's blocks
    counter.blocks.clear()
    plot.update((6,))  # a slider step: the sections are memoised, only the slice is read
    assert counter.blocks == [(2, 1, 0, 0)]


def test_profile_axes_always_carry_a_unit_and_curves_their_fragment_colour():
    from tofsims.palette import fragment_colour

    for normalise, unit in ((None, "counts"), ("max", "I/I_max"), ("total", "I/I_total")):
        for axis, label in (("sputter_time", "Sputter time (s)"), ("scan", "Scan (number)")):
            view = plots.depth_profile(profile(), normalise=normalise, axis=axis, logy=False)
            curve = next(iter(curves(view).values()))
            assert curve.vdims[0].unit == unit and curve.kdims[0].pprint_label == label
    data = profile()
    for curve in curves(plots.depth_profile(data)).values():
        fragment = str(data["fragment"].values[list(data["peak_label"].values).index(curve.label)])
        colour = hv.Store.lookup_options("bokeh", curve, "style").kwargs["color"]
        assert colour == fragment_colour(fragment)


def test_interfaces_move_from_depth_to_sputter_time():
    from tofsims.cei_views import interfaces_on

    data = profile()
    depth, time = data["depth"].values, data["sputter_time"].values
    moved = interfaces_on(data, {"CEI": float(depth[10])}, "sputter_time")
    assert moved == {"CEI": pytest.approx(time[10])}
    assert interfaces_on(data, {"CEI": float(depth[10])}, "scan") == {"CEI": pytest.approx(10)}
