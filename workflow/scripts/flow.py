from slidescan.pipeline import fit_flow
from slidescan.smk import job_log

with job_log(snakemake) as log:
    fit_flow(snakemake.config, snakemake.input[0], snakemake.output.samples, checkpoint=snakemake.params.checkpoint,
             closure_plot=snakemake.output.closure, log=log)
