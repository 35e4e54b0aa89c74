"""gmat-sweep plot, report, archive and diff: files written, one-line errors, and diff's exit codes."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from gmat_sweep import Sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.cli import main
from seeing import grid_sweep


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli-view")
    with LocalPool(max_workers=2) as pool:
        grid = grid_sweep(base, pool)
        other = Sweep(grid.source.path, grid={"Sat.SMA": [6800.0]}, out=base / "other").run(pool, progress=False)
    return {"grid": grid, "other": other}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("kind, options", [
    ("heatmap", ["--x", "Sat.SMA", "--y", "Sat.INC", "--z", "Sat.Earth.Altitude"]),
    ("line", ["--x", "Sat.SMA", "--y", "Sat.Earth.Altitude", "--where", "Sat.INC=51.6"]),
    ("band", ["--column", "Sat.Earth.SMA"]),
    ("histogram", ["--column", "Sat.Earth.ECC"]),
    ("scatter_matrix", ["--column", "Sat.SMA", "--column", "Sat.Earth.Altitude"]),
    ("groundtrack", []),
    ("failures", []),
])
def test_plot_writes_each_kind(sweeps, tmp_path, kind, options):
    target = tmp_path / f"{kind}.png"
    result = run("plot", sweeps["grid"].out, kind, *options, "-o", target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:4] == b"\x89PNG" and target.stat().st_size > 10_000


def test_plot_errors_are_one_line_with_exit_2(sweeps, tmp_path):
    result = run("plot", sweeps["grid"].out, "heatmap", "--x", "Sat.SMA", "-o", tmp_path / "h.png")
    assert result.exit_code == 2 and "heatmap needs --y, --z" in result.output
    result = run("plot", sweeps["grid"].out, "histogram", "--column", "Nope", "-o", tmp_path / "h.png")
    assert result.exit_code == 2 and "error: no column 'Nope'" in result.output and "Sat.Earth.SMA" in result.output
    result = run("plot", sweeps["other"].out, "heatmap", "--x", "Sat.SMA", "--y", "Sat.INC", "--z", "Sat.Earth.SMA",
                 "-o", tmp_path / "h.png")
    assert result.exit_code == 2 and "needs a 2-D grid" in result.output
    result = run("plot", tmp_path, "failures", "-o", tmp_path / "h.png")
    assert result.exit_code == 2 and "does not hold a gmat-sweep sweep" in result.output
    assert not (tmp_path / "h.png").exists()


def test_report_writes_the_html_and_says_when_the_sweep_is_partial(sweeps, tmp_path):
    result = run("report", sweeps["grid"].out, "-o", tmp_path / "r.html")
    assert result.exit_code == 0 and "partial" not in result.output
    assert "<img" in (tmp_path / "r.html").read_text()
    out = tmp_path / "partial"
    shutil.copytree(sweeps["grid"].out, out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:4]))
    result = run("report", out, "-o", tmp_path / "p.html")
    assert result.exit_code == 0 and "the sweep is partial (9 of 12 runs have not finished)" in result.output
    assert "Partial sweep" in (tmp_path / "p.html").read_text()


def test_archive_is_deterministic_and_refuses_the_sweeps_own_folder(sweeps, tmp_path):
    out = sweeps["grid"].out
    assert run("archive", out, tmp_path / "a.zip").exit_code == 0
    assert run("archive", out, tmp_path / "b.zip", "--no-logs").exit_code == 0
    assert run("archive", out, tmp_path / "c.zip").exit_code == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "c.zip").read_bytes()
    assert (tmp_path / "b.zip").stat().st_size < (tmp_path / "a.zip").stat().st_size
    result = run("archive", out, f"{out}/runs/bundle.zip")
    assert result.exit_code == 2 and "inside the sweep's own folder" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_diff_exit_codes(sweeps, tmp_path):
    a = sweeps["grid"].out
    b = tmp_path / "b"
    shutil.copytree(a, b)
    result = run("diff", a, b)
    assert result.exit_code == 0 and result.output.strip().endswith("equal within tolerance")
    bundle = tmp_path / "a.zip"
    run("archive", a, bundle)
    assert run("diff", bundle, b).exit_code == 0  # a bundle compares like its folder
    entries = (b / "manifest.jsonl").read_text().splitlines()
    (b / "manifest.jsonl").write_text("\n".join(entries[:-1]) + "\n")  # the last run never finished in B
    result = run("diff", a, b)
    assert result.exit_code == 1 and "runs only in A (1)" in result.output and "NOT equal" in result.output
    result = run("diff", a, sweeps["other"].out)
    assert result.exit_code == 2 and "ran different designs" in result.output
    assert "A sweeps Sat.SMA, Sat.INC; B sweeps Sat.SMA" in result.output
