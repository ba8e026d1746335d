"""Energy-flow polynomials of the constituent stage (``slidescan constituents --efp-degree D``): values of a hand-made
jet against a hand computation, a converted file against energyflow on one event's jets, the cache key, the named
set and the error when energyflow is missing.

energyflow is not a project extra (its dependency wasserstein 1.1.0 pins numpy<2), so the CI machine lacks it: the
``energyflow`` fixture installs it without dependencies, as docs/features.md says, and skips (fails in CI) only
when that install fails.
"""

import importlib
import os
import site
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from slidescan import features
from slidescan.data import constituents
from slidescan.data.constituents import EFP_INSTALL, convert, jet_features
from test_constituents import JET_A, JET_B, event_arrays, four, lhco_layout

INSTALL = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "energyflow==1.4.0", "wasserstein==1.1.0",
           "wurlitzer"]
# a jet of four particles across phi = +-pi (3.0 and -3.0 are 0.28 apart): the angles wrap
JET_C = [(800.0, 0.1, 3.0), (500.0, 0.4, -3.0), (300.0, -0.2, 2.7), (200.0, 0.3, -2.9)]


@pytest.fixture(scope="module")
def energyflow():
    try:
        return importlib.import_module("energyflow")
    except ImportError:
        pass
    done = subprocess.run(INSTALL, capture_output=True, text=True, timeout=600)
    importlib.invalidate_caches()  # the new files of an existing site-packages folder become importable
    user = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user and os.path.isdir(user) and user not in sys.path:  # pip fell back to a user site made just now
        site.addsitedir(user)
    try:
        return importlib.import_module("energyflow")
    except ImportError as err:
        reason = (f"the EFP tests need energyflow, which is missing, and `{' '.join(INSTALL[2:])}` did not make it "
                  f"importable (pip exit {done.returncode}: {(done.stderr or done.stdout).strip()[-400:]}; {err})")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def efps_by_hand(particles) -> dict[str, float]:
    """EFPs of (pT, y, phi) particles: z_i = pT_i / sum pT, theta_ij = sqrt(dy^2 + dphi^2) (beta = 1), each
    graph a sum over every vertex assignment (ordered, i = j included: theta_ii = 0)."""
    pt, y, phi = np.array(particles, dtype=float).T
    z = pt / pt.sum()
    dphi = np.abs(phi[:, None] - phi[None, :])
    dphi = np.minimum(dphi, 2 * np.pi - dphi)
    theta = np.hypot(y[:, None] - y[None, :], dphi)
    n = len(pt)
    edge = sum(z[i] * z[j] * theta[i, j] for i in range(n) for j in range(n))  # one edge: sum_ij z_i z_j theta_ij
    return {
        "efp1_1": edge,
        "efp2_1": sum(z[i] * z[j] * theta[i, j] ** 2 for i in range(n) for j in range(n)),  # a double edge
        "efp2_2": sum(z[i] * z[j] * z[k] * theta[i, j] * theta[i, k]  # two edges at one vertex
                      for i in range(n) for j in range(n) for k in range(n)),
        "efp2_3": edge**2,  # two disjoint edges
        "efp3_3": sum(z[i] * z[j] * z[k] * theta[i, j] * theta[j, k] * theta[i, k]  # the triangle
                      for i in range(n) for j in range(n) for k in range(n)),
        "efp3_8": edge**3,  # three disjoint edges
    }


def energyflow_efps(energyflow, particles, degree: int) -> np.ndarray:
    """energyflow's own EFPs (d <= degree, the constant d = 0 graph dropped) of (pT, y, phi) particles, in its
    order (which is the order of features.efps: by degree, each degree in EFPSet's order)."""
    efpset = energyflow.EFPSet(("d<=", degree), measure="hadr", coords="ptyphim", beta=1, kappa=1, normed=True)
    d = efpset.specs[:, list(efpset.cols).index("d")]
    values = efpset.compute(np.array(particles))
    return np.concatenate([values[d == k] for k in range(1, degree + 1)])


def test_efps_of_a_hand_made_jet_match_a_hand_computation(energyflow):
    df = jet_features(*event_arrays([JET_A, JET_C]), efp_degree=3).iloc[0]
    mass = lambda ps: np.sqrt(max(sum(ps)[3] ** 2 - np.sum(sum(ps)[:3] ** 2), 0)) / 1000  # noqa: E731
    assert df["mj1"] == pytest.approx(mass([four(*p) for p in JET_A]), rel=1e-9)  # JET_C is the heavier: j2
    for name, value in efps_by_hand(JET_C).items():
        assert df[f"{name}_j2"] == pytest.approx(value, rel=1e-9), name
    for name, value in efps_by_hand(JET_A).items():
        assert df[f"{name}_j1"] == pytest.approx(value, rel=1e-9), name
    # the single edge of JET_C, written out: 2 sum_{i<j} z_i z_j theta_ij, nothing halved or squared
    z = np.array([800, 500, 300, 200]) / 1800
    pairs = {(0, 1): np.hypot(0.3, 2 * np.pi - 6.0), (0, 2): np.hypot(0.3, 0.3), (0, 3): np.hypot(0.2, 2 * np.pi - 5.9),
             (1, 2): np.hypot(0.6, 2 * np.pi - 5.7), (1, 3): np.hypot(0.1, 0.1), (2, 3): np.hypot(0.5, 2 * np.pi - 5.6)}
    assert df["efp1_1_j2"] == pytest.approx(2 * sum(z[i] * z[j] * t for (i, j), t in pairs.items()), rel=1e-9)
    # every column, in order, is energyflow's value on the jet's (pT, y, phi)
    for jet, particles in ((1, JET_A), (2, JET_C)):
        columns = features.efps(3, jets=(jet,))
        assert len(columns) == 12 and columns[:4] == [f"efp1_1_j{jet}", f"efp2_1_j{jet}", f"efp2_2_j{jet}",
                                                      f"efp2_3_j{jet}"]
        np.testing.assert_allclose(df[columns].to_numpy(float), energyflow_efps(energyflow, particles, 3), rtol=1e-9)
    # without the option, the table is as before: no EFP column
    assert not [c for c in jet_features(*event_arrays([JET_A, JET_C])).columns if c.startswith("efp")]


