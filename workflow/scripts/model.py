from slidescan.layout import PseudoExperiment, signal_name
from slidescan.smk import job_log, settings
from slidescan.stages.models import fit_models

with job_log(snakemake) as log:
    scan = settings(snakemake)
    w = dict(snakemake.wildcards.items())
    windows = [w["window"]] if "window" in w else [x.name for x in scan.windows]
    if "injection" in w:
        experiments = [PseudoExperiment(int(w["injection"]), s, signal_name(w["signal"]))
                       for s in ([int(w["seed"])] if "seed" in w else scan.seeds)]
    else:
        experiments = scan.experiments
    fit_models(scan, scan.layout(), snakemake.params.model, [(x, e) for x in windows for e in experiments], log=log)
