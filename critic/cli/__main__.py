import sys

from critic.cli.main import main

sys.exit(main())
