"""Feature sets from the config, the synthetic generator's extra features, and ROOT, Parquet and HDF5 inputs."""

import re

import h5py
import numpy as np
import pandas as pd
import pytest

from slidescan import features
from slidescan.config import ConfigError
from slidescan.io import read_table
from slidescan.settings import ScanSettings
from slidescan.stages.data import prepare_data

from test_workflow import TINY, make_workdir, snakemake

BASE = {"scan": "f", "injections": [0], "methods": ["cwola-bdt"],
        "windows": {"first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.1, "sb_width": 0.4,
                    "min_events": 10}}
SYNTHETIC = {"source": "synthetic", "seed": 4, "synthetic": {"n_background": 20000, "signal_pool": 2000,
                                                             "reference_background": 5000, "reference_signal": 500}}


def settings(**extra) -> ScanSettings:
    return ScanSettings.from_config({**BASE, "data": SYNTHETIC, **extra})


# --- feature sets ---


def test_named_sets_and_lists_resolve_to_columns_in_order_each_once():
    assert [len(features.resolve(name)) for name in ("baseline", "extended1", "extended2", "extended3")] == [4, 10, 12,
                                                                                                           56]
    assert features.resolve("extended1") == ("mj1", "mj2", "tau21_j1", "tau32_j1", "tau43_j1", "tau54_j1", "tau21_j2",
                                             "tau32_j2", "tau43_j2", "tau54_j2")
    assert features.resolve(["baseline", *features.noise(2), "mj1"]) == ("mj1", "delta_mj", "tau21_j1", "tau21_j2",
                                                                         "noise1", "noise2")
    assert settings().features == ("mj1", "delta_mj", "tau21_j1", "tau21_j2")  # the default
    assert settings(features=["mj1", "tau3_b05_j2"]).features == ("mj1", "tau3_b05_j2")
    with pytest.raises(ValueError, match=r"features: unknown feature set 'extended9'; expected one of \['baseline', "):
        features.resolve("extended9")
    with pytest.raises(ValueError, match=r"features: \['mjj'\] are not features"):
        features.resolve(["mj1", "mjj"])
    with pytest.raises(ConfigError, match=r"^config: features: unknown feature set 'extended9'; expected one of"):
        settings(features="extended9")
    with pytest.raises(ConfigError, match=r"^config: features: \[\] should be non-empty"):
        settings(features=[])


def test_a_feature_the_input_lacks_stops_the_data_job_naming_what_it_has(tmp_path):
    out = tmp_path / "events.h5"
    expected = re.escape("the synthetic background (data.synthetic): no column(s) ['mj2', 'tau32_j1']")
    with pytest.raises(ValueError, match=expected + r".*it has \['mj1', 'delta_mj', 'tau21_j1', 'tau21_j2'\]"):
        prepare_data(settings(features=["mj1", "mj2", "tau32_j1"]), out, log=lambda s: None)
    assert not out.exists()


# --- the synthetic generator's extra features ---


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    path = tmp_path_factory.mktemp("extended") / "events.h5"
    s = settings(data={**SYNTHETIC, "synthetic": {**SYNTHETIC["synthetic"], "substructure": True,
                                                  "noise_features": 3}}, features="extended3")
    prepare_data(s, path, log=lambda m: None)
    return path


def test_extra_features_leave_the_baseline_columns_as_they_were(extended, tmp_path):
    plain = tmp_path / "plain.h5"
    prepare_data(settings(), plain, log=lambda m: None)
    for table in ("background", "signal_pool", "reference_background", "reference_signal"):
        a, b = read_table(plain, table), read_table(extended, table)
        pd.testing.assert_frame_equal(a, b[a.columns])
        assert set(features.SETS["extended3"]) | {"noise1", "noise2", "noise3"} <= set(b.columns)


