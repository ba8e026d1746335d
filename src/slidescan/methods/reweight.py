"""Reweight (Bai, Mastandrea, Nachman, arXiv:2311.12924): SR data against the simulation's SR events, reweighted to
the data by a classifier trained outside the SR.

SALAD's reweighting (arXiv:2001.05001, the ``salad_weights`` model) in the non-resonant study's words: a classifier
of simulation vs data in the control region, fed the features and the context m (ht and met, or mjj), learns
p_data(x, m) / p_sim(x, m); applied to the simulated SR events, assumed to hold there, it makes them the template.
It shares its model with ``salad``: a scan that names both reweights once. Needs ``data.samples.simulation``.
Its template count is calibrated on 20 backgrounds with the tuned simulation, and with the mistuned one given a
validation region (``windows.validation``; docs/benchmarks.md).
"""

from . import register
from ..windows import ANY_REGION
from .base import template_reference

register(template_reference("reweight", "SR data vs the simulation reweighted to the data outside the SR (Reweight)",
                            "salad_weights", "template", regions=ANY_REGION))
