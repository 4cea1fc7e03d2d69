"""Concurrent writers: of one pointer (``AtomicStore.swap_pointer``), of one registry (its index
and its champion) and of the prediction store."""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pandas as pd
import pytest
import yaml
from kedro.io import DatasetError

from readmit_kedro.io.atomic import AtomicStore, ConcurrentUpdateError
from tests.conftest import PROJECT_ROOT


def _increment_until_done(store: AtomicStore, pointer: str, times: int, errors: list) -> None:
    """A read-modify-write client: retries on conflict, as an Airflow retry would."""
    try:
        done = 0
        while done < times:
            try:
                held = store.read_bytes(pointer).decode()
            except FileNotFoundError:
                held = None
            try:
                store.swap_pointer(pointer, held, str(int(held or 0) + 1))
                done += 1
            except ConcurrentUpdateError:
                continue
    except Exception as exc:  # surfaced by the test thread's caller
        errors.append(exc)


def assert_two_writers_lose_nothing(root: str, options: dict) -> None:
    """Each of two writers adds 1 to a pointer 15 times, concurrently: the result must be 30."""
    stores = [AtomicStore(root, options) for _ in range(2)]
    pointer = stores[0].path("_LATEST")
    errors: list = []
    threads = [
        threading.Thread(target=_increment_until_done, args=(s, pointer, 15, errors))
        for s in stores
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert stores[0].read_bytes(pointer).decode() == "30"


def assert_concurrent_registrations_kept(registry, per_writer: int = 4) -> None:
    """Two threads register ``per_writer`` models each into one algorithm at once: every record
    is in the index afterwards, and ``latest`` names the newest version."""
    from sklearn.dummy import DummyClassifier

    errors: list = []

    def register(seed: int) -> None:
        try:
            for i in range(per_writer):
                model = DummyClassifier(constant=seed, strategy="constant")
                registry.register(
                    "logistic_regression", model, metrics={"roc_auc": 0.5}, metadata={"i": i}
                )
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(seed,)) for seed in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    versions = [r["version"] for r in registry.list_versions("logistic_regression")]
    assert len(versions) == len(set(versions)) == 2 * per_writer
    assert registry.record("logistic_regression")["version"] == max(versions)


# ---------------------------------------------------------------------------- prediction store
# Written against the pipeline's public pieces only (the node and the catalog's dataset types),
# so the same checks run on the implementation before the store was compare-and-swap.


def prediction_store_entries(path: str, options: dict) -> tuple[Any, Any]:
    """The catalog's two entries of the prediction store (conf/base/catalog_inference.yml) on
    ``path``: the one the publishing node reads and the one it saves."""
    from kedro.io import DataCatalog

    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_inference.yml").read_text())
    names = ("inference_prediction_store", "inference_prediction_store_updated")
    config = {n: {"type": catalog[n]["type"], "path": path, "fs_args": options} for n in names}
    built = DataCatalog.from_config(config)
    return built[names[0]], built[names[1]]


def predictions(run_date: str, ids: list[int]) -> pd.DataFrame:
    """Prediction rows of one run for the encounters ``ids``."""
    from readmit_kedro.io.predictions import as_prediction_table
    from readmit_kedro.schema import PREDICTION_COLUMNS

    values = {
        "encounter_id": ids, "patient_nbr": ids, "admission_date": pd.Timestamp(run_date),
        "probability": 0.25, "predicted_label": 0, "risk_band": "low",
        "probability_lower": float("nan"), "probability_upper": float("nan"),
        "model_algorithm": "logistic_regression", "model_version": "v20080101T000000000000Z",
        "model_sha256": "0" * 64, "run_date": run_date, "scored_at": f"{run_date}T00:00:00+00:00",
    }  # fmt: skip
    return as_prediction_table(pd.DataFrame({c: values[c] for c in PREDICTION_COLUMNS}))


class _PublishTask:
    """One inference run's publish task: reads the store, runs the node, then (``save``) writes."""

    def __init__(self, entries: tuple[Any, Any], run_date: str, ids: list[int]) -> None:
        from readmit_kedro.pipelines.inference.nodes import publish_predictions

        self._out = entries[1]
        rows = predictions(run_date, ids)
        self.output, self.signal = publish_predictions(
            {f"predictions_{run_date}": lambda: rows}, entries[0].load(), run_date
        )

    def save(self) -> None:
        self._out.save(self.output)


