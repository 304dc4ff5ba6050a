"""Blue-green and canary renders pass the outside validators (kubernetes-validate --strict on
built-in kinds, checkov with zero failures and only the allowed skips) and the policy rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.rules import RuleContext, evaluate
from stackctl.render import stack as render_mod
from tests.release.helpers import RELEASE_VARIANTS
from tests.renders import Renders
from tests.test_validators import ALLOWED_CHECKOV_SKIPS
from tests.validators import (
    KUBERNETES_VERSIONS,
    RenderedTree,
    ValidatorBatch,
    builtin_manifests,
    render_set,
)

CONFIGS = RELEASE_VARIANTS

SET = "release"


@render_set(SET)
def write_release_renders(root: Path, renders: Renders) -> None:
    for name, raw in CONFIGS.items():
        render_mod.write(renders.config(raw, name), root / name)


@pytest.fixture(scope="module")
def rendered(renders: Renders) -> dict[str, render_mod.RenderResult]:
    return {name: renders.config(raw, name) for name, raw in CONFIGS.items()}


@pytest.fixture(scope="module")
def rendered_dir(rendered_tree: RenderedTree) -> Path:
    return rendered_tree / SET


@pytest.mark.parametrize("name", list(CONFIGS))
def test_release_renders_break_no_policy_rule_in_prod(
    rendered: dict[str, render_mod.RenderResult], name: str
) -> None:
    violations = evaluate(rendered[name].objects, RuleContext("prod"))
    assert violations == [], "\n".join(f"{v.rule} {v.obj}: {v.message}" for v in violations)


@pytest.mark.slow
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_release_renders_are_schema_valid(
    rendered_dir: Path, batch: ValidatorBatch, version: str
) -> None:
    files = builtin_manifests(rendered_dir)
    assert len(files) > 60
    kinds = {p.name.split("-")[0] for p in files}
    assert {"deployment", "service", "ingress", "poddisruptionbudget"} <= kinds
    run = batch.schema(version)
    assert set(files) <= set(run.files)
    assert run.problems(files) == ""


@pytest.mark.slow
def test_release_renders_have_zero_failed_checkov_checks_and_only_allowed_skips(
    batch: ValidatorBatch,
) -> None:
    report = batch.checkov(SET)
    assert report.parsing_errors == []
    assert report.failed == [], "\n".join(
        f"{f.check_id} {f.resource} {f.file}" for f in report.failed
    )
    assert report.passed > 100
    for finding in report.skipped:
        kind = finding.resource.split(".")[0]
        assert (finding.check_id, kind) in ALLOWED_CHECKOV_SKIPS, finding
        assert len(finding.reason) > 20, finding


def test_a_digest_pinned_colour_needs_no_scanner_skip_and_a_tag_names_its_key(
    rendered: dict[str, render_mod.RenderResult],
) -> None:
    objects = rendered["blue-green-fixed"].objects
    by_name = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert not any(
        key.startswith("checkov.io/")
        for key in by_name["web-blue"]["metadata"].get("annotations", {})
    )
    skip = by_name["web-green"]["metadata"]["annotations"]["checkov.io/skip1"]
    assert skip.startswith("CKV_K8S_43=") and "appstack:apps.web.release.greenImage" in skip
