"""Entry point: `python -m stackctl <command> ...`."""

import os

#: gRPC's fork support (grpcio, which pulumi imports) restarts its poller in every child of a
#: fork(); a child that closes its inherited descriptors before exec can then fail with EBADF
#: and die before it runs ("epoll_wait error: Bad file descriptor", grpc/grpc issue #43055 and
#: PR #43157; it failed `pulumi preview`s of make e2e-failure and make e2e-app). The CLI is
#: started by vfork, which runs no handler (stackctl/ops/engine.py); this guards any other
#: fork in the process. stackctl keeps no gRPC state across a fork: off, before anything
#: imports grpc (tests/ops/test_engine_fork.py).
GRPC_FORK_SUPPORT = ("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault(*GRPC_FORK_SUPPORT)

from stackctl.cli import main  # noqa: E402 (after the setting above)

raise SystemExit(main())
