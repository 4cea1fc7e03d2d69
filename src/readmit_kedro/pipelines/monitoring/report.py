"""The human report: one self-contained HTML page (plots inlined as base64 PNG) and its figures.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state), so rendering is headless
and safe in any worker, with fixed margins: a layout engine would re-measure every label on each
of the two renders (HTML, then the PNG dataset) and cost seconds. Everything shown comes from the
JSON report, so the page holds exactly the aggregates the JSON does - no patient rows.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from readmit_kedro.model.metrics import describe_metric

_DRIFT, _OK, _REFERENCE, _CURRENT = "#c0392b", "#4a78a8", "#9aa5b1", "#e08a2c"


def figures(report: dict[str, Any]) -> dict[str, Figure]:
    """The page's figures by name (psi, score, roc, calibration), in that order.

    A figure whose section of the report (``data_drift`` or ``performance``) is not available
    says so, with the reason, instead.
    """
    drawn = {}
    for name, (key, title, draw) in _FIGURES.items():
        section = report[key]
        available = section["available"]
        drawn[name] = draw(report) if available else _message_figure(title, section["reason"])
    return drawn


def psi_figure(report: dict[str, Any]) -> Figure:
    """PSI per feature and of the scores, with the drift threshold as a vertical line."""
    drift = report["data_drift"]
    entries = {name: e["psi"] for name, e in drift["features"].items() if e["psi"] is not None}
    if drift["score"]["psi"] is not None:
        entries["(predicted score)"] = drift["score"]["psi"]
    names = sorted(entries, key=entries.get)
    threshold = report["thresholds"]["drift_threshold_psi"]
    height = 0.28 * len(names) + 1.4
    fig, ax = _canvas((8, height), left=0.27, right=0.97, bottom=0.6 / height, top=1 - 0.4 / height)
    ax.barh(
        names,
        [entries[n] for n in names],
        color=[_DRIFT if entries[n] > threshold else _OK for n in names],
    )
    ax.axvline(threshold, color=_DRIFT, linestyle="--", label=f"threshold {threshold}")
    ax.set_xlabel("PSI vs reference profile")
    ax.set_title("Population stability index per feature")
    ax.legend(loc="lower right")
    return fig


def score_figure(report: dict[str, Any]) -> Figure:
    """Share of scored encounters per reference score bin: reference vs current window."""
    score = report["data_drift"]["score"]
    fig, ax = _canvas((8, 3.6), left=0.09, right=0.98, bottom=0.3, top=0.9)
    positions = range(len(score["bins"]))
    ax.bar(
        [p - 0.2 for p in positions],
        score["reference"],
        0.4,
        label="reference (train)",
        color=_REFERENCE,
    )
    ax.bar(
        [p + 0.2 for p in positions], score["current"], 0.4, label="current window", color=_CURRENT
    )
    ax.set_xticks(list(positions), score["bins"], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("share of encounters")
    psi_text = "n/a" if score["psi"] is None else f"{score['psi']:.3f}"
    ax.set_title(f"Predicted score distribution (PSI {psi_text})")
    ax.legend()
    return fig


def roc_figure(report: dict[str, Any]) -> Figure:
    """ROC curve on mature labels."""
    metrics = report["performance"]
    fig, ax = _canvas(**_SQUARE)
    curve = metrics["roc_curve"]
    ax.plot(
        curve["fpr"], curve["tpr"], color=_OK, label=f"AUC {describe_metric(metrics, 'roc_auc')}"
    )
    ax.plot([0, 1], [0, 1], color=_REFERENCE, linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (mature labels)")
    ax.legend(loc="lower right")
    return fig


def calibration_figure(report: dict[str, Any]) -> Figure:
    """Observed 30-day readmission rate against mean predicted risk per decile."""
    table = report["performance"]["calibration"]
    fig, ax = _canvas(**_SQUARE)
    predicted = [row["mean_predicted"] for row in table]
    ax.plot(predicted, [row["observed_rate"] for row in table], "o-", color=_OK, label="deciles")
    top = max(1e-3, *predicted, *(row["observed_rate"] for row in table))
    ax.plot([0, top], [0, top], color=_REFERENCE, linestyle=":", label="perfect calibration")
    ax.set(xlabel="mean predicted risk", ylabel="observed rate", title="Calibration (deciles)")
    ax.legend(loc="upper left")
    return fig


# name: (the report section it needs, its title when that is not available, how it is drawn)
_FIGURES = {
    "psi": ("data_drift", "PSI per feature", psi_figure),
    "score": ("data_drift", "Score distribution", score_figure),
    "roc": ("performance", "ROC curve", roc_figure),
    "calibration": ("performance", "Calibration", calibration_figure),
}


def render_html(report: dict[str, Any], figures: dict[str, Figure]) -> str:
    """The whole page; ``figures`` maps psi / score / roc / calibration to their figures."""
    images = {name: _png_base64(fig) for name, fig in figures.items()}
    retrain = report["retrain"]
    drift = report["data_drift"]
    maturity = report["label_maturity"]
    window = report["window"]
    reasons = "".join(f"<li>{_e(r)}</li>" for r in retrain["reasons"]) or "<li>none</li>"
    sections = [
        f"<h1>Readmission model monitoring &mdash; {_e(report['run_date'])}</h1>",
        "<h2>Summary</h2>",
        f"<p>Encounters admitted after {_e(window['admitted_after'])} up to "
        f"{_e(window['run_date'])}; labels count once discharged on or before "
        f"{_e(window['label_maturity_cutoff'])}.</p>",
        f'<p class="verdict {"bad" if retrain["retrain_recommended"] else "good"}">'
        f"Retraining recommended: <b>{'yes' if retrain['retrain_recommended'] else 'no'}</b></p>",
        f"<ul>{reasons}</ul>",
        _table(
            ["predictions in window", "mature labelled", "immature", "mature unlabelled"],
            [
                [
                    maturity["predictions_in_window"],
                    maturity["mature_labelled"],
                    maturity["immature"],
                    maturity["mature_unlabelled"],
                ]
            ],
        ),
        "<h2>Alerts</h2>",
        _table(
            ["severity", "alert", "details"],
            [[a["severity"].upper(), a["title"], a["message"]] for a in report["alerts"]],
            row_classes=[a["severity"] for a in report["alerts"]],
        ),
        "<h2>Performance</h2>",
        _metrics_section(report),
        f'<div class="row">{_img(images, "roc")}{_img(images, "calibration")}</div>',
        "<h2>Data drift</h2>",
        _img(images, "psi"),
        _drift_section(drift),
        "<h2>Score distribution</h2>",
        _img(images, "score"),
        "<h2>Feature importance (mean |SHAP|)</h2>",
        _importance_section(report["feature_importance"]),
        "<h2>Source data quality</h2>",
        _data_quality_section(report["data_quality"]),
    ]
    return _PAGE.format(title=_e(f"Monitoring {report['run_date']}"), body="\n".join(sections))


def _metrics_section(report: dict[str, Any]) -> str:
    perf = report["performance"]
    if not perf["available"]:
        return f'<p class="na">Metrics not available: {_e(perf["reason"])}</p>'
    breached = {
        b["metric"]: "concept drift" if b["retrain"] else "shift (warning)"
        for b in report["concept_drift"]["breaches"]
    }
    rows = [
        [
            name,
            describe_metric(perf, name, digits=4),
            f"{champion:.4f}",
            f"{perf[name] - champion:+.4f}",
            breached.get(name, ""),
        ]
        for name, champion in report["champion_metrics"].items()
    ]
    intervals = perf["intervals"]
    note = (
        f" ROC AUC and PR AUC with their {intervals['level']:.0%} interval [low, high]: "
        f"{_e(intervals['method'])}, {intervals['resamples_used']} resamples."
    )
    return f"<p>{perf['rows']} mature labelled encounters.{note}</p>" + _table(
        ["metric", "current", "champion (test)", "difference", "breach"], rows
    )


def _drift_section(drift: dict[str, Any]) -> str:
    if not drift["available"]:
        return f'<p class="na">Drift not evaluated: {_e(drift["reason"])}</p>'
    rows = [
        [
            name,
            "n/a" if e["psi"] is None else f"{e['psi']:.4f}",
            "yes" if e["drift"] else "",
            f"{e['missing_rate']:.1%}",
            f"{e['reference_missing_rate']:.1%}",
            f"{e['missing_rate_limit']:.1%}",
            "yes" if e["missing_breach"] else "",
        ]
        for name, e in drift["features"].items()
    ]
    return f"<p>{drift['encounters_with_features']} scored encounters with gold features.</p>" + (
        _table(
            ["feature", "PSI", "drift", "missing", "reference missing", "limit", "above limit"],
            rows,
        )
    )


def _importance_section(importance: dict[str, Any]) -> str:
    """Mean |SHAP| and rank per period, for the features in any period's top; the comparison."""
    if not importance["available"]:
        return f'<p class="na">Feature importance not available: {_e(importance["reason"])}</p>'
    change, periods = importance["ranking_change"], importance["periods"]
    shown = [p for p in periods if p["available"]]
    top = change["top_features"]
    features = list(dict.fromkeys(f for p in shown for f in list(p["mean_abs_shap"])[:top]))
    rows = [
        [f]
        + [
            f"{p['mean_abs_shap'][f]:.4f} (#{list(p['mean_abs_shap']).index(f) + 1})"
            if p["available"]
            else "n/a"
            for p in periods
        ]
        for f in features
    ]
    heads = [
        f"{p['admitted_after']} to {p['admitted_until']} ({p['explained']} of {p['rows']})"
        for p in periods
    ]
    if not change["available"]:
        verdict = f'<p class="na">Ranking not compared: {_e(change["reason"])}</p>'
    elif change["changed"]:
        moves = "".join(
            f"<li>{_e(m['feature'])}: #{m['previous_rank']} to #{m['current_rank']}</li>"
            for m in change["moves"]
        )
        verdict = f'<p class="bad">Ranking changed (top {top}):</p><ul>{moves}</ul>'
    else:
        verdict = f'<p class="good">Ranking of the top {top} unchanged.</p>'
    model = importance["model"]
    intro = (
        f"<p>{_e(model['algorithm'])} {_e(model['version'])}, {_e(importance['method'])}; "
        "per period (admitted; encounters explained of those scored): mean |SHAP| and rank.</p>"
    )
    return intro + _table(["feature", *heads], rows) + verdict


