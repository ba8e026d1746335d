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


rule window_map:
    input:
        lambda wc: rules.inject.output[0].format(injection=max(INJECTIONS), seed=SEEDS[0]),
    output:
        report(f"{RESULTS}/plots/window_map.png", category="Scan", caption="../report/window_map.rst"),
    log:
        f"{RESULTS}/logs/window_map.log",
    params:
        windows=config["windows"],
        truth_mass=TRUTH_MASS,
    script:
        "../scripts/window_map.py"


rule performance:
    input:
        expand(f"{RESULTS}/scores/{TRUTH_WINDOW}/{{method}}/{EXPERIMENT}.h5", method=METHODS,
               injection=SIGNAL_INJECTIONS, seed=SEEDS),
    output:
        table=report(f"{RESULTS}/performance.csv", category="Methods", caption="../report/performance.rst"),
        roc=report(f"{RESULTS}/plots/roc_sic.png", category="Methods", caption="../report/roc_sic.rst"),
        max_sic=report(f"{RESULTS}/plots/max_sic_vs_sb.png", category="Methods", caption="../report/max_sic.rst"),
    log:
        f"{RESULTS}/logs/performance.log",
    params:
        window=TRUTH_WINDOW,
    script:
        "../scripts/performance.py"


rule loss_curves:
    input:
        expand(f"{RESULTS}/scores/{TRUTH_WINDOW}/{{{{method}}}}/{EXPERIMENT}.h5", injection=INJECTIONS, seed=SEEDS),
    output:
        report(f"{RESULTS}/plots/loss_{{method}}.png", category="Diagnostics", subcategory="loss curves",
               labels={"method": "{method}"}, caption="../report/loss_curves.rst"),
    log:
        f"{RESULTS}/logs/loss_curves/{{method}}.log",
    params:
        window=TRUTH_WINDOW,
    script:
        "../scripts/loss_curves.py"


rule flow_loss_curves:
    input:
        expand(rules.flow.output.samples, window=WINDOWS, injection=INJECTIONS, seed=SEEDS),
    output:
        report(f"{RESULTS}/plots/loss_flows.png", category="Diagnostics", subcategory="loss curves",
               labels={"method": "CATHODE flows"}, caption="../report/loss_flows.rst"),
    log:
        f"{RESULTS}/logs/loss_curves/flows.log",
    script:
        "../scripts/loss_curves.py"


rule jobs:
    input:
        rules.scan.output,
    output:
        report(f"{RESULTS}/jobs.csv", category="Jobs", caption="../report/jobs.rst"),
    log:
        f"{RESULTS}/logs/jobs.log",
    script:
        "../scripts/jobs.py"
