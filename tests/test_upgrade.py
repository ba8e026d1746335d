"""Upgrade safety: a scan made before the method layer (slidescan 0.1, commit f524167) is not retrained.

The digests below were computed by slidescan 0.1 itself (its ``pipeline.split_window``, ``fit_flow``
and ``train_folds``, with this CONFIG) from the input files shipped in ``tests/data/upgrade``: the
events and the injected pseudo-experiment, made by ``prepare_data`` and ``make_injection`` (0.1 makes
the same files on the same machine). The inputs are shipped instead of generated because the synthetic
generator's events differ in their last bits between CPUs (numpy runs float64 ``power``, ``exp`` and
``log`` with kernels chosen by the CPU, AVX-512 ones where it has them), and every data fingerprint
hashes them; from the inputs on, each fingerprint is exact: selections by mjj, integer random choices,
hashes of the events.
A finished fold is kept when its fingerprint is unchanged, and a flow resumes (zero epochs) from a
checkpoint whose fingerprint is unchanged; so if these still agree, rerunning an old scan trains
nothing (measured too: the tiny workflow scan of 0.1, rerun by 0.2, kept all 24 folds and trained 0
flow epochs). The CATHODE folds' full fingerprints hash the flow's samples, which depend on the
machine's floating point, so only their settings part is pinned here.
"""

import shutil
from pathlib import Path

import pytest

from slidescan.io import read_attrs
from slidescan.layout import Layout, PseudoExperiment
from slidescan.settings import ScanSettings
from slidescan.stages.data import split_window
from slidescan.stages.models import fit_model
from slidescan.stages.train import train

CONFIG = {
    "scan": "upgrade",
    "data": {"source": "synthetic", "seed": 11, "synthetic": {"n_background": 8000, "signal_pool": 200,
                                                              "reference_background": 6000, "reference_signal": 200}},
    "injections": [100], "seeds": [1], "folds": {"k": 2},
    "windows": {"spacing": "linear", "first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2,
                "sb_width": 0.6},
    "methods": ["cathode-nn", "cwola-nn", "idealized-bdt"],
    "flow": {"transforms": 1, "hidden": [8], "epochs": 1, "batch_size": 512, "learning_rate": 0.003, "n_best": 1,
             "max_train_events": 3000, "oversampling": 2},
    "classifier": {"nn": {"hidden": [8], "members": 1, "epochs": 1, "batch_size": 512, "learning_rate": 0.002},
                   "bdt": {"members": 1, "max_iter": 5}},
}
OLD = {
    "flow": "d26cf0a0b0afd66de0eb706b5f8db14579ab1db95fff0fb921574f32fdd49d3c",
    "cwola-nn": [("45f28b47a987567664698724eb8b5f42e601c9529088a12acb8938bfea001baf",
                  "736190a001578cf8d57f28dd9bd6866c5dce9bb24ae54b2897be29bd5ba528c1"),
                 ("3fb0873b6e8ca57e832ff296431ec44422953854c1b4b205bc71bb2e185d25df",
                  "4bf184730fc7a5c920fd80180701fb26e19cc1373a39f781010382cb00dc879a")],
    "idealized-bdt": [("a458da0e9d82c616e27531df0f59de3be4a958eb62bc2853509e92b0bea00eb2",
                       "29d3c6ac6a2ee1d869897929c840456b7e52f5d1b8b5f67540200976a9c0caf2"),
                      ("82ff253bc8039609959e88a81e460f6821ab5ee897e8e40838fa4eaa5616d434",
                       "05d8bcefcf76aef08dabc7cab3ef180d9f29d4bf50473fb4c2beabc215e07896")],
}
OLD_CATHODE_SETTINGS = ["8e631a9a23331dbedb94e6d6293478d083928ec2a7ea166b21b094e1f7ec6842",
                        "7db295a249e49d40540e3ffe2e73953f06f06e8ad9b1a2e725fe406426d769af"]
# made by prepare_data and make_injection with CONFIG (tests/data/upgrade/README.md)
INPUTS = Path(__file__).parent / "data" / "upgrade"


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    settings = ScanSettings.from_config(CONFIG)
    layout = Layout(tmp_path_factory.mktemp("upgrade"))
    e = PseudoExperiment(100, 1)
    for source, target in ((INPUTS / "events.h5", layout.events()), (INPUTS / f"{e.tag}.h5", layout.injected(e))):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    split_window(settings, layout.injected(e), layout.events(), "w00", layout.split("w00", e))
    fit_model(settings, layout, "sideband_flow", "w00", e, log=lambda s: None)
    for method in CONFIG["methods"]:
        train(settings, layout, "w00", method, 100, log=lambda s: None)
    return layout, e


def test_the_flow_checkpoint_fingerprint_is_that_of_0_1(scan):
    import torch

    from slidescan.registry import MODELS

    layout, e = scan
    state = torch.load(layout.model_checkpoint(MODELS["sideband_flow"], "w00", e), weights_only=True)
    assert state["slidescan"]["fingerprint"] == OLD["flow"]


@pytest.mark.parametrize("method", ["cwola-nn", "idealized-bdt"])
def test_fold_fingerprints_are_those_of_0_1(scan, method):
    layout, e = scan
    for fold, (fingerprint, settings_fingerprint) in enumerate(OLD[method]):
        attrs = read_attrs(layout.fold("w00", method, e, fold))
        assert (attrs["fingerprint"], attrs["settings_fingerprint"]) == (fingerprint, settings_fingerprint)


def test_cathode_settings_fingerprints_are_those_of_0_1(scan):
    layout, e = scan
    assert [read_attrs(layout.fold("w00", "cathode-nn", e, f))["settings_fingerprint"] for f in (0, 1)] == \
        OLD_CATHODE_SETTINGS
