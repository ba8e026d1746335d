rule bumphunt:
    input:
        rules.merge_folds.output,
    output:
        f"{RESULTS}/bumphunt/{{window}}/{{method}}/{EXPERIMENT}.csv",
    log:
        f"{RESULTS}/logs/bumphunt/{{window}}/{{method}}/{EXPERIMENT}.log",
    params:
        windows=config["windows"],
        bumphunt=config["bumphunt"],
    script:
        "../scripts/bumphunt.py"


rule scan:
    input:
        bumphunt_tables(),
    output:
        report(
            f"{RESULTS}/pvalue_scan.csv",
            category="Scan",
            caption="../report/pvalue_scan_table.rst",
        ),
    log:
        f"{RESULTS}/logs/scan.log",
    script:
        "../scripts/scan.py"
