"""FETA (arXiv:2212.11285): SR data against the simulation's SR events morphed onto the data by a flow.

The ``feta`` model trains a flow on the sideband data that morphs the simulation's flow onto them and applies its
inverse to the simulated SR events; that morphed simulation, with the sample's folds, is the template. Needs
``data.samples.simulation``.
"""

from . import register
from ..windows import ANY_REGION
from .base import template_reference

register(template_reference("feta", "SR data vs the simulation morphed onto the data by a flow (FETA)", "feta",
                            "template", regions=ANY_REGION))
