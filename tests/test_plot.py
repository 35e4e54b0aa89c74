"""Every plot on real sweeps: the figure holds the expected axes and data, and renders to a PNG that is not blank."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

import gmat_sweep
from gmat_sweep import ManifestError, Sweep, plot
from gmat_sweep.backends import LocalPool
from seeing import GRID, grid_sweep, mission, samples_sweep


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    base = tmp_path_factory.mktemp("seeing")
    with LocalPool(max_workers=2) as pool:
        grid = grid_sweep(base, pool)
        samples = samples_sweep(base, pool)
        # A 1-D grid of a mission whose report has no latitude or longitude.
        script = mission(base / "mission")
        script.write_text(script.read_text().replace(", Sat.Earth.Latitude, Sat.Earth.Longitude", ""))
        line = Sweep(script, grid={"Sat.SMA": [6800.0, 6900.0]}, out=base / "line").run(pool, progress=False)
    return {"grid": grid, "samples": samples, "line": line}


def finals(sweep, column):
    """The last report row of each ok run, read straight from the results table."""
    return sweep.results()[column].groupby(level="run_id").last()


def png_pixels(fig):
    import matplotlib.image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    buffer.seek(0)
    return matplotlib.image.imread(buffer)


def assert_not_blank(fig):
    pixels = png_pixels(fig)[..., :3]
    # A figure with only a white canvas has one colour; a drawn plot has many.
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


def test_heatmap_holds_each_grid_points_final_value_and_marks_the_failed_runs(sweeps):
    s = sweeps["grid"]
    fig = plot.heatmap(s, x="Sat.SMA", y="Sat.INC", z="Sat.Earth.Altitude")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Sat.SMA", "Sat.INC")
    mesh = ax.collections[0]
    values = np.ma.filled(mesh.get_array(), np.nan).reshape(3, 4)  # rows: INC ascending, columns: SMA ascending
    expected = finals(s, "Sat.Earth.Altitude")
    summary = s.summary()
    for run_id, row in summary.iterrows():
        i, j = GRID["Sat.INC"].index(row["Sat.INC"]), GRID["Sat.SMA"].index(row["Sat.SMA"])
        if row["status"] == "ok":
            assert values[i, j] == expected.loc[run_id]
        else:
            assert np.isnan(values[i, j])
    # The failed runs (Sat.INC 97.8) are crossed out at their grid points.
    crosses = [c for c in ax.collections if len(c.get_offsets()) and c.get_paths()
               and np.array_equal(np.asarray(c.get_offsets())[:, 1], [97.8] * 4)]
    assert len(crosses) == 1 and sorted(np.asarray(crosses[0].get_offsets())[:, 0]) == GRID["Sat.SMA"]
    assert fig.axes[1].get_ylabel() == "Sat.Earth.Altitude"  # the colour bar
    assert_not_blank(fig)


def test_heatmap_on_a_design_that_is_not_a_2d_grid_says_which_plot_fits(sweeps):
    with pytest.raises(plot.PlotError, match=r"needs a grid sweep.*samples design of 24 runs.*scatter_matrix"):
        plot.heatmap(sweeps["samples"], "Sat.SMA", "Sat.Cd", "Sat.Earth.Altitude")
    with pytest.raises(plot.PlotError, match=r"needs a 2-D grid; this grid sweeps only Sat.SMA.*line\(s, 'Sat.SMA'"):
        plot.heatmap(sweeps["line"], "Sat.SMA", "Sat.INC", "Sat.Earth.Altitude")
    with pytest.raises(plot.PlotError, match=r"'Sat.Cd' is not a parameter of this grid.*Sat.SMA, Sat.INC"):
        plot.heatmap(sweeps["grid"], "Sat.SMA", "Sat.Cd", "Sat.Earth.Altitude")


def test_a_column_that_does_not_exist_names_the_ones_that_do(sweeps):
    with pytest.raises(plot.PlotError) as caught:
        plot.histogram(sweeps["grid"], "Sat.Earth.Altitud")
    message = str(caught.value)
    assert "no column 'Sat.Earth.Altitud'" in message and "Sat.Earth.Altitude" in message
    assert "parameters Sat.SMA, Sat.INC" in message and "Sat.Earth.ECC" in message  # and the collected value
    with pytest.raises(plot.PlotError, match="no report named 'Nope'; the sweep's reports are: Track"):
        plot.band(sweeps["grid"], "Sat.Earth.SMA", report="Nope")


def test_an_out_folder_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ManifestError, match="does not hold a gmat-sweep sweep"):
        plot.failures(tmp_path)


def test_line_draws_one_line_per_other_parameter_value(sweeps):
    s = sweeps["grid"]
    fig = plot.line(s, x="Sat.SMA", y="Sat.Earth.Altitude")
    ax = fig.axes[0]
    lines = [l for l in ax.get_lines() if l.get_label().startswith("Sat.INC=")]
    assert [l.get_label() for l in lines] == ["Sat.INC=28.5", "Sat.INC=51.6", "Sat.INC=97.8"]
    expected = finals(s, "Sat.Earth.Altitude")
    summary = s.summary()
    ids = summary.index[summary["Sat.INC"] == 28.5]
    assert list(lines[0].get_xdata()) == GRID["Sat.SMA"]
    assert list(lines[0].get_ydata()) == list(expected.loc[ids])
    assert np.isnan(lines[2].get_ydata()).all()  # every run at 97.8 deg failed
    assert_not_blank(fig)


def test_failures_places_each_failed_run_and_names_gmats_error(sweeps):
    fig = plot.failures(sweeps["grid"])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "ok (8)" and "Gains" in labels[1] and labels[1].endswith("(4)")
    failed = next(c for c in ax.collections if c.get_label() == labels[1])
    assert sorted(map(tuple, np.asarray(failed.get_offsets()))) == [(a, 97.8) for a in GRID["Sat.SMA"]]
    assert ax.get_title() == "4 failed of 12 runs"
    assert_not_blank(fig)


def test_band_gives_the_median_and_draws_each_run_when_few(sweeps):
    s = sweeps["samples"]
    fig = plot.band(s, "Sat.Earth.Altitude")
    ax = fig.axes[0]
    median = next(l for l in ax.get_lines() if l.get_label() == "median")
    first_rows = s.results()["Sat.Earth.Altitude"].groupby(level="run_id").first()
    assert median.get_ydata()[0] == pytest.approx(np.median(first_rows), rel=1e-12)
    assert len([l for l in ax.get_lines() if l.get_label().startswith("_")]) == 24  # the thin per-run lines
    assert ax.get_xlabel() == "elapsed [minutes]" and median.get_xdata()[-1] == pytest.approx(50.0)
    thick = plot.band(s, "Sat.Earth.Altitude", thin=10)
    assert len(thick.axes[0].get_lines()) == 1
    assert_not_blank(fig)


def test_groundtrack_draws_every_ok_run_up_to_the_latitude_of_its_inclination(sweeps):
    s = sweeps["grid"]
    fig = plot.groundtrack(s)
    ax = fig.axes[0]
    tracks = [l for l in ax.get_lines() if len(l.get_xdata()) > 1]
    assert len(tracks) == 8
    summary = s.summary()
    for line, run_id in zip(tracks, summary.index[summary["status"] == "ok"]):
        lat, lon = np.asarray(line.get_ydata(), float), np.asarray(line.get_xdata(), float)
        # Starting at the ascending node, a run of half an orbit passes the highest latitude, which is the
        # inclination (geodetic latitude exceeds it by up to ~0.2 deg on the flattened Earth).
        assert np.nanmax(np.abs(lat)) == pytest.approx(summary.loc[run_id, "Sat.INC"], abs=0.5)
        assert np.nanmin(lon) >= -180 and np.nanmax(lon) <= 180
    assert ax.get_xlim() == (-180, 180)
    with pytest.raises(plot.PlotError, match=r"no report column ends in '.Latitude'; add e.g. Sat.Earth.Latitude"):
        plot.groundtrack(sweeps["line"])
    assert_not_blank(fig)


def test_scatter_matrix_pairs_inputs_with_outputs(sweeps):
    s = sweeps["samples"]
    columns = ["Sat.SMA", "Sat.Cd", "Sat.Earth.Altitude"]
    fig = plot.scatter_matrix(s, columns)
    axes = np.array(fig.axes).reshape(3, 3)
    assert sum(ax.axison for ax in axes.flat) == 6
    summary = s.summary()
    points = np.asarray(axes[1][0].collections[0].get_offsets())
    assert np.array_equal(points, summary[["Sat.SMA", "Sat.Cd"]].to_numpy())
    alt = np.asarray(axes[2][0].collections[0].get_offsets())[:, 1]
    assert np.array_equal(alt, finals(s, "Sat.Earth.Altitude").to_numpy())
    assert sum(p.get_height() for p in axes[0][0].patches) == 24
    assert axes[2][1].get_xlabel() == "Sat.Cd" and axes[2][0].get_ylabel() == "Sat.Earth.Altitude"
    # Higher orbits stay higher: the final altitude follows the dispersed SMA almost exactly.
    assert np.corrcoef(summary["Sat.SMA"], alt)[0, 1] > 0.99
    with pytest.raises(plot.PlotError, match="at least two columns; for one, use histogram"):
        plot.scatter_matrix(s, ["Sat.SMA"])
    assert_not_blank(fig)


def test_histogram_marks_the_percentiles(sweeps):
    s = sweeps["samples"]
    fig = plot.histogram(s, "Sat.Earth.Altitude", percentiles=(5, 50, 99))
    ax = fig.axes[0]
    marks = [l.get_xdata()[0] for l in ax.get_lines()]
    assert marks == pytest.approx(np.percentile(finals(s, "Sat.Earth.Altitude"), [5, 50, 99]), rel=1e-12)
    assert sum(p.get_height() for p in ax.patches) == 24
    assert_not_blank(fig)


def running_statistics(values, stats):
    """The shape gmat_sweep.convergence returns: indexed by n, <stat>, <stat>_lo, <stat>_hi (normal-theory bands)."""
    rows = []
    for n in range(2, len(values) + 1):
        head = np.asarray(values[:n], float)
        row = {"n": n}
        for stat in stats:
            value = head.mean() if stat == "mean" else head.std(ddof=1) if stat == "std" else \
                np.percentile(head, float(stat[1:]))
            half = 1.96 * head.std(ddof=1) / np.sqrt(n)
            row.update({stat: value, f"{stat}_lo": value - half, f"{stat}_hi": value + half})
        rows.append(row)
    return pd.DataFrame(rows).set_index("n")


def test_convergence_draws_each_statistic_with_its_band(sweeps):
    s = sweeps["samples"]
    stats = ("mean", "std", "p95", "p99")
    if callable(getattr(gmat_sweep, "convergence", None)):
        table = gmat_sweep.convergence(s, "Sat.Earth.Altitude", stats=stats)
        fig = plot.convergence(s, "Sat.Earth.Altitude", stats=stats)
    else:
        with pytest.raises(plot.PlotError, match="needs gmat_sweep.convergence"):
            plot.convergence(s, "Sat.Earth.Altitude")
        table = running_statistics(finals(s, "Sat.Earth.Altitude").to_numpy(), stats)
        fig = plot.convergence(s, "Sat.Earth.Altitude", stats=stats, table=table)
    assert [ax.get_ylabel() for ax in fig.axes] == list(stats)
    for ax, stat in zip(fig.axes, stats):
        line = next(l for l in ax.get_lines() if l.get_label() == stat)
        assert np.array_equal(line.get_xdata(), table.index.to_numpy(float))
        assert np.array_equal(line.get_ydata(), table[stat].to_numpy())
    with pytest.raises(plot.PlotError, match="lacks p99, p99_lo, p99_hi"):
        plot.convergence(s, "x", stats=("p99",), table=table.drop(columns=["p99", "p99_lo", "p99_hi"]))
    assert_not_blank(fig)


@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_save_writes_each_format(sweeps, tmp_path, suffix):
    path = plot.save(plot.histogram(sweeps["samples"], "Sat.Earth.SMA"), tmp_path / f"h.{suffix}")
    head = open(path, "rb").read(8)
    assert head.startswith({"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[suffix])
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        plot.save(plot.histogram(sweeps["samples"], "Sat.Earth.SMA"), tmp_path / "h.jpg")
