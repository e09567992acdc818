"""`python -m workers.cli ...` is `eventguard ...`: how tests and the dev stack start
processes with the interpreter that runs them, console script or not."""

import sys

from workers.cli.main import main

sys.exit(main())
