from slidescan.smk import job_log, settings
from slidescan.report.templates import draw_templates
from slidescan.stages.scan import read_scan

with job_log(snakemake) as log:
    scan = settings(snakemake)
    draw_templates(scan, scan.layout(), snakemake.params.method, read_scan(snakemake.input.scan),
                   dict(zip(snakemake.params.windows, snakemake.output)), log=log)
