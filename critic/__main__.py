"""``python -m critic``: the ``critic`` command, for environments where the console script is not on PATH."""

import sys

from critic.cli.main import main

sys.exit(main())
