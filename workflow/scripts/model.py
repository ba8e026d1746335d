from slidescan.layout import PseudoExperiment
from slidescan.smk import job_log, settings
from slidescan.stages.models import fit_models

with job_log(snakemake) as log:
    scan = settings(snakemake)
    w = dict(snakemake.wildcards.items())
    windows = [w["window"]] if "window" in w else [x.name for x in scan.windows]
    injections = [int(w["injection"])] if "injection" in w else list(scan.injections)
    seeds = [int(w["seed"])] if "seed" in w else list(scan.seeds)
    units = [(window, PseudoExperiment(i, s)) for window in windows for i in injections for s in seeds]
    fit_models(scan, scan.layout(), snakemake.params.model, units, log=log)
