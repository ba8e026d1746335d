"""CURTAINs (arXiv:2203.09470): SR data against the sideband data transported to SR masses.

The ``curtains_transport`` model moves every sideband event to a mass of the SR through the base space of the
data's conditional sideband flow; those events, each with its own fold, are the template. No simulation.
"""

from . import register
from .base import template_reference

register(template_reference("curtains", "SR data vs sideband data transported into the SR by a flow (CURTAINs)",
                            "curtains_transport", "template"))
