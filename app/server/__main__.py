"""``python -m app.server``: run the service until SIGTERM/SIGINT (app/server/lifecycle.py)."""

import sys

from app.server.lifecycle import main

sys.exit(main())