def test_the_synthetic_subjettiness_is_consistent_and_the_noise_is_noise(extended):
    bkg, sig = read_table(extended, "background"), read_table(extended, "signal_pool")
    for df in (bkg, sig):
        for j in (1, 2):
            np.testing.assert_allclose(df[f"tau2_j{j}"] / df[f"tau1_j{j}"], df[f"tau21_j{j}"], rtol=1e-9)
            np.testing.assert_allclose(df[f"tau4_j{j}"] / df[f"tau3_j{j}"], df[f"tau43_j{j}"], rtol=1e-9)
            taus = df[[f"tau{n}_j{j}" for n in range(1, 10)]].to_numpy()
            assert (np.diff(taus, axis=1) <= 0).all() and (taus > 0).all()  # tau_N falls with N
        np.testing.assert_allclose(df["mj2"], df["mj1"] + df["delta_mj"])
    # two-prong signal jets: lower tau21 (baseline) and a tau32 told apart from QCD's
    assert sig["tau21_j2"].mean() < bkg["tau21_j2"].mean() - 0.1
    assert abs(sig["tau32_j2"].mean() - bkg["tau32_j2"].mean()) > 0.02
    for c in ("noise1", "noise2", "noise3"):
        assert abs(bkg[c].mean()) < 0.03 and abs(bkg[c].std() - 1) < 0.03 and abs(sig[c].mean()) < 0.1
        assert abs(np.corrcoef(bkg[c], bkg["mjj"])[0, 1]) < 0.03


# --- ROOT, Parquet and HDF5 tables ---


def _ntuple(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    return pd.DataFrame({"Mjj_GeV": g.uniform(2800, 4200, n), "mJ1": g.uniform(0.05, 0.5, n),
                         "dm": g.uniform(0, 0.4, n), "t21a": g.uniform(0, 1, n), "t21b": g.uniform(0, 1, n),
                         "is_signal": (g.random(n) < 0.05).astype(np.int32), "unused": g.normal(size=n)})


def _write(kind: str, df: pd.DataFrame, path):
    if kind in ("root", "rntuple"):
        import uproot

        with uproot.recreate(path) as f:
            if kind == "root":  # a TTree, as experiments' ntuples are
                tree = f.mktree("Events", {c: df[c].dtype for c in df.columns})
                tree.extend({c: df[c].to_numpy() for c in df.columns})
            else:  # uproot's default: ROOT's new RNTuple
                f["Events"] = {c: df[c].to_numpy() for c in df.columns}
    elif kind == "parquet":
        df.to_parquet(path)
    elif kind == "pandas-hdf5":
        df.to_hdf(path, key="Events", format="table")
    else:  # a group of 1-D datasets
        with h5py.File(path, "w") as f:
            group = f.create_group("Events")
            for c in df.columns:
                group[c] = df[c].to_numpy()


TABLE = {"tree": "Events", "mjj": "Mjj_GeV", "mjj_unit": "GeV", "label": "is_signal",
         "columns": {"mj1": "mJ1", "delta_mj": "dm", "tau21_j1": "t21a", "tau21_j2": "t21b"}}


@pytest.mark.parametrize("kind,suffix", [("root", ".root"), ("rntuple", ".root"), ("parquet", ".parquet"),
                                         ("pandas-hdf5", ".h5"), ("h5py", ".hdf5")])
def test_a_table_is_read_with_its_column_map(tmp_path, kind, suffix):
    df = _ntuple()
    path = tmp_path / f"ntuple{suffix}"
    _write(kind, df, path)
    s = ScanSettings.from_config({**BASE, "data": {"source": "table", "table": {"path": str(path), **TABLE}}})
    out = tmp_path / "events.h5"
    prepare_data(s, out, log=lambda m: None)
    tables = {t: read_table(out, t) for t in ("background", "signal_pool", "reference_background", "reference_signal")}
    events = pd.concat(tables.values()).sort_values("mjj").reset_index(drop=True)
    expected = df.sort_values("Mjj_GeV").reset_index(drop=True)
    assert len(events) == len(df) and "unused" not in events.columns
    np.testing.assert_allclose(events["mjj"], expected["Mjj_GeV"] / 1000)
    for ours, theirs in TABLE["columns"].items():
        np.testing.assert_allclose(events[ours], expected[theirs])
    np.testing.assert_array_equal(events["label"], expected["is_signal"])
    assert (tables["signal_pool"]["label"] == 1).all() and (tables["background"]["label"] == 0).all()


def test_table_errors_name_the_file_the_column_and_what_it_has(tmp_path):
    df = _ntuple()
    root = tmp_path / "ntuple.root"
    _write("root", df, root)

    def run(**table):
        s = ScanSettings.from_config({**BASE, "data": {"source": "table", "table": {"path": str(root), **TABLE,
                                                                                    **table}}})
        prepare_data(s, tmp_path / "out.h5", log=lambda m: None)

    missing = f"{root}:Events: no column 'tau21' (for tau21_j1); it has ['Mjj_GeV',"
    with pytest.raises(ValueError, match=re.escape(missing)):
        run(columns={**TABLE["columns"], "tau21_j1": "tau21"})
    with pytest.raises(ValueError, match=re.escape(f"{root}: no TTree 'Tree' (data.table.tree); it has ['Events']")):
        run(tree="Tree")
    bad = tmp_path / "bad.root"
    bad.write_text("not a ROOT file")
    with pytest.raises(ValueError, match=re.escape(f"{bad}: not a readable ROOT file")):
        run(path=str(bad))
    labelled = tmp_path / "labels.parquet"
    df.assign(is_signal=np.where(df.index == 5, 2, df["is_signal"])).to_parquet(labelled)
    with pytest.raises(ValueError, match=re.escape(f"{labelled}: column 'is_signal' must be 0 (background) "
                                                   "or 1 (signal); 1 of 3000 events have other values: 2")):
        run(path=str(labelled), tree=None)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'x.csv'}: unknown table format '.csv'")):
        (tmp_path / "x.csv").write_text("a\n1\n")
        run(path=str(tmp_path / "x.csv"))
    assert not (tmp_path / "out.h5").exists()


