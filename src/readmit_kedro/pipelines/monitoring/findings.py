"""Every breached threshold of a run as one finding: the retrain decision and the alerts share them.

A finding says what breached and by how much (the text goes verbatim into the retrain signal's
``reasons`` and into alert messages), its severity, and whether it argues for retraining. Missing
rates and an unevaluated window alert but do not: the fix there is the data feed, and retraining
on a broken feed would bake the breakage into the next champion.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Finding(TypedDict):
    kind: str  # concept_drift | metric_shift | data_drift | score_drift | missing_rate | not_evaluated
    #            | data_quality | importance_shift
    severity: str  # critical | warning
    reason: str
    retrain: bool


def list_findings(
    performance: dict[str, Any], drift: dict[str, Any], threshold: float
) -> list[Finding]:
    """The breaches in ``performance`` and ``drift``, in a stable order (for stable reports).

    ``threshold`` is ``drift_threshold_psi``, quoted in the drift findings' reasons.
    """
    findings: list[Finding] = []
    for breach in performance["concept_drift"]["breaches"]:
        direction = "above" if breach["current"] > breach["champion"] else "below"
        kind = "concept_drift" if breach["retrain"] else "metric_shift"
        findings.append(
            Finding(
                kind=kind,
                severity=breach["severity"],
                reason=(
                    f"{kind.replace('_', ' ')}: {breach['metric']} {breach['current']:.3f} is "
                    f"{breach['drop']:.3f} {direction} the champion's {breach['champion']:.3f} "
                    f"(threshold {breach['threshold']})"
                    + (
                        ""
                        if breach.get("significant", True)
                        else f"; not significant: the champion's value is inside this window's "
                        f"{breach['interval']['level']:.0%} interval [{breach['interval']['low']:.3f}, "
                        f"{breach['interval']['high']:.3f}]"
                    )
                ),
                retrain=breach["retrain"],
            )
        )
    if not drift["available"]:
        findings.append(
            Finding(
                kind="not_evaluated",
                severity="warning",
                reason=f"drift not evaluated: {drift['reason']}",
                retrain=False,
            )
        )
        return findings
    for name, entry in drift["features"].items():
        if entry["drift"]:
            findings.append(_psi_finding("data_drift", f"feature {name}", entry["psi"], threshold))
    if drift["score"]["drift"]:
        findings.append(
            _psi_finding("score_drift", "the predicted scores", drift["score"]["psi"], threshold)
        )
    for name, entry in drift["features"].items():
        if entry["missing_breach"]:
            rate, limit = entry["missing_rate"], entry["missing_rate_limit"]
            findings.append(
                Finding(
                    kind="missing_rate",
                    severity="warning",
                    reason=(
                        f"missing rate of {name} {rate:.1%} > limit {limit:.1%} "
                        f"(by {rate - limit:.1%}; reference {entry['reference_missing_rate']:.1%})"
                    ),
                    retrain=False,
                )
            )
    return findings


def data_quality_findings(data_quality: dict[str, Any]) -> list[Finding]:
    """Warnings of the last data_processing run's quality report (its ordering checks).

    They alert but never argue for retraining: the fix is upstream (the stand-in encounter order),
    and a retrain would learn from the same data.
    """
    return [
        Finding(kind="data_quality", severity="warning", reason=warning, retrain=False)
        for warning in data_quality.get("ordering_warnings", [])
    ]


def importance_findings(importance: dict[str, Any]) -> list[Finding]:
    """A warning when the top features' ranking moved between the last two periods.

    It never argues for retraining by itself: the model may rank features differently on a new
    population and still perform; the performance and drift findings decide.
    """
    change = importance.get("ranking_change") if importance["available"] else None
    if not change or not change["changed"]:
        return []
    moves = ", ".join(
        f"{m['feature']} {m['previous_rank']} -> {m['current_rank']}" for m in change["moves"]
    )
    reason = (
        f"feature importance ranking changed (mean |SHAP|, periods ending {change['previous']} "
        f"and {change['current']}; top {change['top_features']}, moves of "
        f"{change['min_rank_shift']}+ places): {moves}"
    )
    return [Finding(kind="importance_shift", severity="warning", reason=reason, retrain=False)]


def _psi_finding(kind: str, subject: str, value: float, threshold: float) -> Finding:
    return Finding(
        kind=kind,
        severity="warning",
        reason=f"{kind.replace('_', ' ')}: PSI of {subject} {value:.3f} > {threshold} "
        f"(by {value - threshold:.3f})",
        retrain=True,
    )
