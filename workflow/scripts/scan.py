from slidescan.smk import job_log, settings
from slidescan.stages.scan import gather

with job_log(snakemake):
    gather(list(snakemake.input), snakemake.output[0], n_toys=settings(snakemake).bumphunt.global_toys)
