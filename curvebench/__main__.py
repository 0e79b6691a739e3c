"""``python -m curvebench ...`` is the ``curvebench`` console script."""

import sys

from curvebench.cli import main

sys.exit(main())
