"""`python -m terminal`: the same as `tingshen terminal`."""

import sys

from terminal.app import main

sys.exit(main())
