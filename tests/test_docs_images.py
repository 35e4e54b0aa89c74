"""docs/make_images.py draws every figure docs/seeing.md shows, from real sweeps."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_docs_figures_are_drawn_and_each_is_shown_in_the_docs(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "make_images.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    import matplotlib.image

    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    assert drawn == sorted(p.name for p in (ROOT / "docs" / "images").glob("*.png"))
    page = (ROOT / "docs" / "seeing.md").read_text()
    for name in drawn:
        assert f"(images/{name})" in page, name
        pixels = matplotlib.image.imread(tmp_path / name)[..., :3]
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, name
        assert (tmp_path / name).stat().st_size < 60_000, name  # small enough to commit