def _data_quality_section(data_quality: dict[str, Any]) -> str:
    """Ordering warnings of the last data_processing run (silver's quality report)."""
    warnings = data_quality["ordering_warnings"]
    intro = f"<p>Ordering checks of silver, data_processing run {_e(data_quality['run_date'])}: "
    if not warnings:
        return intro + "no warning.</p>"
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return intro + f'<span class="bad">{len(warnings)} warning(s)</span></p><ul>{items}</ul>'


def _table(headers: list[str], rows: list[list[Any]], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    classes = row_classes or [""] * len(rows)
    body = "".join(
        f'<tr class="{_e(c)}">' + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
        for c, row in zip(classes, rows, strict=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(images: dict[str, str], name: str) -> str:
    return f'<img alt="{name}" src="data:image/png;base64,{images[name]}">'


def _png_base64(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _canvas(
    size: tuple[float, float], *, left: float, right: float, bottom: float, top: float
) -> tuple[Figure, Axes]:
    """A figure of ``size`` inches with one axes inside fixed margins (no layout engine)."""
    fig = Figure(figsize=size)
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
    return fig, fig.add_subplot()


_SQUARE: dict[str, Any] = {
    "size": (4.5, 4.5),
    "left": 0.15,
    "right": 0.96,
    "bottom": 0.12,
    "top": 0.92,
}


def _message_figure(title: str, message: str) -> Figure:
    fig = Figure(figsize=(6, 1.6))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, f"Not available: {message}", ha="center", va="center", wrap=True)
    return fig


def _e(value: Any) -> str:
    return html.escape(str(value))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f2f5; }}
img {{ max-width: 100%; margin: 0.5em 0; }}
.row {{ display: flex; gap: 1em; flex-wrap: wrap; }}
td {{ white-space: pre-line; }}
tr.critical td:first-child, .bad {{ color: #c0392b; font-weight: bold; }}
tr.warning td:first-child {{ color: #d68910; font-weight: bold; }}
tr.info td:first-child, .good {{ color: #1e8449; font-weight: bold; }}
.na {{ color: #666; font-style: italic; }}
</style></head>
<body>
{body}
</body></html>
"""
