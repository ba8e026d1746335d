"""Upgrade safety: a scan made before the method layer (slidescan 0.1, commit f524167) is not retrained.

The digests below were computed by that version for the same tiny inputs. A finished fold is kept
when its fingerprint is unchanged, and a flow resumes (zero epochs) from a checkpoint whose
fingerprint is unchanged; so if these still agree, rerunning an old scan trains nothing (measured
too: the tiny workflow scan of 0.1, rerun by 0.2, kept all 24 folds and trained 0 flow epochs).
The CATHODE folds' full fingerprints hash the flow's samples, which depend on the machine's
floating point, so only their settings part is pinned here.
"""

import pytest

from slidescan.io import read_attrs
from slidescan.layout import Layout, PseudoExperiment
from slidescan.settings import ScanSettings
from slidescan.stages.data import make_injection, prepare_data, split_window
from slidescan.stages.models import fit_model
from slidescan.stages.train import train

CONFIG = {
    "scan": "upgrade",
    "data": {"source": "synthetic", "seed": 11, "synthetic": {"n_background": 20000, "signal_pool": 500,
                                                              "reference_background": 20000, "reference_signal": 1000}},
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
    "flow": "c61bd660234914c46bd43323ca746ad4320c6736a9ce2b1565f97deb029f0811",
    "cwola-nn": [("efcdacb64b7cf04b4ace6b6d9ab92245749f7f2a897e550d7d48ec9d371cc626",
                  "736190a001578cf8d57f28dd9bd6866c5dce9bb24ae54b2897be29bd5ba528c1"),
                 ("4c08a857b8b4e89b1d22b4ed725c3f88fbdd8900a0db49033adc69066499a17d",
                  "4bf184730fc7a5c920fd80180701fb26e19cc1373a39f781010382cb00dc879a")],
    "idealized-bdt": [("c8fa3a0048148bb6c61e2b58071f7aabd4e32fb73808030e772b5483a09db489",
                       "29d3c6ac6a2ee1d869897929c840456b7e52f5d1b8b5f67540200976a9c0caf2"),
                      ("6495c05797b87a1848715f372c67b7678f8f7ea5ba181b41535a1bb6cee8fb3e",
                       "05d8bcefcf76aef08dabc7cab3ef180d9f29d4bf50473fb4c2beabc215e07896")],
}
OLD_CATHODE_SETTINGS = ["8e631a9a23331dbedb94e6d6293478d083928ec2a7ea166b21b094e1f7ec6842",
                        "7db295a249e49d40540e3ffe2e73953f06f06e8ad9b1a2e725fe406426d769af"]


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    settings = ScanSettings.from_config(CONFIG)
    layout = Layout(tmp_path_factory.mktemp("upgrade"))
    e = PseudoExperiment(100, 1)
    prepare_data(settings, layout.events())
    make_injection(settings, layout.events(), e, layout.injected(e))
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
