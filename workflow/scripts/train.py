from slidescan.pipeline import train_folds
from slidescan.smk import job_log

with job_log(snakemake) as log:
    train_folds(snakemake.config, snakemake.input.split, snakemake.wildcards.method, snakemake.output[0],
                snakemake.params.folds, snakemake.params.logs, snakemake.params.checkpoints, log=log,
                flow_samples=snakemake.input.get("flow"))
