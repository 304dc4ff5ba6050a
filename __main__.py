"""appstack: the Pulumi program. Load typed config, deploy the stack, export its outputs."""

import sys

from components import config, pulumi_config
from components.stack import deploy

try:
    cfg = config.load(pulumi_config.raw_from_engine())
except config.ConfigError as exc:
    # One line per problem; the engine shows stderr without a Python traceback for SystemExit.
    print(exc, file=sys.stderr)
    sys.exit(2)

deploy(cfg).export()
