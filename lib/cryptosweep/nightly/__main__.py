"""``python -m cryptosweep.nightly [CONFIG]``: the nightly job (:mod:`.pipeline`)."""

import sys

from cryptosweep.nightly.pipeline import main

sys.exit(main())
