"""Entry point: `python -m stackctl <command> ...`."""

import os

#: gRPC's fork support (grpcio, which pulumi imports) restarts its poller in every child
#: stackctl forks to run the CLI; the child closes its inherited descriptors before exec, so
#: that poller can fail with EBADF and kill the child before the CLI runs ("epoll_wait error:
#: Bad file descriptor", grpc/grpc issue #43055 and PR #43157; it failed a `pulumi preview` of
#: `make e2e-failure` twice in one run). stackctl keeps no gRPC state across a fork: off, before
#: anything imports grpc (tests/ops/test_engine_fork.py).
GRPC_FORK_SUPPORT = ("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault(*GRPC_FORK_SUPPORT)

from stackctl.cli import main  # noqa: E402 (after the setting above)

raise SystemExit(main())
