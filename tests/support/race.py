"""Concurrent writers: of one pointer (``AtomicStore.swap_pointer``) and of one registry."""

from __future__ import annotations

import threading

from readmit_kedro.io.atomic import AtomicStore, ConcurrentUpdateError


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
