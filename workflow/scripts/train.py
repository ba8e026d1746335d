from pathlib import Path

from slidescan.pipeline import Experiment, train_experiments
from slidescan.smk import job_log

flows = snakemake.input.get("flow") or [None] * len(snakemake.output)
experiments = [Experiment(Path(split), Path(out), Path(folds), Path(logs), Path(flow) if flow else None)
               for split, out, folds, logs, flow in zip(snakemake.input.split, snakemake.output, snakemake.params.folds,
                                                        snakemake.params.logs, flows)]
with job_log(snakemake) as log:
    train_experiments(snakemake.config, snakemake.wildcards.method, experiments, snakemake.params.checkpoints, log=log)
