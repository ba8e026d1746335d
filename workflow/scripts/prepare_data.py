from slidescan.smk import job_log, settings
from slidescan.stages.data import prepare_data

with job_log(snakemake):
    prepare_data(settings(snakemake), snakemake.output[0])
