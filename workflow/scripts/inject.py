from slidescan.smk import experiment, job_log, settings
from slidescan.stages.data import make_injection

with job_log(snakemake):
    make_injection(settings(snakemake), snakemake.input[0], experiment(snakemake), snakemake.output[0])
