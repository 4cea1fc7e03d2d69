"""The scoring part of a request, scikit-learn's path against the compiled one, interleaved.

    .venv/bin/python -m benchmarks.bench_compiled [--reps 200] [--seed 0]

Per round, on the same gold feature rows (1, then 1,000): scikit-learn's path as the service ran
it before ``model/compiled.py`` (the calibrated bundle's ``predict_with_interval``, then the
preprocessor's ``transform`` again and a default DMatrix for TreeSHAP), then the compiled path
(encode once; score, interval and TreeSHAP from that matrix). Rounds alternate, so a shared
machine's load weighs on both alike; the outputs are checked equal first. The champion is an
xgboost of 300 trees of depth 5 (bench_serve's shape), calibrated, on gold-like rows.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import xgboost as xgb
from sklearn.pipeline import Pipeline

from readmit_kedro.model.calibration import calibrate
from readmit_kedro.model.compiled import CompiledBundle
from readmit_kedro.model.explain import TreeExplainer
from readmit_kedro.pipelines.training.preprocessing import fit_preprocessor, join_gold
from readmit_kedro.schema import FEATURE_COLUMNS, TARGET
from tests.support.gold import make_gold_like


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="rounds of one row (1,000 rows: 5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    gold = join_gold(*make_gold_like(12_000, seed=args.seed))
    train, rest = gold.iloc[:8_000], gold.iloc[8_000:]
    preprocessor = fit_preprocessor(
        train, {"rare_category_min_frequency": 0.005}, feature_selection=False, seed=0
    )
    model = xgb.XGBClassifier(n_estimators=300, max_depth=5, n_jobs=1, random_state=0)
    model.fit(preprocessor.transform(train[list(FEATURE_COLUMNS)]), train[TARGET])
    bundle = calibrate(
        Pipeline([("preprocess", preprocessor), ("model", model)]), rest, rest[TARGET].to_numpy()
    )
    split, explainer = CompiledBundle.of(bundle), TreeExplainer.of(bundle)

    def sklearn_path(rows):
        scores = bundle.predict_with_interval(rows)
        encoded = np.asarray(preprocessor.transform(rows), dtype=np.float64)
        matrix = xgb.DMatrix(encoded, missing=model.missing)
        return scores, model.get_booster().predict(matrix, pred_contribs=True)

    def compiled_path(rows):
        encoded = split.encode(rows)
        return split.scores(encoded, with_intervals=True), explainer.contributions(encoded)

    for n, reps in ((1, args.reps), (1_000, 5)):
        rows = rest[list(FEATURE_COLUMNS)].iloc[:n]
        (before, contributions), (after, same) = sklearn_path(rows), compiled_path(rows)
        assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        assert np.array_equal(contributions, same)
        times: dict[str, list[float]] = {"scikit-learn": [], "compiled": []}
        for _ in range(reps):
            for name, path in (("scikit-learn", sklearn_path), ("compiled", compiled_path)):
                started = time.perf_counter()
                path(rows)
                times[name].append((time.perf_counter() - started) * 1000)
        print(
            f"{n} row(s), score + interval + TreeSHAP: "
            + "; ".join(
                f"{name} median {np.median(t):.1f} ms, p99 {np.percentile(t, 99):.1f} ms"
                for name, t in times.items()
            )
            + f" (same outputs; load average {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
