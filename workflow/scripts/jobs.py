from pathlib import Path

from slidescan.io import write_csv
from slidescan.report.status import jobs_table
from slidescan.smk import job_log, settings

with job_log(snakemake):
    scan = settings(snakemake)
    write_csv(snakemake.output[0], jobs_table(scan, scan.layout(), Path.cwd()))
