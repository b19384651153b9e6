"""Watching the statements the app sends, and the state of the pool after them."""

from __future__ import annotations


class Statements:
    """Each statement the app sends, with whether its connection was in autocommit. On
    PostgreSQL it watches the driver's cursors, so statements sent past SQLAlchemy count too."""

    def __init__(self, app, backend):
        import psycopg

        from rapportnotes.extensions import db

        with app.app_context():
            self.engine = db.engine
        self.backend, self.seen, self.real = backend, [], psycopg.Cursor.execute

    def _spy(self, conn, cursor, statement, params, context, executemany):
        self.seen.append((statement.split()[0].upper(), None))

    def __enter__(self):
        if self.backend == "postgresql":
            import psycopg

            real, seen = self.real, self.seen

            def execute(cur, query, *args, **kwargs):
                seen.append((str(query).split()[0].upper(), cur.connection.autocommit))
                return real(cur, query, *args, **kwargs)

            psycopg.Cursor.execute = execute
        else:
            from sqlalchemy import event

            event.listen(self.engine, "before_cursor_execute", self._spy)
        return self.seen

    def __exit__(self, *exc):
        if self.backend == "postgresql":
            import psycopg

            psycopg.Cursor.execute = self.real
        else:
            from sqlalchemy import event

            event.remove(self.engine, "before_cursor_execute", self._spy)


def assert_pool_back_in_transactions(app):
    """Every pooled connection is back to transactions, ready for the next request."""
    from rapportnotes.extensions import db

    with app.app_context():
        pool = db.engine.pool
    held = [pool.connect() for _ in range(max(pool.checkedin(), 1))]
    try:
        assert not any(getattr(c.driver_connection, "autocommit", False) for c in held)
    finally:
        for c in held:
            c.close()


def analyze_and_capture(app, client, url: str, headers: dict, table: str) -> tuple[str, object]:
    """ANALYZE ``table``, GET ``url``, and return the first SELECT from ``table`` that the request
    sent, with its parameters (to EXPLAIN it as the app ran it)."""
    from sqlalchemy import event, text

    from rapportnotes.extensions import db

    with app.app_context():
        db.session.execute(text(f"ANALYZE {table}"))
        db.session.commit()
        engine = db.engine
    seen = []

    def spy(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", spy)
    try:
        assert client.get(url, headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    return seen[0]


def plan_nodes(node: dict):
    """Every node of a PostgreSQL JSON plan, depth first."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def assert_deep_page_starts_at_its_cursor(app, client, url: str, headers: dict, table: str) -> None:
    """PostgreSQL: after ANALYZE of ``table``, walk five pages of ``url`` (which sets ``limit``),
    then EXPLAIN ANALYZE the listing statement of the sixth: its scan must start at the cursor
    (at most the cursor's own row discarded) and read in index order (no sort)."""
    import json

    from rapportnotes.extensions import db

    page = url
    for _ in range(5):
        body = client.get(page, headers=headers).get_json()
        page = f"{url}&cursor={body['next_cursor']}"
    statement, params = analyze_and_capture(app, client, page, headers, table)
    with app.app_context(), db.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params).scalar()
        conn.rollback()
    shown = json.dumps(plan, indent=1)
    assert sum(n.get("Rows Removed by Filter", 0) for n in plan_nodes(plan[0]["Plan"])) <= 1, shown
    assert not any("Sort" in n["Node Type"] for n in plan_nodes(plan[0]["Plan"])), shown
