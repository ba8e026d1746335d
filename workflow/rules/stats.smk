rule bumphunt:
    """One scan (method, pseudo-experiment) in every window: a job per scan, not per window (pipeline.run_bumphunt)."""
    input:
        expand(SCORES, window=WINDOWS, allow_missing=True),
    output:
        table=f"{RESULTS}/bumphunt/{{method}}/{EXPERIMENT}.csv",
        spectra=report(
            directory(f"{RESULTS}/plots/spectra/{{method}}/{EXPERIMENT}"),
            patterns=["{window}.png"],
            category="Diagnostics",
            subcategory="selected spectra: {method}",
            labels={"window": "{window}", "method": "{method}", "injection": "{injection}", "seed": "{seed}"},
            caption="../report/spectra.rst",
        ),
    resources:
        **SLURM,
    log:
        f"{RESULTS}/logs/bumphunt/{{method}}/{EXPERIMENT}.log",
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
    params:
        bumphunt=config["bumphunt"],
    script:
        "../scripts/scan.py"


rule calibration:
    input:
        rules.scan.output,
    output:
        table=report(f"{RESULTS}/calibration.csv", category="Calibration", caption="../report/calibration.rst"),
        plot=report(f"{RESULTS}/plots/calibration_p0.png", category="Calibration", caption="../report/calibration.rst"),
    log:
        f"{RESULTS}/logs/calibration.log",
    script:
        "../scripts/calibration.py"


rule sensitivity:
    input:
        rules.scan.output,
    output:
        report(f"{RESULTS}/plots/sensitivity.png", category="Sensitivity", caption="../report/sensitivity.rst"),
    log:
        f"{RESULTS}/logs/sensitivity.log",
    params:
        truth_mass=TRUTH_MASS,
    script:
        "../scripts/sensitivity.py"
