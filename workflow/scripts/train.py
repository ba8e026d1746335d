from slidescan.pipeline import train_fold
from slidescan.smk import job_log

with job_log(snakemake) as log:
    train_fold(snakemake.config, snakemake.input.split, snakemake.wildcards.method, int(snakemake.wildcards.fold),
               snakemake.output[0], checkpoint=snakemake.params.checkpoint, log=log,
               flow_samples=snakemake.input.get("flow"))