def test_data_without_a_label_is_all_background(tmp_path):
    path = tmp_path / "data.parquet"
    _ntuple().drop(columns="is_signal").to_parquet(path)
    s = ScanSettings.from_config({**BASE, "data": {"source": "table", "table": {"path": str(path), **TABLE,
                                                                                "label": None, "tree": None}}})
    prepare_data(s, tmp_path / "events.h5", log=lambda m: None)
    assert len(read_table(tmp_path / "events.h5", "signal_pool")) == 0
    assert (read_table(tmp_path / "events.h5", "background")["label"] == 0).all()


# --- a scan with an extended set ---


@pytest.mark.workflow
def test_a_tiny_scan_with_an_extended_feature_set_trains_every_stage_on_it(tmp_path):
    config = {**TINY, "scan": "ext", "features": ["extended1", *features.noise(2)], "injections": [400],
              "windows": {**TINY["windows"], "last_sr_lo": 3.1}, "methods": ["cathode-nn", "idealized-bdt"],
              "data": {**TINY["data"], "synthetic": {**TINY["data"]["synthetic"], "substructure": True,
                                                     "noise_features": 2}}}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results/ext"
    from slidescan.density.flows import load_flow

    flow = load_flow(results / "flows/w00/inj400_seed1.h5")
    assert flow.n_features == 12
    samples = read_table(results / "flows/w00/inj400_seed1.h5", "samples")
    chosen = list(features.resolve(["extended1", *features.noise(2)]))
    assert [c for c in samples.columns if c in chosen] == chosen
    assert np.isfinite(samples[chosen].to_numpy()).all()
    scores = read_table(results / "scores/w00/cathode-nn/inj400_seed1.h5", "scores")
    assert np.isfinite(scores["score"]).all() and len(scores) > 1000
    assert (results / "pvalue_scan.csv").exists()
    from pathlib import Path

    from slidescan.report.summary import summary_text

    assert "Features (12): ``mj1``, ``mj2``, ``tau21_j1``" in summary_text(workdir, Path("config/config.yaml"))
