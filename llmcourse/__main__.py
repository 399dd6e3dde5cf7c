"""``python -m llmcourse`` runs the command-line interface."""

import sys

from llmcourse.cli import main

sys.exit(main())
