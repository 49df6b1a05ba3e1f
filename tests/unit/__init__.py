"""Unit tests: the rules, decided by LedgerApp and folded by the pure figure functions.

Tests that take the ``market`` or ``database_url`` fixture run on every backend
unless ``--backend`` narrows them (``make test-fast``: memory only).
"""
