"""``python -m app.server``: run the service (`app.server.main`)."""

import sys

from app.server import main

sys.exit(main())
