"""Jet constituents to features: N-subjettiness checked by hand on a few jets, and the cached conversion of an
LHCO-layout constituent file that a scan then reads as a table."""

import numpy as np
import pandas as pd
import pytest

from slidescan import features
from slidescan.data.constituents import convert, jet_features
from slidescan.io import read_table
from slidescan.settings import ScanSettings
from slidescan.stages.data import prepare_data


def four(pt, eta, phi):
    """A massless particle's (px, py, pz, E)."""
    return np.array([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)])


def rap_phi(p):
    return 0.5 * np.log((p[3] + p[2]) / (p[3] - p[2])), np.arctan2(p[1], p[0])


def tau_by_hand(particles, axes, beta):
    """sum pT_i min_k dR^beta / sum pT_i (R0 = 1), axes as four-vectors."""
    num = 0.0
    for pt, eta, phi in particles:
        d = []
        for a in axes:
            y, f = rap_phi(a)
            dphi = abs(phi - f)
            d.append(np.hypot(eta - y, min(dphi, 2 * np.pi - dphi)))
        num += pt * min(d) ** beta
    return num / sum(pt for pt, _, _ in particles)


# one jet of three particles near (eta, phi) = (0.3, 0.2), a second of two near phi = 0.2 + pi
JET_A = [(900.0, 0.3, 0.2), (450.0, 0.7, 0.2), (270.0, 0.3, 0.7)]
JET_B = [(1000.0, -0.4, 0.2 + np.pi), (400.0, -0.1, 0.2 + np.pi + 0.2)]


def event_arrays(jets, width=10):
    particles = [p for jet in jets for p in jet]
    pt, eta, phi = (np.zeros((1, width)) for _ in range(3))
    for i, (a, b, c) in enumerate(particles):
        pt[0, i], eta[0, i], phi[0, i] = a, b, c
    return pt, eta, phi


def test_subjettiness_of_hand_made_jets():
    df = jet_features(*event_arrays([JET_A, JET_B])).iloc[0]
    a = [four(*p) for p in JET_A]
    b = [four(*p) for p in JET_B]
    # masses (TeV) and mjj of the two jets: JET_B is the lighter one (j1)
    mass = lambda ps: np.sqrt(max(sum(ps)[3] ** 2 - np.sum(sum(ps)[:3] ** 2), 0)) / 1000  # noqa: E731
    assert df["mj1"] == pytest.approx(mass(b), rel=1e-9) and df["mj2"] == pytest.approx(mass(a), rel=1e-9)
    assert df["mjj"] == pytest.approx(mass(a + b), rel=1e-9) and mass(b) < mass(a)
    # tau1: the axis is the jet; tau2 of JET_A: exclusive kT merges the pair of smallest
    # min(pT^2) dR^2 first: (900, 270) at dR 0.5 gives 270^2 * 0.25 = 18225 < 450^2 * 0.16 = 32400
    # (to 1e-7: the vectorised powers and logs round in the last bits differently on another CPU, 1e-8 seen
    # on an AVX2 machine; a wrong axis or beta would be off by percents)
    for beta, suffix in ((1.0, ""), (0.5, "_b05"), (2.0, "_b2")):
        assert df[f"tau1{suffix}_j2"] == pytest.approx(tau_by_hand(JET_A, [sum(a)], beta), rel=1e-7)
        assert df[f"tau2{suffix}_j2"] == pytest.approx(tau_by_hand(JET_A, [a[0] + a[2], a[1]], beta), rel=1e-7)
        assert df[f"tau1{suffix}_j1"] == pytest.approx(tau_by_hand(JET_B, [sum(b)], beta), rel=1e-7)
    # a jet of N or fewer constituents has tau_N = 0; ratios follow
    assert df["tau3_j2"] == 0 and df["tau2_j1"] == 0 and df["tau9_b2_j1"] == 0
    assert df["tau21_j2"] == pytest.approx(df["tau2_j2"] / df["tau1_j2"]) and df["tau32_j2"] == 0
    assert df["delta_mj"] == pytest.approx(df["mj2"] - df["mj1"])
    assert set(features.SETS["extended3"]) <= set(df.index)


