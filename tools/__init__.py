"""TrustLedger operator tools: the `trustledger` command, the simulator, the demo story and the benchmarks."""
