"""`python -m brogue ...` is the `brogue` command."""

import sys

from brogue.main import main

sys.exit(main())
