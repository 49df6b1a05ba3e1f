"""Run the benchmarks: `python scripts/bench.py [--quick] [--postgres URL] [--only SECTION ...] [--out DIR]`.

The same as `trustledger bench`: on scratch SQLite files, or on the PostgreSQL
server that `--postgres` names; `--only big_sellers` runs the big-seller section alone.
"""

import sys

from tools.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
