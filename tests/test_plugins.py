"""The method layer from outside: a method written as one module by a user, and the new built-in methods,
through the real workflow (models built, folds scored, bump hunts, status, report)."""

import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from slidescan.io import read_attrs, read_table

from test_workflow import TINY, make_workdir, snakemake

pytestmark = pytest.mark.workflow

# a user's own method, in a file of their own: a per-window model (the sidebands' feature moments) and a score
# that uses it; it is named in the config's `plugins:` and nothing else in slidescan is edited
TOY = '''
"""A toy method: events far from the sidebands' feature means (in units of their spread) are anomalous."""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from slidescan import (FoldData, Model, ModelResult, Score, Settings, TrainingSet, register, register_model,
                       section_schema)
from slidescan.io import content_hash
from slidescan.methods import Fitted


def moments(ctx):
    sb = ctx.data[ctx.data["region"] != 0]
    x = sb[ctx.features].to_numpy()
    table = pd.DataFrame({"mean": x.mean(0), "std": x.std(0)})
    ctx.log(f"toy moments of {len(sb)} sideband events")

    def plot(path):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.bar(range(len(table)), table["mean"], yerr=table["std"])
        fig.savefig(path)
        plt.close(fig)

    return ModelResult({"moments": table}, {"fingerprint": content_hash(x)}, plot=plot)


register_model(Model("toy_moments", "Sideband feature moments (toy plug-in)", moments, gpu=False,
                     caption="Mean and spread of each feature in the sidebands."))


@dataclass(frozen=True)
class ToySettings(Settings):
    section = "toy"
    schema = section_schema("""
properties:
  power: {type: number, exclusiveMinimum: 0, default: 2.0, description: "the distance's power"}
""")
    power: float


@dataclass
class Distance(Fitted):
    mean: np.ndarray
    std: np.ndarray
    features: list
    power: float
    history: dict

    def predict(self, events):
        z = (events[self.features].to_numpy() - self.mean) / self.std
        return (np.abs(z) ** self.power).sum(1)


class Toy(Score):
    name = "toy"
    description = "distance from the sideband means (toy plug-in)"
    models = ("toy_moments",)
    settings_type = ToySettings

    def fold_data(self, inputs, fold, settings):
        empty = np.zeros((0, len(inputs.features)))
        return FoldData(TrainingSet(empty, np.zeros(0), np.zeros(0)), inputs.data[inputs.data["fold"] == fold], None,
                        (inputs.model("toy_moments").fingerprint,))

    def fit(self, fits, settings, checkpoint, log):
        out = []
        for f in fits:
            m = f.inputs.model("toy_moments").table("moments")
            out.append(Distance(m["mean"].to_numpy(), m["std"].to_numpy(), f.inputs.features, settings.power, {}))
        return out


register(Toy())
'''

SMALL_FLOW = {"transforms": 2, "hidden": [32], "epochs": 3, "batch_size": 256, "learning_rate": 0.003, "n_best": 2}
CONFIG = {**TINY, "scan": "family", "plugins": ["toy_method.py"],
          "methods": ["toy", "anode", "ranode", "flow-nll", "cwola-lightning"],
          "toy": {"power": 1.0}, "anode": SMALL_FLOW, "ranode": {**SMALL_FLOW, "initial_signal_fraction": 0.02},
          "classifier": {"lightning": {"members": 1, "epochs": 2, "batch_size": 512,
                                       "module_args": {"hidden": [16, 16]}}}}


def cli(workdir, *args):
    return subprocess.run([sys.executable, "-m", "slidescan.cli", *args, "--workdir", str(workdir)],
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def family_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("family"), CONFIG)
    (workdir / "toy_method.py").write_text(TOY)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_a_plugin_method_gets_its_model_built_and_its_scores_bump_hunted(family_run):
    results = family_run / "results" / "family"
    for window in ("w00", "w01"):
        for tag in ("inj0_seed1", "inj400_seed1"):
            model = results / "models/toy_moments" / window / f"{tag}.h5"
            assert len(read_table(model, "moments")) == 4 and read_attrs(model)["model"] == "toy_moments"
            assert (results / "plots/models/toy_moments" / window / f"{tag}.png").stat().st_size > 5_000
            assert "toy moments of" in (results / "logs/toy_moments" / window / f"{tag}.log").read_text()
    # the toy's score is its distance, out of fold, for every window event
    scores = read_table(results / "scores/w01/toy/inj400_seed1.h5", "scores")
    split = read_table(results / "split/w01/inj400_seed1.h5", "data")
    assert sorted(scores["event_id"]) == sorted(split["event_id"]) and (scores["score"] > 0).all()
    table = pd.read_csv(results / "pvalue_scan.csv")
    assert set(table["method"]) == set(CONFIG["methods"])
    assert len(table[table["method"] == "toy"]) == 2 * 2 * 3 and table["fit_ok"].all()


