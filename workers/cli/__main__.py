"""`python -m workers.cli ...` is `eventguard ...`: how tests and the dev stack start
processes with the interpreter that runs them, console script or not."""

import sys

from workers.cli.main import main

# Faust's autodiscovery imports every module of the `workers` package; only a run
# as a program may parse the command line.
if __name__ == "__main__":
    sys.exit(main())
