"""FETA (arXiv:2212.11285): SR data against the simulation's SR events morphed onto the data by flows.

The ``feta`` model composes a flow of the simulation's sidebands with the inverse of the data's sideband flow and
applies it to the simulated SR events; that morphed simulation, with the sample's folds, is the template. Needs
``data.samples.simulation``.
"""

from . import register
from .base import template_reference

register(template_reference("feta", "SR data vs the simulation morphed onto the data by flows (FETA)", "feta",
                            "template"))
