"""SALAD (arXiv:2001.05001): SR data against the simulation's SR events, reweighted to the data.

A classifier of simulation vs data in the sidebands, conditioned on mjj (the ``salad_weights`` model), weights the
simulated SR events; that weighted simulation is the template. Its events carry the sample's folds, so the model of
fold ``k`` trains on the template's other folds and scores fold ``k`` (the AUC of SR data vs template, 0.5 without
signal where the reweighting is right). Needs ``data.samples.simulation``.
"""

from . import Reference, held_out_fold, register


def _template(inputs):
    return inputs.model("salad_weights").table("template")


def build(inputs, fold):
    template = _template(inputs)
    return inputs.sr(inputs.training_events(fold)), template[template["fold"] != fold]


register(Reference("salad", "SR data vs the simulation reweighted to the sideband data (SALAD)", build,
                   models=("salad_weights",), held_out=lambda inputs, fold: held_out_fold(_template(inputs), fold)))
