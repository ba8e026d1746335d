from pathlib import Path

from slidescan.io import write_csv
from slidescan.smk import job_log
from slidescan.status import jobs_table

with job_log(snakemake):
    write_csv(snakemake.output[0], jobs_table(Path.cwd(), snakemake.config))
