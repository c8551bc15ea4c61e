"""`python -m numpy_distilbert ...`: the command line (see `numpy_distilbert.cli`)."""

import sys

from numpy_distilbert.cli import main

sys.exit(main())
