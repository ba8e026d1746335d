"""Look-elsewhere: the closed-form p0 agrees with pyhf, and global p-values are calibrated."""

import numpy as np
import pandas as pd
import pytest

from slidescan.stats.lookelsewhere import asymptotic_p0, global_pvalues, toy_min_p0, trials_factor
from slidescan.stats import discovery_p0


@pytest.mark.parametrize("n, b, err", [(130, 100, 0), (130, 100, 10), (30, 10, 3), (5, 1.2, 0.5),
                                       (31500, 31000, 200), (80, 40, 20), (3, 0.5, 0.4)])
def test_closed_form_p0_equals_pyhf(n, b, err):
    assert float(asymptotic_p0(n, b, err)) == pytest.approx(discovery_p0(n, b, err), rel=1e-5)


def test_deficits_give_one_half():
    np.testing.assert_array_equal(asymptotic_p0([90, 100], 100, 5), [0.5, 0.5])


def scan_rows(n_windows=6, efficiencies=(1.0, 0.1, 0.01), b0=20000.0, err_frac=0.01):
    rows = []
    for w in range(n_windows):
        for eff in efficiencies:
            b = b0 * eff
            rows.append({"window": f"w{w:02d}", "efficiency": eff, "n_bkg": b, "n_bkg_err": err_frac * b})
    return pd.DataFrame(rows)


def test_one_test_has_no_look_elsewhere():
    rows = scan_rows(n_windows=1, efficiencies=(1.0,))
    toys = toy_min_p0(rows, 40000, seed=1)
    # a single asymptotic test: P(p0 <= 0.05) = 0.05, up to the Poisson discreteness
    assert np.mean(toys <= 0.05) == pytest.approx(0.05, abs=0.006)


def test_more_windows_mean_more_trials_but_nesting_is_not_independent():
    nested = toy_min_p0(scan_rows(n_windows=6), 40000, seed=2)
    p_nested = np.mean(nested <= 0.01)
    # 6 independent windows x 3 efficiencies would give 1 - 0.99^18 = 0.165; nesting correlates them
    assert 1 - 0.99**6 < p_nested < 1 - 0.99**18


def test_trials_factor_of_independent_tests():
    g = np.random.default_rng(1)
    toys = g.uniform(size=(200000, 7)).min(1)
    assert trials_factor(toys) == pytest.approx(7, rel=0.05)


def test_global_pvalue_per_scan_and_from_null_seeds():
    rows = scan_rows(n_windows=4)
    tables = []
    for injection, seed, excess in [(0, 1, 0.0), (0, 2, 0.0), (0, 3, 0.0), (500, 1, 5.0)]:
        t = rows.copy()
        # observed: background plus `excess` sigma in window w01 at every efficiency
        t["n_obs"] = np.round(t["n_bkg"] + np.where(t["window"] == "w01", excess * np.sqrt(t["n_bkg"]), 0))
        t["p0"] = asymptotic_p0(t["n_obs"], t["n_bkg"], t["n_bkg_err"])
        tables.append(t.assign(method="cwola-nn", injection=injection, seed=seed))
    out = global_pvalues(pd.concat(tables), n_toys=5000).set_index(["injection", "seed"])
    signal = out.loc[(500, 1)]
    assert signal["min_p0"] < 1e-5
    # the global p-value is larger than the local one by the trials factor, beyond the toys' reach
    assert 1 < signal["trials_factor"] < 4 * 3
    assert signal["global_p0"] == pytest.approx(1 - (1 - signal["min_p0"]) ** signal["trials_factor"], rel=1e-6)
    assert signal["global_z"] > 4
    # no injection-0 seed reaches it
    assert signal["global_p0_seeds"] == 0 and signal["n_null_seeds"] == 3
    null = out.loc[(0, 1)]
    assert null["global_p0"] == 1.0 and null["global_z"] == 0.0  # no excess at all: p0 = 0.5 everywhere
