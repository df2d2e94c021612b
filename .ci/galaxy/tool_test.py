#!/usr/bin/env python3
"""Galaxy's `galaxy-tool-test`, polling the server once a second instead of four times.

Run with the Galaxy virtual environment's Python, with galaxy-tool-test's arguments:

    .ci/galaxy/venv/bin/python .ci/galaxy/tool_test.py -u URL -k KEY -a ADMIN_KEY -t TOOL ...

galaxy-tool-test waits for every upload and tool job by asking for the job's state every 0.25 s
(galaxy.util.wait's default, not an option of the script). With one runner per tool, the six
runners of tests/test_galaxy.py sent Galaxy about 24 requests a second: 19,500 requests of about
14 ms CPU each in one run, a quarter of the run's CPU time on a two-core machine (3,300 requests
at one a second). This module changes only that interval
(NESSCAN_GALAXY_POLL seconds, default 1) and then runs galaxy-tool-test's own main(): test
selection, staging, assertions and the JSON report are Galaxy's.
"""

from __future__ import annotations

import functools
import os
import sys

from galaxy.tool_util.verify import interactor
from galaxy.tool_util.verify.script import main

POLL_SECONDS = float(os.environ.get("NESSCAN_GALAXY_POLL", "1"))

interactor.wait_on = functools.partial(interactor.wait_on, delta=POLL_SECONDS)

if __name__ == "__main__":
    sys.exit(main())
