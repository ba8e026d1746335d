"""SALAD (arXiv:2001.05001): SR data against the simulation's SR events, reweighted to the data.

A classifier of simulation vs data in the sidebands, conditioned on mjj (the ``salad_weights`` model), weights the
simulated SR events; that weighted simulation is the template. Its events carry the sample's folds, so the model of
fold ``k`` trains on the template's other folds and scores fold ``k`` (the AUC of SR data vs template, 0.5 without
signal where the reweighting is right). Needs ``data.samples.simulation``.
"""

from . import register
from ..windows import ANY_REGION
from .base import template_reference

register(template_reference("salad", "SR data vs the simulation reweighted to the sideband data (SALAD)",
                            "salad_weights", "template", regions=ANY_REGION))
