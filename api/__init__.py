"""TrustLedger HTTP API (issue 4)."""
