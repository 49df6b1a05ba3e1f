"""TrustLedger write side: events, aggregates, the event store application, codec."""
