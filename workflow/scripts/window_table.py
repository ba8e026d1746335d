from slidescan.io import write_csv
from slidescan.smk import settings
from slidescan.windows import window_table

write_csv(snakemake.output[0], window_table(list(settings(snakemake).windows)))
