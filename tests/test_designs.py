"""Random and space-filling designs without GMAT: distributions, seeds, strata, covariance, extension, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from scipy import stats

from gmat_sweep import DesignError
from gmat_sweep.design import Design
from gmat_sweep.designs import LatinHypercube, MonteCarlo, Saltelli, Sobol

PI = np.pi


def values(design, path):
    return np.concatenate([np.asarray(c[path], dtype=float) for c in design.iter_columns()])


def test_moments_of_100000_draws():
    n = 100_000
    design = MonteCarlo({"a": "normal(7000, 5)", "b": "uniform(-1, 3)", "c": "lognormal(0.5, 0.25)",
                         "d": "truncnormal(0, 1, -1, 2)", "e": stats.gamma(2.0, scale=0.5)}, n, seed=7)
    tolerance = 5 / np.sqrt(n)  # five standard errors, in units of sigma
    for path, dist in {"a": stats.norm(7000, 5), "b": stats.uniform(-1, 4), "c": stats.lognorm(0.25, scale=np.exp(0.5)),
                       "d": stats.truncnorm(-1, 2), "e": stats.gamma(2.0, scale=0.5)}.items():
        x = values(design, path)
        assert abs(x.mean() - dist.mean()) < tolerance * dist.std(), path
        assert abs(x.std() / dist.std() - 1) < 3 * tolerance, path
        assert stats.kstest(x, dist.cdf).pvalue > 1e-4, path
    d = values(design, "d")
    assert d.min() >= -1 and d.max() <= 2


def test_choice_draws_each_value_equally_often():
    x = MonteCarlo({"Label": "choice('a', 'b', 'c', 'd')"}, 40_000, seed=3).columns(0, 40_000)["Label"]
    counts = np.array([x.count(v) for v in "abcd"])
    assert stats.chisquare(counts).pvalue > 1e-4


def test_latin_hypercube_puts_one_point_in_every_stratum_of_every_parameter():
    n = 997
    design = LatinHypercube({"a": "uniform(0, 1)", "b": "normal(0, 1)", ("c", "d"): ("mvnormal", [0, 0], np.eye(2))},
                            n, seed=11)
    units = design.units(0, n)
    for key, u in units.items():
        for dim in range(u.shape[1]):
            assert sorted(np.floor(u[:, dim] * n).astype(int)) == list(range(n)), key
    # through the inverse CDF: one value in each equal-probability interval of the normal distribution
    b = values(design, "b")
    assert sorted(np.floor(stats.norm.cdf(b) * n).astype(int)) == list(range(n))
    # an extension is another full hypercube of its own size, and leaves the first block alone
    grown = design.extended(300)
    assert [grown[i] for i in range(n)] == [design[i] for i in range(n)]
    u = grown.units(n, n + 300)["a"][:, 0]
    assert sorted(np.floor(u * 300).astype(int)) == list(range(300))


def test_a_multivariate_draw_reproduces_its_covariance():
    sigma = np.array([1.0, 2.0, 0.5, 1e-3, 2e-3, 5e-4])  # km and km/s, like an orbit-determination covariance
    factor = np.random.default_rng(0).normal(size=(6, 6))
    inner = factor @ factor.T
    corr = inner / np.sqrt(np.outer(np.diag(inner), np.diag(inner)))  # strong correlations of both signs
    cov = corr * np.outer(sigma, sigma)
    mean = [7000.0, 0, 0, 0, 7.5, 0]
    paths = ("Sat.X", "Sat.Y", "Sat.Z", "Sat.VX", "Sat.VY", "Sat.VZ")
    design = MonteCarlo({paths: stats.multivariate_normal(mean, cov)}, 200_000, seed=5)
    x = np.column_stack([values(design, p) for p in paths])
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=5 * sigma.max() / np.sqrt(len(x)))
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.02 * np.outer(sigma, sigma).max(), rtol=0.02)
    np.testing.assert_allclose(np.corrcoef(x.T), corr, atol=0.01)


def test_adding_a_parameter_leaves_the_draws_of_the_others_unchanged():
    two = MonteCarlo({"Sat.SMA": "normal(7000, 5)", "Sat.INC": "uniform(28, 52)"}, 5000, seed=99)
    three = MonteCarlo({"Sat.SMA": "normal(7000, 5)", "TOF": "uniform(60, 600)", "Sat.INC": "uniform(28, 52)"},
                       5000, seed=99)
    for i in (0, 1, 4095, 4096, 4999):
        assert {k: three[i][k] for k in ("Sat.SMA", "Sat.INC")} == two[i]
    assert values(three, "TOF").std() > 100
    lhs2 = LatinHypercube({"a": "uniform(0, 1)", "b": "uniform(0, 1)"}, 50, seed=1)
    lhs3 = LatinHypercube({"a": "uniform(0, 1)", "b": "uniform(0, 1)", "c": "uniform(0, 1)"}, 50, seed=1)
    assert all(lhs3[i]["a"] == lhs2[i]["a"] and lhs3[i]["b"] == lhs2[i]["b"] for i in range(50))


def test_any_run_is_computed_alone_and_a_huge_design_costs_nothing_up_front():
    tracemalloc.start()
    design = MonteCarlo({"Sat.SMA": "normal(7000, 5)", "Sat.ECC": "uniform(0, 0.01)"}, 10**7, seed=1)
    last = design[10**7 - 1]
    lhs = LatinHypercube({"Sat.SMA": "normal(7000, 5)"}, 10**7, seed=1)
    lhs_last = lhs[10**7 - 1]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 2**20  # a block of rows, not 10^7 of them
    assert MonteCarlo({"Sat.SMA": "normal(7000, 5)", "Sat.ECC": "uniform(0, 0.01)"}, 10**7, seed=1)[10**7 - 1] == last
    assert lhs_last == LatinHypercube({"Sat.SMA": "normal(7000, 5)"}, 10**7, seed=1)[10**7 - 1]


DESIGNS = """
import json, sys
from gmat_sweep.designs import LatinHypercube, MonteCarlo, Saltelli, Sobol
p = {"Sat.SMA": "normal(7000, 5)", "Sat.INC": ("uniform", 28, 52), "TOF": "choice(60, 600)"}
ds = [MonteCarlo(p, 5000, 42), LatinHypercube(p, 300, 42), Sobol(p, 256, 42), Saltelli(p, 16, 42)]
print(json.dumps([[d[i] for i in range(0, len(d), 7)] for d in ds]))
"""


def test_same_seed_gives_the_same_design_in_two_fresh_interpreters():
    outputs = [subprocess.run([sys.executable, "-c", DESIGNS], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout for seed in (1, 2)]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])[0][0]["Sat.SMA"] != json.loads(outputs[0])[2][0]["Sat.SMA"]


@pytest.mark.parametrize("kind", [MonteCarlo, Sobol])
def test_n_then_m_more_is_one_design_of_n_plus_m(kind):
    p = {"a": "normal(0, 1)", ("b", "c"): ("mvnormal", [0, 1], [[1, 0.5], [0.5, 2]])}
    small, big = kind(p, 1000, seed=8), kind(p, 5000, seed=8)
    grown = Design.from_dict(small.to_dict()).extended(4000)
    assert grown.to_dict() == big.to_dict()
    assert [grown[i] for i in range(0, 5000, 3)] == [big[i] for i in range(0, 5000, 3)]


def test_the_design_round_trips_through_the_manifest_form():
    for design in (MonteCarlo({"Sat.SMA": "+normal(0, 5)", "x": stats.gamma(2.0)}, 10, seed=1,
                              nominal={"Sat.SMA": 7000.0}),
                   LatinHypercube({"a": "uniform(0, 1)"}, 10, seed=2).extended(5),
                   Saltelli({"x1": "uniform(-1, 1)", "x2": "uniform(-1, 1)"}, 8, seed=3)):
        data = json.loads(json.dumps(design.to_dict()))
        again = Design.from_dict(data)
        assert [again[i] for i in range(len(again))] == [design[i] for i in range(len(design))]
        assert again.difference(data) is None


def test_relative_perturbations_combine_with_the_nominal():
    rel = MonteCarlo({"Sat.SMA": "+normal(0, 5)", "TOI.Element1": "*normal(1, 0.01)"}, 100, seed=4,
                     nominal={"Sat.SMA": 7000.0, "TOI.Element1": 0.5})
    ab = MonteCarlo({"Sat.SMA": "normal(7000, 5)", "TOI.Element1": "normal(1, 0.01)"}, 100, seed=4)
    for i in range(100):
        assert rel[i]["Sat.SMA"] == ab[i]["Sat.SMA"]
        assert rel[i]["TOI.Element1"] == 0.5 * ab[i]["TOI.Element1"]
    with pytest.raises(DesignError, match="nominal values of Sat.SMA, TOI.Element1 have not been read"):
        MonteCarlo({"Sat.SMA": "+normal(0, 5)", "TOI.Element1": "*normal(1, 0.01)"}, 10, seed=1)[0]


def test_the_saltelli_design_has_the_layout_salib_reads():
    design = Saltelli({"a": "uniform(0, 1)", "b": "uniform(0, 1)", "c": "uniform(0, 1)"}, 32, seed=1)
    assert len(design) == 32 * 5
    rows = np.array([[design[i][p] for p in "abc"] for i in range(len(design))]).reshape(32, 5, 3)
    a, b = rows[:, 0], rows[:, 4]
    for k in range(3):
        expected = a.copy()
        expected[:, k] = b[:, k]
        np.testing.assert_array_equal(rows[:, 1 + k], expected)


def test_sobol_warns_when_n_is_not_a_power_of_two():
    with pytest.warns(UserWarning, match="n=1000 is not a power of two.*use n=512 or n=1024"):
        Sobol({"a": "uniform(0, 1)"}, 1000, seed=1, warn=True)


@pytest.mark.parametrize("perturb, n, seed, message", [
    ({"Sat.SMA": "gauss(7000, 5)"}, 10, 1, "unknown distribution 'gauss'"),
    ({"Sat.SMA": "normal(7000, 0)"}, 10, 1, "sigma must be > 0"),
    ({"Sat.SMA": "normal(7000, -1)"}, 10, 1, "sigma must be > 0"),
    ({"Sat.SMA": "uniform(7000, 6000)"}, 10, 1, "needs lo < hi"),
    ({"Sat.SMA": "truncnormal(0, 1, 2, 2)"}, 10, 1, "needs lo < hi"),
    ({"Sat.SMA": "normal(7000)"}, 10, 1, "normal takes 2 numbers"),
    ({"Sat.SMA": "normal(7000, 5)"}, 0, 1, "n must be a whole number of runs >= 1"),
    ({"Sat.SMA": "normal(7000, 5)"}, 10, 1.5, "seed must be a whole number"),
    ({"Sat.SMA": "normal(7000, 5)"}, 10, "42", "seed must be a whole number"),
    ({("Sat.X", "Sat.Y"): ("mvnormal", [0, 0], [[1, 0, 0], [0, 1, 0]])}, 10, 1, r"shape \(2, 3\), not \(2, 2\)"),
    ({("Sat.X", "Sat.Y"): ("mvnormal", [0, 0], [[1, 0.5], [0.2, 1]])}, 10, 1, "not symmetric"),
    ({("Sat.X", "Sat.Y"): ("mvnormal", [0, 0], [[1, 2], [2, 1]])}, 10, 1, "not positive semi-definite"),
    ({"Sat.X": "normal(0, 1)", ("Sat.X", "Sat.Y"): ("mvnormal", [0, 0], np.eye(2))}, 10, 1, "Sat.X is perturbed twice"),
    ({("Sat.X", "Sat.Y"): "normal(0, 1)"}, 10, 1, "needs a multivariate distribution"),
    ({"Sat SMA": "normal(0, 1)"}, 10, 1, "not a GMAT parameter path"),
    ({"Sat.SMA": 7000}, 10, 1, "is not a distribution"),
])
def test_bad_input_is_one_line_naming_the_problem(perturb, n, seed, message):
    with pytest.raises(DesignError, match=message) as info:
        MonteCarlo(perturb, n, seed)
    assert "\n" not in str(info.value)


def test_a_fresh_seed_is_drawn_and_recorded():
    a, b = MonteCarlo({"a": "normal(0, 1)"}, 3), MonteCarlo({"a": "normal(0, 1)"}, 3)
    assert a.seed != b.seed and a.to_dict()["seed"] == a.seed
    assert MonteCarlo({"a": "normal(0, 1)"}, 3, seed=a.seed)[2] == a[2]


def test_convergence_intervals_cover_the_true_statistics():
    from gmat_sweep.analysis.convergence import _check_stat, _row

    x = stats.norm(10, 2).rvs(size=4000, random_state=np.random.default_rng(1))
    row = dict(zip(["mean", "mean_lo", "mean_hi", "std", "std_lo", "std_hi", "p95", "p95_lo", "p95_hi"],
                   _row(x, [_check_stat(s) for s in ("mean", "std", "p95")])))
    assert row["mean_lo"] < 10 < row["mean_hi"] and row["std_lo"] < 2 < row["std_hi"]
    assert row["p95_lo"] < 10 + 2 * stats.norm.ppf(0.95) < row["p95_hi"]
    assert row["mean_hi"] - row["mean_lo"] == pytest.approx(2 * 1.96 * 2 / np.sqrt(4000), rel=0.05)
    few = _row(x[:20], [_check_stat("p99")])
    assert np.isnan(few[2])  # 20 runs cannot bound the 99th percentile from above
