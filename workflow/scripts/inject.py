from slidescan.pipeline import make_injection
from slidescan.smk import job_log

with job_log(snakemake):
    w = snakemake.wildcards
    make_injection(snakemake.config, snakemake.input[0], int(w.injection), int(w.seed), snakemake.output[0])
