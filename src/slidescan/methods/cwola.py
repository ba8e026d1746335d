"""CWoLa hunting (arXiv:1805.02664): SR data against the sideband data of the same window."""

from ..windows import ANY_REGION
from . import Reference, register


def build(inputs, fold):
    train = inputs.training_events(fold)
    return inputs.sr(train), inputs.sidebands(train)


register(Reference("cwola", "SR data vs sideband data (CWoLa hunting)", build, regions=ANY_REGION))
