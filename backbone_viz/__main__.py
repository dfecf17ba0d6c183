"""``python -m backbone_viz``: see :mod:`backbone_viz.cli`."""

import sys

from backbone_viz.cli import main

sys.exit(main())
