from slidescan.smk import job_log, settings
from slidescan.stages.data import prepare_sample

with job_log(snakemake) as log:
    prepare_sample(settings(snakemake), snakemake.wildcards.name, snakemake.output[0], log=log)
