"""TrustLedger read side: rulebook scoring, pure folds, views and runners."""
