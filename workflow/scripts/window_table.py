from slidescan.io import write_csv
from slidescan.windows import window_grid, window_table

write_csv(snakemake.output[0], window_table(window_grid(snakemake.config["windows"])))
