"""The notebook card and the self-contained HTML report, checked in headless Chromium."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import chromium
from gmat_sweep import ManifestError, Sweep
from gmat_sweep.backends import LocalPool
from gmat_sweep.htmlreport import LAYOUTS, report
from seeing import grid_sweep, samples_sweep


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    with LocalPool(max_workers=2) as pool:
        return {"grid": grid_sweep(base, pool), "samples": samples_sweep(base, pool, count=16)}


@pytest.fixture(scope="module")
def browser():
    if chromium.find_chromium() is None:
        pytest.skip("no Chromium on PATH: apt-get install chromium (.ci/run installs it)")
    return chromium.load


def captions(html):
    return re.findall(r"<figcaption>(.*?)</figcaption>", html)


def assert_self_contained(html):
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    for link in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert link.startswith("data:image/png;base64,"), link[:80]
    assert not re.search(r"https?://", html)


def assert_rendered(load, images):
    """The page loaded without console errors or requests beyond the file, and every image decoded."""
    import matplotlib.image

    assert load.errors == []
    assert all(url.startswith(("file://", "data:")) for url in load.requests), load.requests
    assert len(load.images) == images
    assert all(i["complete"] and i["decoded"] and i["width"] > 300 and i["height"] > 200 for i in load.images)
    pixels = matplotlib.image.imread(io.BytesIO(load.screenshot))[..., :3]
    assert pixels.shape[0] > 1000 and pixels.shape[1] >= 1000
    # Not blank: many colours (plots), and dark pixels (text) spread down the page.
    assert len(np.unique((pixels[::4, ::4] * 255).astype(int).reshape(-1, 3), axis=0)) > 200
    dark_rows = np.flatnonzero((pixels.mean(axis=2) < 0.3).any(axis=1))
    assert dark_rows.min() < 100 and dark_rows.max() > pixels.shape[0] * 0.8


def test_the_report_of_a_grid_says_what_was_run_and_renders_in_chromium(sweeps, tmp_path, browser):
    s = sweeps["grid"]
    path = report(s, tmp_path / "report.html")
    html = open(path, encoding="utf-8").read()
    assert_self_contained(html)
    for fact in (s.source.sha256, "grid, 12 runs", "GMAT R2026a", "gmatpy 0.2.1", "ok 8", "failed 4", "missing 0",
                 "Sat.SMA</code>: 6778.137, 6828.137, 6878.137, 6928.137", "Slowest runs", "index out-of-bounds"):
        assert fact in html, fact
    assert "Partial sweep" not in html
    shown = captions(html)
    assert shown == ["Sat.Earth.SMA over the grid", "Sat.Earth.Altitude over the grid", "Sat.Earth.ECC over the grid",
                     "Sat.Earth.SMA over time across runs", "Sat.Earth.Altitude over time across runs",
                     "ground tracks", "where the runs that are not ok are"]
    load = browser(path)
    assert load.title == "gmat-sweep report: leo_track.script"
    assert "4 failed runs, with GMAT's messages" in load.text
    assert_rendered(load, len(shown))
    (tmp_path / "shot.png").write_bytes(load.screenshot)


def test_a_samples_sweep_gets_inputs_against_outputs_and_distributions(sweeps, tmp_path):
    html = open(report(sweeps["samples"], tmp_path / "r.html", columns=["Sat.Earth.Altitude"])).read()
    assert captions(html) == ["inputs against outputs", "distribution of Sat.Earth.Altitude",
                              "Sat.Earth.Altitude over time across runs", "ground tracks"]
    assert_self_contained(html)


def test_a_dispersion_design_kind_gets_the_dispersion_layout(sweeps, tmp_path):
    assert LAYOUTS["monte_carlo"] == LAYOUTS["lhs"] == LAYOUTS["sobol"] == "dispersion"
    s = Sweep.from_manifest(sweeps["samples"].out)
    s.design.kind = "monte_carlo"  # as a Monte Carlo design will call itself
    html = open(report(s, tmp_path / "r.html", columns=["Sat.Earth.Altitude"])).read()
    shown = captions(html)
    assert "distribution of Sat.Earth.Altitude" in shown and "Sat.Earth.Altitude over time across runs" in shown
    assert "monte_carlo, 16 runs" in html


def test_a_partial_sweep_reports_what_is_there_and_says_it_is_partial(sweeps, tmp_path, browser):
    out = tmp_path / "partial"
    shutil.copytree(sweeps["grid"].out, out)
    lines = (out / "manifest.jsonl").read_bytes().split(b"\n")
    # As a sweep killed mid-way leaves it: the header, five finished runs and a torn sixth line.
    (out / "manifest.jsonl").write_bytes(b"\n".join(lines[:6]) + b"\n" + lines[6][:40])
    path = report(out, tmp_path / "partial.html")
    html = open(path).read()
    assert "Partial sweep" in html and "7 of 12 runs have not finished" in html
    assert f"gmat-sweep resume {out}" in html and "missing 7" in html
    assert "where the runs that are not ok are" in captions(html)
    assert_rendered(browser(path), len(captions(html)))


def test_the_notebook_card(sweeps):
    s = sweeps["grid"]
    card = s._repr_html_()
    for fact in ("leo_track.script", "grid design, 12 runs", "ok 8", "failed 4", "missing 0",
                 "<code>Sat.INC</code> 28.5, 51.6, 97.8", "slowest: run ", "first failures:",
                 "index out-of-bounds", "GMAT R2026a (embedded engine, gmatpy 0.2.1"):
        assert fact in card, fact
    assert "<img" not in card and "<script" not in card
    samples = sweeps["samples"]._repr_html_()
    assert "samples design, 16 runs" in samples and "(16 values)" in samples and "failures" not in samples
    fresh = Sweep(s.source.path, grid={"Sat.SMA": [7000.0, 7100.0]}, out=s.out + "-fresh")
    assert "grid design, 2 runs, not started" in fresh._repr_html_()


def test_a_folder_that_is_not_a_sweep_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="does not hold a gmat-sweep sweep"):
        report(tmp_path, tmp_path / "r.html")
