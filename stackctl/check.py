"""`python -m stackctl check <stack>`: render a stack and judge it with the policy rules.

The rules are the same functions the CrossGuard pack runs (`policy.rules`), with the same
enforcement levels (`policy/config/<environment>.json`). One line per violation
(`LEVEL  rule  Kind/ns/name: message`), then a summary; exit 1 if any violation is mandatory.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy.enforcement import Level, load_levels
from policy.rules import RULES, RuleContext, Violation, evaluate
from stackctl.errors import OperationFailed, UserError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Finding:
    level: Level
    violation: Violation

    def line(self) -> str:
        v = self.violation
        return f"{self.level.upper():<9}  {v.rule}  {v.obj}: {v.message}"


@dataclass(frozen=True)
class CheckReport:
    environment: str
    object_count: int
    findings: tuple[Finding, ...]

    @property
    def mandatory(self) -> int:
        return sum(1 for f in self.findings if f.level == "mandatory")

    @property
    def advisory(self) -> int:
        return sum(1 for f in self.findings if f.level == "advisory")

    @property
    def failed(self) -> bool:
        return self.mandatory > 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        return (
            f"{self.mandatory} mandatory, {self.advisory} advisory violations over "
            f"{self.object_count} objects"
        )

    def render_text(self) -> str:
        lines = [f.line() for f in self.findings]
        lines.append(self.summary())
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "objects": self.object_count,
            "mandatory": self.mandatory,
            "advisory": self.advisory,
            "failed": self.failed,
            "violations": [
                {
                    "level": f.level,
                    "rule": f.violation.rule,
                    "object": f.violation.obj,
                    "message": f.violation.message,
                }
                for f in self.findings
            ],
        }


def check_objects(
    objects: Sequence[Mapping[str, Any]],
    environment: str,
    levels: Mapping[str, Level] | None = None,
) -> CheckReport:
    """Judge rendered objects as `environment`; levels default to the pack config for it.

    Disabled rules are not run. Mandatory findings come first, then advisory, each in rule order.
    """
    if levels is None:
        levels = load_levels(environment)
    rules = [rule for rule in RULES if levels.get(rule.name, "advisory") != "disabled"]
    violations = evaluate(objects, RuleContext(environment), rules)
    findings = [Finding(levels.get(v.rule, "advisory"), v) for v in violations]
    findings.sort(key=lambda f: 0 if f.level == "mandatory" else 1)
    return CheckReport(environment, len(objects), tuple(findings))


def run(args: argparse.Namespace) -> int:
    from stackctl.render.stack import render_stack  # lazy: render is optional for this module

    result = render_stack(args.stack, Path(args.project_dir))
    try:
        report = check_objects(result.objects, result.environment)
    except ValueError as exc:  # unknown environment, broken pack config
        raise UserError(f"{args.stack}: {exc}") from exc
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        print(report.render_text(), end="")
    if report.failed:
        raise OperationFailed(f"stack {args.stack} ({report.environment}): {report.summary()}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="render a stack and check it against the policy rules",
        description="Render a stack and check every object against the policy rules, with the "
        "enforcement levels of policy/config/<environment>.json. Exit 1 on any mandatory "
        "violation.",
    )
    parser.add_argument("stack", help="stack name (Pulumi.<stack>.yaml), e.g. dev, staging or prod")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=REPO_ROOT,
        help="directory holding Pulumi.yaml (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)
