"""Business logic as plain functions over a session: no Flask request objects, no commits."""
