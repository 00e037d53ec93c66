"""`python -m mlops_local.cli`."""

import sys

from mlops_local.cli import main

sys.exit(main())
