"""``python -m purenn``: the ``purenn`` command."""

import sys

from purenn.cli import main

sys.exit(main())
