import sys

from .frontends.cli.main import main

sys.exit(main())
