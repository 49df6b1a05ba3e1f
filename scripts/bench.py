"""Run the benchmarks: `python scripts/bench.py [--quick]` (the same as `trustledger bench`)."""

import sys

from tools.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
