"""Projection: from measured anchors, decode and prompt throughput on every chip in the database, with held-out intervals."""
