"""``python -m cryptosweep`` is the ``cryptosweep`` command."""

import sys

from cryptosweep.cli import main

sys.exit(main())