def test_a_converted_file_has_both_jets_efps_and_a_changed_degree_remakes_it(energyflow, tmp_path):
    events = lhco_layout(40, 60, seed=4)
    hand = np.zeros(events.shape[1])
    hand[:3 * 5] = np.ravel(JET_A + JET_B)
    events.iloc[17] = hand  # event 17: the hand-made jets, JET_B the lighter (j1)
    source, out = tmp_path / "constituents.h5", tmp_path / "features.h5"
    events.to_hdf(source, key="df", format="table")
    lines = []
    convert(source, out, chunk_size=20, workers=2, efp_degree=2, log=lines.append)
    table = pd.read_hdf(out, "events")
    columns = features.efps(2)
    assert len(columns) == 8 and [c for c in table.columns if c.startswith("efp")] == columns
    assert table[columns].notna().all().all() and (table[columns] >= 0).all().all()
    for jet, particles in ((1, JET_B), (2, JET_A)):
        np.testing.assert_allclose(table.loc[17, features.efps(2, jets=(jet,))].to_numpy(float),
                                   energyflow_efps(energyflow, particles, 2), rtol=1e-9)
    assert table.loc[17, "mj1"] < table.loc[17, "mj2"]
    # the same degree keeps the table; another remakes it (with the command line's option)
    lines.clear()
    convert(source, out, chunk_size=20, workers=2, efp_degree=2, log=lines.append)
    assert lines == [f"{out}: already made from {source}; kept"]
    done = subprocess.run([sys.executable, "-m", "slidescan.cli", "constituents", str(source), str(out),
                           "--chunk-size", "20", "--workers", "1", "--efp-degree", "3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "already made" not in done.stdout
    remade = pd.read_hdf(out, "events")
    assert [c for c in remade.columns if c.startswith("efp")] == features.efps(3)
    pd.testing.assert_frame_equal(remade[table.columns], table)  # degree 3 adds columns; the others are the same
    lines.clear()
    convert(source, out, chunk_size=20, workers=1, log=lines.append)  # no EFPs: remade without them
    assert lines[-1].startswith("chunk 2/2") and list(pd.read_hdf(out, "events").columns) == [
        c for c in table.columns if not c.startswith("efp")]


def test_the_efp3_set_resolves_alone_and_mixed_with_others():
    assert features.EFP_COUNTS[:4] == (1, 3, 8, 23)
    assert features.efps(1) == ["efp1_1_j1", "efp1_1_j2"] and features.efps(0) == []
    efp3 = features.resolve("efp3")
    assert len(efp3) == 26 and efp3[:2] == ("mj1", "mj2") and efp3[2:] == tuple(features.efps(3))
    assert efp3[2:14] == tuple(f"efp{d}_{k}_j1" for d, n in ((1, 1), (2, 3), (3, 8)) for k in range(1, n + 1))
    mixed = features.resolve(["extended3", "efp3", "efp1_1_j1", "delta_mj"])  # each once, in order
    assert mixed == (*features.SETS["extended3"], *features.efps(3), "delta_mj") and len(mixed) == 56 + 24 + 1
    with pytest.raises(ValueError, match="EFP degree 11: energyflow has the EFPs of degree 0 to 10"):
        features.efps(11)


def test_without_energyflow_the_error_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "energyflow", None)  # `import energyflow` raises ModuleNotFoundError
    monkeypatch.setattr(constituents, "_EFP_SETS", {})
    source, out = tmp_path / "constituents.h5", tmp_path / "features.h5"
    lhco_layout(10, 60, seed=5).to_hdf(source, key="df", format="table")
    assert EFP_INSTALL == "pip install --no-deps energyflow==1.4.0 wasserstein==1.1.0 wurlitzer"
    message = ("energy-flow polynomials (--efp-degree) need the energyflow package, which is not a slidescan extra "
               "(its dependency wasserstein 1.1.0 pins numpy<2 and pip would downgrade numpy); install it without "
               f"dependencies: {EFP_INSTALL}")
    with pytest.raises(ModuleNotFoundError) as err:
        convert(source, out, workers=1, efp_degree=3, log=lambda m: None)
    assert str(err.value) == message and not out.exists()
    with pytest.raises(ModuleNotFoundError, match="install it without dependencies: pip install --no-deps"):
        jet_features(*event_arrays([JET_A, JET_B]), efp_degree=1)
    from slidescan.cli import main

    assert main(["constituents", str(source), str(out), "--efp-degree", "2"]) == 1
    assert capsys.readouterr().err.strip() == f"slidescan: {message}"
    with pytest.raises(ValueError, match="EFP degree -1: expected a whole number >= 0"):
        convert(source, out, efp_degree=-1)
    convert(source, out, workers=1, log=lambda m: None)  # without EFPs energyflow is not needed
    assert out.exists()
