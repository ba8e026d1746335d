from slidescan.smk import job_log, settings
from slidescan.stages.data import prepare_data

with job_log(snakemake) as log:
    prepare_data(settings(snakemake), snakemake.output[0], log=log)
