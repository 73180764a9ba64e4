"""``python -m loxone_trio_exporter`` runs the command line."""

import sys

from .cli import main

sys.exit(main())
