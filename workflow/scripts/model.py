from slidescan.smk import experiment, job_log, settings
from slidescan.stages.models import fit_model

with job_log(snakemake) as log:
    scan = settings(snakemake)
    fit_model(scan, scan.layout(), snakemake.params.model, snakemake.wildcards.window, experiment(snakemake), log=log)
