"""``python -m soru``: the same as the ``soru`` command."""

import sys

from soru.cli import main

sys.exit(main())