def _encounters(table: pd.DataFrame) -> dict[str, list[int]]:
    return {d: sorted(g["encounter_id"]) for d, g in table.groupby("run_date")}


def assert_overlapping_publications_both_land(path: str, options: dict) -> None:
    """Two runs (two backfilled dates) read the store, then publish one after the other: the
    later save keeps the earlier run's rows; re-running a date changes nothing."""
    entries = prediction_store_entries(path, options)
    _PublishTask(entries, "2008-06-01", [1, 2]).save()
    first, second = (
        _PublishTask(entries, "2008-06-02", [3, 4]),
        _PublishTask(entries, "2008-06-03", [5, 6]),
    )  # both computed from the same store
    first.save()
    second.save()
    store = entries[0].load()
    expected = {"2008-06-01": [1, 2], "2008-06-02": [3, 4], "2008-06-03": [5, 6]}
    assert _encounters(store) == expected
    assert not store["encounter_id"].duplicated().any()
    assert list(store["encounter_id"]) == [1, 2, 3, 4, 5, 6]  # sorted by (run_date, encounter)
    _PublishTask(entries, "2008-06-02", [3, 4]).save()  # a re-run of a date
    pd.testing.assert_frame_equal(entries[0].load(), store)


def assert_a_clashing_publication_is_refused(path: str, options: dict) -> None:
    """Two runs scored encounters 3 and 4 (both read the store before either published): the
    later save is refused (Kedro wraps the error) and the store stays as the first run left it."""
    entries = prediction_store_entries(path, options)
    _PublishTask(entries, "2008-06-01", [1, 2]).save()
    first = _PublishTask(entries, "2008-06-02", [3, 4])
    second = _PublishTask(entries, "2008-06-03", [3, 4, 5])
    first.save()
    left = entries[0].load()
    with pytest.raises(DatasetError, match="2 encounters of this run were predicted by") as error:
        second.save()
    assert isinstance(error.value.__cause__, ConcurrentUpdateError)  # retry: re-run the date
    pd.testing.assert_frame_equal(entries[0].load(), left)
    assert _encounters(left) == {"2008-06-01": [1, 2], "2008-06-02": [3, 4]}


def assert_concurrent_publications_lose_nothing(path: str, options: dict, per_writer: int) -> None:
    """Two threads publish ``per_writer`` dates each (their own encounters) at once: every row
    lands once."""
    entries = prediction_store_entries(path, options)
    start, errors = threading.Barrier(2), []

    def publish(writer: int) -> None:
        try:
            start.wait()
            for i in range(per_writer):
                ids = [1000 * writer + 10 * i + k for k in range(3)]
                _PublishTask(entries, f"2008-0{writer + 1}-{i + 1:02d}", ids).save()
        except Exception as exc:
            errors.append(exc)

    _run_threads(publish, (0, 1))
    assert not errors, errors
    store = entries[0].load()
    assert len(store) == 2 * 3 * per_writer and not store["encounter_id"].duplicated().any()


def _run_threads(target: Callable[[int], None], args: tuple[int, ...]) -> None:
    threads = [threading.Thread(target=target, args=(a,)) for a in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)


# ------------------------------------------------------------------------------ champion pointer


class _SlowSigner:
    """A signing key whose next champion signature first lets ``meanwhile`` run: another run
    changes the champion after this one read it and before it writes."""

    def __init__(self, key: Any, meanwhile: Callable[[], Any]) -> None:
        self._key, self._meanwhile = key, meanwhile

    def sign(self, purpose: str, record: Any) -> dict:
        from readmit_kedro.io.registry import CHAMPION_PURPOSE

        if purpose == CHAMPION_PURPOSE and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return self._key.sign(purpose, record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)


def _versions(registry, count: int) -> list[str]:
    from sklearn.dummy import DummyClassifier

    return [
        registry.register(
            "logistic_regression",
            DummyClassifier(strategy="constant", constant=i % 2),
            metrics={"roc_auc": 0.5},
            metadata={"i": i},
        )["version"]
        for i in range(count)
    ]


