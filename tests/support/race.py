"""Requests released at the same instant, each from its own thread and test client."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask


def race(app: Flask, calls: Sequence[Callable[[Any], Any]]) -> list[Any]:
    """Run every ``call(client)`` in its own thread, all released together; their results in order."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[Any], Any]) -> None:
        client = app.test_client()
        start.wait()
        results[i] = call(client)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def in_app_threads(app: Flask, work: Callable[[], Any], n: int = 2) -> list[Any]:
    """Run ``work()`` in ``n`` threads at once, each in its own app context (for commands and
    services rather than requests); each thread's result, or the exception it raised."""
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        with app.app_context():
            try:
                results[i] = work()
            except BaseException as exc:  # what the caller would have seen
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
