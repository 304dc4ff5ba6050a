"""Entry point: `python -m stackctl <command> ...`."""

from stackctl.cli import main

raise SystemExit(main())
