"""What a plug-in may rely on and what it must give: its code is part of what decides a rerun, and a template
that lacks a column the training stage reads stops with an error naming the method, the table and the column."""

import pandas as pd
import pytest

from slidescan.io import read_table

from test_plugins import TOY
from test_workflow import TINY, job_counts, make_workdir, snakemake

pytestmark = pytest.mark.workflow

TOY_ONLY = {**TINY, "scan": "toyonly", "plugins": ["toy_method.py"], "methods": ["toy"], "injections": [0, 400]}


def test_editing_a_plugin_file_reruns_the_jobs_that_use_it_and_retrains_their_folds(tmp_path):
    workdir = make_workdir(tmp_path, TOY_ONLY)
    plugin = workdir / "toy_method.py"
    plugin.write_text(TOY)
    first = snakemake(workdir)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout
    scores = workdir / "results/toyonly/scores/w00/toy/inj400_seed1.h5"
    before = read_table(scores, "scores")

    # a fix in the plug-in's fit: its scores change, so its model and training jobs must rerun, and only those
    plugin.write_text(TOY.replace("return (np.abs(z) ** self.power).sum(1)", "return (np.abs(z) ** self.power).max(1)"))
    dry = snakemake(workdir, "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    counts = job_counts(dry.stdout)
    assert counts["toy_moments"] == 2 * 2 and counts["train"] == 2 * 2, counts  # windows x injections
    assert not {"prepare_data", "inject", "split"} & set(counts), counts
    second = snakemake(workdir)
    assert second.returncode == 0, second.stderr[-4000:]
    log = (workdir / "results/toyonly/logs/train/w00/toy/inj400.log").read_text()
    assert "training" in log and "kept" not in log, log
    after = read_table(scores, "scores")
    assert (after["event_id"].to_numpy() == before["event_id"].to_numpy()).all()
    assert not (after["score"].to_numpy() == pytest.approx(before["score"].to_numpy()))
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout


# a Reference whose template comes from a model of its own that forgets the SR events' mjj
NO_MJJ = '''
import numpy as np
from slidescan import Model, ModelResult, Reference, register, register_model
from slidescan.io import content_hash


def copy_sr(ctx):
    sr = ctx.data[ctx.data["region"] == 0]
    table = sr[[*ctx.features, "label", "fold"]].reset_index(drop=True)  # no mjj
    return ModelResult({"samples": table}, {"fingerprint": content_hash(table[ctx.features].to_numpy())})


register_model(Model("copy_sr", "A copy of the SR events without mjj", copy_sr, gpu=False, diagnostics=False))


def build(inputs, fold):
    train = inputs.training_events(fold)
    template = inputs.model("copy_sr").table("samples")
    return inputs.sr(train), template[template["fold"] != fold]


def held_out(inputs, fold):
    template = inputs.model("copy_sr").table("samples")
    return template[template["fold"] == fold]


register(Reference("nomjj", "SR data vs a copy without mjj", build, models=("copy_sr",), held_out=held_out))
'''


def test_a_template_without_mjj_is_refused_naming_the_method_the_table_and_the_column(tmp_path):
    workdir = make_workdir(tmp_path, {**TINY, "scan": "nomjj", "plugins": ["no_mjj.py"], "methods": ["nomjj-bdt"],
                                      "injections": [0]})
    (workdir / "no_mjj.py").write_text(NO_MJJ)
    result = snakemake(workdir)
    assert result.returncode != 0
    log = (workdir / "results/nomjj/logs/train/w00/nomjj-bdt/inj0.log").read_text()
    assert "method nomjj-bdt, fold 0: its held-out template events (model copy_sr's table 'samples'" in log, log
    assert "no column(s) ['mjj']" in log and "The template contract" in log
    assert "KeyError" not in log


def test_a_template_without_a_feature_is_refused_before_training():
    from types import SimpleNamespace

    from slidescan.data import FEATURES
    from slidescan.methods import Reference

    events = pd.DataFrame({**{f: [0.1, 0.2] for f in FEATURES}, "mjj": [3.5, 3.6], "label": [0, 0], "fold": [0, 1]})
    short = Reference("short", "a template that drops a feature", lambda inputs, fold: (events, events.drop(
        columns=[FEATURES[0]])))
    with pytest.raises(ValueError, match=rf"method short-nn, fold 1: its label-0 events \(the template\): no column\(s\) "
                                         rf"\['{FEATURES[0]}'\]"):
        short.fold_data(SimpleNamespace(features=list(FEATURES), data=events), 1, "short-nn")


def test_a_plugin_built_with_a_slidescan_helper_is_still_its_own_code(tmp_path):
    """An entry built by slidescan's template_reference holds only slidescan's functions; the module that registered
    it is what identifies its code, so editing that file changes the identity."""
    from slidescan.config import import_plugins
    from slidescan.registry import METHODS, code_identity

    plugin = tmp_path / "helper_made.py"
    plugin.write_text("from slidescan import register\nfrom slidescan.methods.base import template_reference\n"
                      "register(template_reference('helpermade', 'a template', 'sideband_flow', 'samples'))\n")
    import_plugins(["helper_made.py"], tmp_path)
    first = code_identity(METHODS["helpermade"])
    assert first and code_identity(METHODS["cathode"]) == ""
    plugin.write_text(plugin.read_text() + "# edited\n")
    assert code_identity(METHODS["helpermade"]) not in ("", first)


def test_the_truth_reference_is_named_truth_and_a_plugin_reading_its_old_name_still_works():
    """``inputs.truth`` (labelled events set apart, not a simulation); plug-ins written against ``inputs.tables`` keep
    their meaning."""
    from slidescan.methods import WindowInputs
    from slidescan.registry import METHODS

    truth = {"background_sr": pd.DataFrame({"x": [1.0], "fold": [0]}), "signal": pd.DataFrame({"x": [2.0], "fold": [0]})}
    inputs = WindowInputs(None, None, pd.DataFrame(), truth, {}, ["x"])
    assert inputs.tables is inputs.truth is truth
    assert all("simulation" not in METHODS[name].description for name in ("idealized", "supervised"))
