# Names shared by the rules, all from the scan's settings (parsed once in the Snakefile) and its layout.
# Only cheap config arithmetic here: every cluster job re-parses the Snakefile.
import re

from slidescan.cluster import slurm_resources
from slidescan.layout import EXPERIMENT, SIGNAL, SIGNAL_PATTERN, PseudoExperiment, signal_prefix
from slidescan.smk import known_signature

LAYOUT = SETTINGS.layout()
WINDOWS = [w.name for w in SETTINGS.windows]
METHODS = list(SETTINGS.methods)
INJECTIONS = list(SETTINGS.injections)
SEEDS = list(SETTINGS.seeds)
# the per-window models the methods need (name -> configured model), from the model registry
MODELS = SETTINGS.models()
TRUTH_MASS = SETTINGS.truth_mass
# the window whose SR centre is nearest to the (first) injected model's mass: where ROC, SIC and loss curves are drawn
TRUTH_WINDOW = SETTINGS.truth_window.name
SIGNAL_INJECTIONS = [i for i in INJECTIONS if i > 0]
# the signal models ("" in a one-model scan) and the tag prefix of each (layout.signal_prefix)
SIGNALS = [m.name for m in SETTINGS.signals]


# Snakemake inspects the signature of every function it calls per job; known_signature gives it once (slidescan.smk)
def _known_signatures(resources):
    return {key: known_signature(value) if callable(value) else value for key, value in resources.items()}


# sbatch account / partition / QoS, time and memory of the submitted rules (config `cluster` or SLIDESCAN_SLURM_*)
SLURM = _known_signatures(slurm_resources(SETTINGS.cluster))
SLURM_GPU = _known_signatures(slurm_resources(SETTINGS.cluster, gpu=True))


wildcard_constraints:
    window="[wv][0-9]+",  # a search region w<i>, its validation region v<i> (windows.validation)
    method="|".join(re.escape(m) for m in METHODS),
    injection="[0-9]+",
    seed="[0-9]+",
    signal=SIGNAL_PATTERN,


def scan_plots():
    """One p-value scan figure per method and injection: the background-only ones once, the others per model."""
    return [LAYOUT.scan_plot(m, e.injection, e.signal) for m in METHODS
            for e in dict.fromkeys(PseudoExperiment(e.injection, SEEDS[0], e.signal) for e in SETTINGS.experiments)]


def report_figures():
    """Figures of the report beyond the scan plots; the truth-based ones only when signal is injected."""
    figures = [LAYOUT.window_map(), LAYOUT.jobs(), LAYOUT.methods_overview(), LAYOUT.methods_plot()]
    figures += [LAYOUT.loss_plot(m) for m in METHODS]
    figures += [LAYOUT.model_loss_plot(m.model) for m in MODELS.values()]
    if SIGNAL_INJECTIONS:
        figures += [LAYOUT.performance(), LAYOUT.roc_plot(), LAYOUT.max_sic_plot()]
    figures += [LAYOUT.template_plot(m, w) for m in TEMPLATE_METHODS for w in WINDOWS]
    return figures


def limit_outputs():
    """The limits need background-only pseudo-experiments and injected ones (for the signal's efficiency)."""
    if SIGNAL_INJECTIONS and 0 in INJECTIONS:
        return [LAYOUT.limits()] + [LAYOUT.limit_plot(m, s) for m in METHODS for s in SIGNALS]
    return []


def bumphunt_tables():
    """One table per scan (method, pseudo-experiment), with every window's rows."""
    return [LAYOUT.bumphunt(m, e) for m in METHODS for e in SETTINGS.experiments]


# the data section as the events' jobs depend on it: the auxiliary samples (data.samples) are inputs of their own
# rules and of those that read them, so adding or changing one reruns nothing else
DATA_PARAMS = {key: value for key, value in config["data"].items() if key != "samples"}
_SECTIONS = {}


@known_signature
def section_of_method(wildcards):
    """The config the results of a method's folds depend on: a change reruns its training jobs. Once per method,
    not per job (20,000 training jobs: benchmarks/dag.py)."""
    method = wildcards.method
    if method not in _SECTIONS:
        run = SETTINGS.method(method)
        _SECTIONS[method] = {"section": run.section, "tunables": run.tunables()}
    return _SECTIONS[method]
