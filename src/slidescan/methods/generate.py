"""Generate (Bai, Mastandrea, Nachman, arXiv:2311.12924): SR data against samples of the data's flow p(x | m)
learned outside the SR, drawn at SR conditions m of the simulation reweighted to the data.

CATHODE's template with the SR's conditions from the simulation, P_sim(m) w(m) (the ``generate`` model), instead of
from the SR data, whose context a non-resonant signal shares. Needs ``data.samples.simulation``.
"""

from . import register
from ..windows import ANY_REGION
from .base import template_reference

register(template_reference("generate", "SR data vs CR-flow samples at the reweighted simulation's SR conditions "
                            "(Generate)", "generate", "samples", regions=ANY_REGION))
