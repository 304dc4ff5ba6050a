"""Argument parsing and dispatch. Each command module exposes `register(subparsers)`.

A command handler returns an exit code. `UserError` (exit 2) and `OperationFailed` (exit 1)
become one readable line on stderr; no traceback reaches the operator.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from stackctl.errors import OperationFailed, UserError

# Modules that add subcommands; each defines `register(subparsers) -> None` and sets
# `handler=<callable(args) -> int>` on the parsers it adds.
COMMAND_MODULES: tuple[str, ...] = (
    "stackctl.render.stack",
    "stackctl.check",
    "stackctl.ops.deploy",
    "stackctl.diff.cmd",
    "stackctl.ops.verify",
    "stackctl.ops.prune",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stackctl",
        description="Operate appstack stacks: render, check, diff, deploy, verify, history, "
        "rollback, registry prune.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command module not present in this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OperationFailed as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