def test_the_density_methods_run_end_to_end(family_run):
    results = family_run / "results" / "family"
    table = pd.read_csv(results / "pvalue_scan.csv")
    for method in ("anode", "ranode", "flow-nll"):
        rows = table[table["method"] == method]
        assert len(rows) == 2 * 2 * 3 and rows["p0"].between(0, 0.5).all(), method
    # anode, ranode and flow-nll share the one sideband flow per window and pseudo-experiment with nothing else
    assert sorted(p.name for p in (results / "flows/w01").iterdir()) == ["inj0_seed1.h5", "inj400_seed1.h5"]
    anode = (results / "logs/train/w01/anode/inj400_seed1/fold0.log").read_text()
    assert "SR flow: best validation nll" in anode and len(re.findall(r"^flow epoch \d+/3", anode, re.M)) == 3
    ranode = (results / "logs/train/w01/ranode/inj400_seed1/fold1.log").read_text()
    fraction = float(re.search(r"fitted signal fraction in the SR ([\d.e-]+)", ranode).group(1))
    assert 0 < fraction < 1
    calibration = pd.read_csv(results / "calibration.csv")
    assert set(calibration["method"]) == set(CONFIG["methods"])


def test_the_lightning_backend_trains_the_example_module_in_the_workflow(family_run):
    results = family_run / "results" / "family"
    log = (results / "logs/train/w00/cwola-lightning/inj400_seed1/fold1.log").read_text()
    assert re.findall(r"^epoch (\d)/2: member 0: train loss [\d.]+ val loss [\d.]+", log, re.M) == ["1", "2"]
    scores = read_table(results / "scores/w00/cwola-lightning/inj400_seed1.h5", "scores")
    assert scores["score"].between(0, 1).all() and scores["score"].std() > 0
    checkpoints = list((results / "checkpoints/w00/cwola-lightning/inj400").glob("seed1_fold1-*/member0/last.ckpt"))
    assert len(checkpoints) == 1


def test_status_and_report_learn_the_plugin_from_the_registry(family_run):
    status = cli(family_run, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "4 toy_moments models (Sideband feature moments (toy plug-in)): 4 done, 0 failed" in status.stdout
    assert "4 sideband_flow models (Sideband flow (CATHODE background model)): 4 done" in status.stdout
    assert "40 training folds: 40 done, 0 failed" in status.stdout
    report = cli(family_run, "report")
    assert report.returncode == 0, (report.stdout + report.stderr)[-3000:]
    html = (family_run / "results/family/report.html").read_text()
    assert "distance from the sideband means (toy plug-in)" in html  # the summary's method list
    assert "Sideband feature moments (toy plug-in) of one window and pseudo-experiment" in html  # the model's diagnostics caption
    assert "model toy_moments" in html and "loss_toy_moments.png" in html
    assert "pvalue_scan_toy_inj400.png" in html and "pvalue_scan_ranode_inj0.png" in html
    jobs = pd.read_csv(family_run / "results/family/jobs.csv")
    assert set(jobs.loc[jobs["job"] == "model", "method"]) == {"toy_moments", "sideband_flow"}


def test_the_schema_command_lists_the_plugin_section(family_run):
    result = cli(family_run, "schema")
    assert result.returncode == 0, result.stderr
    schema = yaml.safe_load(result.stdout)
    assert schema["properties"]["toy"]["properties"]["power"]["default"] == 2.0
    assert "toy" in schema["properties"]["methods"]["items"]["enum"]


def test_a_plugin_that_does_not_import_is_named(tmp_path):
    workdir = make_workdir(tmp_path, {**CONFIG, "plugins": ["missing_method.py"]})
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert "plugins[0]: cannot import 'missing_method.py': FileNotFoundError" in result.stdout + result.stderr