def assert_history_is_one_chain(registry) -> None:
    """Every champion change was computed from the change just before it, and the pointer is the
    last one: what compare-and-swap of the champion guarantees."""
    history = sorted(registry.history(), key=lambda h: h["history_id"])
    for before, change in pairwise(history):
        computed_from = change.get("rolled_back_from") or change["previous"]
        assert computed_from == before["history_id"], (before, change)
    assert registry.champion()["history_id"] == history[-1]["history_id"]


def assert_a_promotion_in_between_is_kept(make_registry: Callable[[], Any]) -> None:
    """Two promotions computed from the same champion: the later one is refused, the one that
    landed stays champion, and history and pointer agree."""
    mine, other = make_registry(), make_registry()
    v1, v2, v3 = _versions(mine, 3)
    mine.promote("logistic_regression", v1, "first")
    mine.signing = _SlowSigner(
        mine.signing, lambda: other.promote("logistic_regression", v3, "other run")
    )
    with pytest.raises(ConcurrentUpdateError, match=r"champion .* changed while"):
        mine.promote("logistic_regression", v2, "this run")
    assert other.champion()["version"] == v3
    assert [h["version"] for h in sorted(other.history(), key=lambda h: h["history_id"])] == [
        v1, v3
    ]  # fmt: skip
    assert_history_is_one_chain(other)


def assert_a_rollback_of_a_superseded_champion_is_refused(make_registry: Callable[[], Any]) -> None:
    """A rollback computed from champion v2 (back to v1) while another run promotes v3: applied,
    it would silently undo v3. It is refused and v3 stays champion."""
    mine, other = make_registry(), make_registry()
    v1, v2, v3 = _versions(mine, 3)
    mine.promote("logistic_regression", v1, "first")
    mine.promote("logistic_regression", v2, "second")
    mine.signing = _SlowSigner(
        mine.signing, lambda: other.promote("logistic_regression", v3, "other run")
    )
    with pytest.raises(ConcurrentUpdateError, match=r"champion .* changed while"):
        mine.rollback("v2 misbehaves")
    assert other.champion()["version"] == v3
    assert other.rollback("undo v3")["version"] == v2  # rolling back v3 restores v2, as it should
    assert_history_is_one_chain(other)


def assert_concurrent_champion_changes_keep_one_history(
    make_registry: Callable[[], Any], per_writer: int = 4
) -> None:
    """Two threads change the champion ``per_writer`` times each (promotions; one also rolls
    back), retrying when the other got there first, as an Airflow retry or an operator would."""
    registries = [make_registry(), make_registry()]
    versions = _versions(registries[0], 4)
    registries[0].promote("logistic_regression", versions[0], "first")
    start, errors = threading.Barrier(2), []

    def change(writer: int) -> None:
        registry = registries[writer]
        try:
            start.wait()
            for i in range(per_writer):
                while True:
                    try:
                        if writer and i % 2:
                            registry.rollback(f"rollback {i}")
                        else:
                            version = versions[(writer + i) % len(versions)]
                            registry.promote("logistic_regression", version, f"{writer}/{i}")
                        break
                    except ConcurrentUpdateError:
                        continue
        except Exception as exc:
            errors.append(exc)

    _run_threads(change, (0, 1))
    assert not errors, errors
    assert len(registries[0].history()) == 1 + 2 * per_writer
    assert_history_is_one_chain(registries[0])


def assert_a_training_decision_against_a_replaced_champion_is_refused(
    make_registry: Callable[[], Any],
) -> None:
    """A training run compares its challengers with champion v1 and decides (to promote v2, or to
    keep v1); meanwhile an operator promotes v3. Saving the decision would undo that promotion:
    it is refused, and v3 stays champion."""
    from readmit_kedro.io.model_store import ChampionDataset

    operator = make_registry()
    v1, v2, v3 = _versions(operator, 3)
    compared = operator.promote("logistic_regression", v1, "first")["history_id"]
    operator.promote("logistic_regression", v3, "manual")
    training = ChampionDataset(path=operator.root, signing=operator.signing)
    for version in (v2, v1):  # a promotion, then a kept champion
        decision = {"algorithm": "logistic_regression", "version": version, "reason": "training"}
        with pytest.raises(DatasetError, match="not made champion"):
            training.save({**decision, "replaces": compared})
    assert operator.champion()["version"] == v3 and len(operator.history()) == 2
