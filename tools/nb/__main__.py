"""``python -m tools.nb ...``: see :mod:`tools.nb.cli` for the commands."""

import sys

from tools.nb.cli import main

sys.exit(main())
