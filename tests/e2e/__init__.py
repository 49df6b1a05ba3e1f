"""End-to-end tests: the HTTP API and the ``trustledger`` command, driven as their users drive them."""
