from slidescan.pipeline import prepare_data
from slidescan.smk import job_log

with job_log(snakemake):
    prepare_data(snakemake.config, snakemake.output[0])
