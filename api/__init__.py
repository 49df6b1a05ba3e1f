"""TrustLedger HTTP API: requests become commands, queries go to the read side."""
