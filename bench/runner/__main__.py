"""`python -m bench.runner` (what bench/run runs): see bench/runner/cli.py."""

import sys

from bench.runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
