"""CATHODE (arXiv:2109.00546): SR data against samples of the window's sideband flow, drawn in the SR.

The flow (the ``sideband_flow`` model) sees only sideband events; its SR samples carry folds of
their own, so the model of fold ``k`` trains on the samples of the other folds and scores those of
fold ``k`` (the closure AUC of SR data against samples, 0.5 without signal).
"""

from . import register
from ..windows import ANY_REGION
from .base import template_reference

register(template_reference("cathode", "SR data vs samples of a sideband-trained flow (CATHODE)", "sideband_flow",
                            "samples", regions=ANY_REGION))
