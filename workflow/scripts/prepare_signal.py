from slidescan.smk import job_log, settings
from slidescan.stages.data import prepare_signal

with job_log(snakemake) as log:
    prepare_signal(settings(snakemake), snakemake.wildcards.name, snakemake.output[0], log=log)
