rule bumphunt:
    """One scan (method, pseudo-experiment) in every window: a job per scan, not per window (slidescan.stages.bumphunt)."""
    input:
        [str(LAYOUT.scores(w, "{method}", EXPERIMENT)) for w in WINDOWS],
    output:
        table=str(LAYOUT.bumphunt("{method}", EXPERIMENT)),
        spectra=report(
            directory(str(LAYOUT.spectra("{method}", EXPERIMENT))),
            patterns=["{window}.png"],
            category="Diagnostics",
            subcategory="selected spectra: {method}",
            labels={"window": "{window}", "method": "{method}", "signal": "{signal}", "injection": "{injection}",
                    "seed": "{seed}"},
            caption="../report/spectra.rst",
        ),
    resources:
        **SLURM,
    log:
        str(LAYOUT.bumphunt_log("{method}", EXPERIMENT)),
    params:
        windows=config["windows"],
        bumphunt=config["bumphunt"],
    script:
        "../scripts/bumphunt.py"


rule scan:
    input:
        bumphunt_tables(),
    output:
        report(str(LAYOUT.pvalue_scan()), category="Scan", caption="../report/pvalue_scan_table.rst"),
    log:
        str(LAYOUT.log("scan")),
    params:
        bumphunt=config["bumphunt"],
    script:
        "../scripts/scan.py"


rule calibration:
    input:
        rules.scan.output,
    output:
        table=report(str(LAYOUT.calibration()), category="Calibration", caption="../report/calibration.rst"),
        plot=report(str(LAYOUT.calibration_plot()), category="Calibration", caption="../report/calibration.rst"),
    log:
        str(LAYOUT.log("calibration")),
    script:
        "../scripts/calibration.py"


rule sensitivity:
    input:
        rules.scan.output,
    output:
        [
            report(str(LAYOUT.sensitivity_plot(s)), category="Sensitivity", labels={"signal model": s or "the one"},
                   caption="../report/sensitivity.rst")
            for s in SIGNALS
        ],
    log:
        str(LAYOUT.log("sensitivity")),
    script:
        "../scripts/sensitivity.py"


rule limits:
    """The upper limits on the injected signal from the p-value scan: observed (injection 0), expected, bands."""
    input:
        rules.scan.output,
    output:
        table=report(str(LAYOUT.limits()), category="Limits", caption="../report/limits.rst"),
        plots=[
            report(str(LAYOUT.limit_plot(m, s)), category="Limits", subcategory="per method",
                   labels={"method": m, "signal model": s or "the one"}, caption="../report/limits.rst")
            for m in METHODS for s in SIGNALS
        ],
    resources:
        **SLURM,
    log:
        str(LAYOUT.log("limits")),
    params:
        limits=config["limits"],
    script:
        "../scripts/limits.py"
