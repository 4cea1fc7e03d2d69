"""Two concurrent read-modify-write clients of one pointer (tests of ``AtomicStore.swap_pointer``)."""

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
