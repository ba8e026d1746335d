"""CATHODE (arXiv:2109.00546): SR data against samples of the window's sideband flow, drawn in the SR.

The flow (the ``sideband_flow`` model) sees only sideband events; its SR samples carry folds of
their own, so the model of fold ``k`` trains on the samples of the other folds and scores those of
fold ``k`` (the closure AUC of SR data against samples, 0.5 without signal).
"""

from . import Reference, held_out_fold, register


def _samples(inputs):
    return inputs.model("sideband_flow").table("samples")


def build(inputs, fold):
    samples = _samples(inputs)
    return inputs.sr(inputs.training_events(fold)), samples[samples["fold"] != fold]


register(Reference("cathode", "SR data vs samples of a sideband-trained flow (CATHODE)", build,
                   models=("sideband_flow",), held_out=lambda inputs, fold: held_out_fold(_samples(inputs), fold)))
