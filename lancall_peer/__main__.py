"""`python -m lancall_peer`: the Python peer's command line (lancall_peer/peer.py)."""

import sys

from lancall_peer.peer import main

sys.exit(main())
