"""``python -m energy``: see :mod:`energy.cli`."""

import sys

from .cli import main

sys.exit(main())
