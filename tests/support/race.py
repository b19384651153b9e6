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
