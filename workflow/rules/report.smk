rule plot_scan:
    input:
        rules.scan.output,
    output:
        report(
            f"{RESULTS}/plots/pvalue_scan_{{method}}_inj{{injection}}.png",
            category="Scan",
            subcategory="{method}",
            labels={"method": "{method}", "injection": "{injection}"},
            caption="../report/pvalue_scan.rst",
        ),
    log:
        f"{RESULTS}/logs/plot_scan/{{method}}_inj{{injection}}.log",
    params:
        truth_mass=TRUTH_MASS,
    script:
        "../scripts/plot_scan.py"