def lhco_layout(n_events: int, n_particles: int, seed: int) -> pd.DataFrame:
    """Events in the LHCO R&D constituent layout: (pT, eta, phi) per particle, zero-padded, label last."""
    g = np.random.default_rng(seed)
    values = np.zeros((n_events, 3 * n_particles + 1))
    for e in range(n_events):
        k = 0
        for centre in (0.0, np.pi):
            m = int(g.integers(10, 25))
            rows = slice(3 * k, 3 * (k + m))
            values[e, rows] = np.column_stack([g.exponential(1400 / m, m), g.normal(0, 0.25, m),
                                               centre + g.normal(0, 0.25, m)]).ravel()
            k += m
        values[e, -1] = e % 7 == 0
    return pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1])])


@pytest.mark.parametrize("fmt", ["table", "fixed"])
def test_a_constituent_file_is_converted_once_and_a_scan_reads_it(tmp_path, fmt):
    source = tmp_path / "events_anomalydetection_v2.h5"
    lhco_layout(60, 60, seed=1).to_hdf(source, key="df", format=fmt)
    out, lines = tmp_path / "features.h5", []
    convert(source, out, chunk_size=25, workers=2, log=lines.append)
    assert lines[0] == f"{source}: 60 events in 3 chunks of 25 over 2 processes" and lines[-1].startswith("chunk 3/3")
    table = pd.read_hdf(out, "events")
    assert len(table) == 60 and (table["label"] == (np.arange(60) % 7 == 0)).all()
    alone = jet_features(*(lhco_layout(60, 60, seed=1).to_numpy()[:, :-1].reshape(60, 60, 3)[..., i]
                           for i in range(3)))
    pd.testing.assert_frame_equal(table.drop(columns="label"), alone)  # the chunks join into the one-pass result
    lines.clear()
    convert(source, out, chunk_size=25, workers=2, log=lines.append)
    assert lines == [f"{out}: already made from {source}; kept"]
    s = ScanSettings.from_config({
        "scan": "c", "injections": [0], "methods": ["cwola-bdt"], "features": "extended3",
        "data": {"source": "table", "table": {"path": str(out), "label": "label"}},
        "windows": {"first_sr_lo": 2.8, "last_sr_lo": 2.8, "sr_width": 0.3, "step": 0.1, "sb_width": 0.3,
                    "min_events": 1}})
    prepare_data(s, tmp_path / "events.h5", log=lambda m: None)
    assert len(read_table(tmp_path / "events.h5", "background")) + len(read_table(tmp_path / "events.h5",
                                                                                  "reference_background")) == 51


def test_the_constituents_command_converts_and_names_a_bad_file(tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "slidescan.cli", "constituents", *args], capture_output=True,
                              text=True, cwd=tmp_path)

    source = tmp_path / "constituents.h5"
    lhco_layout(40, 50, seed=2).to_hdf(source, key="df", format="table")
    done = cli(str(source), "features.h5", "--events", "30", "--chunk-size", "10", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "use it with data: {source: table, table: {path: features.h5, label: label}}" in done.stdout
    assert len(pd.read_hdf(tmp_path / "features.h5", "events")) == 30
    missing = cli("nope.h5", "out.h5")
    assert missing.returncode == 1 and missing.stderr.strip() == "slidescan: nope.h5: no such constituent file"
    pd.DataFrame(np.ones((5, 6))).to_hdf(tmp_path / "odd.h5", key="df", format="table")
    odd = cli("odd.h5", "out.h5")
    assert odd.returncode == 1 and "odd.h5: 6 columns; the LHCO constituent layout has 3 per particle" in odd.stderr
    one_jet = lhco_layout(20, 50, seed=3)
    one_jet.iloc[13, :] = 0.0
    one_jet.iloc[13, :3] = [1500.0, 0.1, 0.2]  # a single particle: one jet
    one_jet.to_hdf(tmp_path / "one_jet.h5", key="df", format="table")
    lonely = cli("one_jet.h5", "out.h5", "--chunk-size", "10")
    assert lonely.returncode == 1 and lonely.stderr.strip() == ("slidescan: one_jet.h5: event 13 has fewer than two "
                                                                "jets (every event needs a dijet)")
    assert not (tmp_path / "out.h5").exists()
