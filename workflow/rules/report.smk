rule plot_scan:
    input:
        rules.scan.output,
    output:
        report(
            str(LAYOUT.scan_plot("{method}", "{injection}", SIGNAL)),
            category="Scan",
            subcategory="{method}",
            labels={"method": "{method}", "signal": "{signal}", "injection": "{injection}"},
            caption="../report/pvalue_scan.rst",
        ),
    log:
        str(LAYOUT.log("plot_scan", "{method}_" + SIGNAL + "inj{injection}")),
    script:
        "../scripts/plot_scan.py"


rule window_map:
    input:
        LAYOUT.injected(PseudoExperiment(max(INJECTIONS), SEEDS[0], SIGNALS[0] if max(INJECTIONS) else "")),
    output:
        report(str(LAYOUT.window_map()), category="Scan", caption="../report/window_map.rst"),
    log:
        str(LAYOUT.log("window_map")),
    params:
        windows=config["windows"],
        truth_mass=TRUTH_MASS,
    script:
        "../scripts/window_map.py"


rule performance:
    input:
        [
            LAYOUT.scores(TRUTH_WINDOW, m, PseudoExperiment(i, s, SIGNALS[0]))
            for m in METHODS
            for i in SIGNAL_INJECTIONS
            for s in SEEDS
        ],
    output:
        table=report(str(LAYOUT.performance()), category="Methods", caption="../report/performance.rst"),
        roc=report(str(LAYOUT.roc_plot()), category="Methods", caption="../report/roc_sic.rst"),
        max_sic=report(str(LAYOUT.max_sic_plot()), category="Methods", caption="../report/max_sic.rst"),
    log:
        str(LAYOUT.log("performance")),
    params:
        window=TRUTH_WINDOW,
    script:
        "../scripts/performance.py"


rule loss_curves:
    input:
        lambda wc: [LAYOUT.scores(TRUTH_WINDOW, wc.method, e) for e in SETTINGS.experiments],
    output:
        report(
            str(LAYOUT.loss_plot("{method}")),
            category="Diagnostics",
            subcategory="loss curves",
            labels={"method": "{method}"},
            caption="../report/loss_curves.rst",
        ),
    log:
        str(LAYOUT.log("loss_curves", "{method}")),
    params:
        title=lambda wc: f"{wc.method}, {TRUTH_WINDOW}",
        ylabel="loss per event",
    script:
        "../scripts/loss_curves.py"


rule methods_overview:
    input:
        scan=rules.scan.output,
        calibration=LAYOUT.calibration(),
        performance=[LAYOUT.performance()] if SIGNAL_INJECTIONS else [],
    output:
        table=report(str(LAYOUT.methods_overview()), category="Methods", caption="../report/methods.rst"),
        plot=report(str(LAYOUT.methods_plot()), category="Methods", caption="../report/methods.rst"),
    log:
        str(LAYOUT.log("methods_overview")),
    params:
        truth_window=TRUTH_WINDOW,
    script:
        "../scripts/methods_overview.py"


rule jobs:
    input:
        rules.scan.output,
    output:
        report(str(LAYOUT.jobs()), category="Jobs", caption="../report/jobs.rst"),
    log:
        str(LAYOUT.log("jobs")),
    script:
        "../scripts/jobs.py"


# the template pages: SR data against each method's own template at injection 0 (slidescan.report.templates)
from slidescan.report.templates import background_only, template_methods

TEMPLATE_METHODS = template_methods(SETTINGS) if 0 in INJECTIONS else []
_NULL = background_only(SETTINGS)


def template_inputs(method):
    run = SETTINGS.method(method)
    return {"models": sorted({str(LAYOUT.model(MODELS[n].model, w, _NULL)) for n in run.models for w in WINDOWS}),
            "samples": [str(LAYOUT.sample_split(n, w)) for n in run.method_samples() for w in WINDOWS]}


for _method in TEMPLATE_METHODS:

    rule:
        name:
            f"templates_{_method}"
        localrule: True
        input:
            scan=str(LAYOUT.pvalue_scan()),
            split=[LAYOUT.split(w, _NULL) for w in WINDOWS],
            **template_inputs(_method),
        output:
            [
                report(
                    str(LAYOUT.template_plot(_method, w)),
                    category="Templates",
                    subcategory=_method,
                    labels={"method": _method, "window": w},
                    caption="../report/templates.rst",
                )
                for w in WINDOWS
            ],
        log:
            str(LAYOUT.log("templates", _method)),
        params:
            method=_method,
            windows=WINDOWS,
        script:
            "../scripts/templates.py"
