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
