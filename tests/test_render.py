"""`python -m stackctl render`: deterministic output, redaction, atomic writes, clean errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackctl.errors import UserError
from stackctl.render import stack as render_mod
from tests.tooling import REPO, SHIPPED_STACKS


def stackctl(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's stack files in a scratch directory."""
    for name in ("Pulumi.yaml", *(f"Pulumi.{stack}.yaml" for stack in SHIPPED_STACKS)):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def read_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.yaml"))}


def test_render_dev_writes_one_object_per_file_and_prints_a_summary(tmp_path: Path) -> None:
    proc = stackctl("render", "dev", "--out", str(tmp_path / "dev"))
    assert proc.returncode == 0, proc.stderr
    files = read_tree(tmp_path / "dev")
    assert "appstack-dev/deployment-web.yaml" in files
    assert "_cluster/namespace-appstack-dev.yaml" in files
    for text in files.values():
        assert len(list(yaml.safe_load_all(text))) == 1
    assert "rendered stack dev (dev)" in proc.stdout
    assert "1 Deployment" in proc.stdout


def test_two_renders_of_the_same_config_are_byte_identical(tmp_path: Path) -> None:
    first, second = render_mod.render_stack("prod"), render_mod.render_stack("prod")
    render_mod.write(first, tmp_path / "a")
    render_mod.write(second, tmp_path / "b")
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")


def test_keys_are_in_a_stable_order(tmp_path: Path) -> None:
    render_mod.write(render_mod.render_stack("dev"), tmp_path)
    text = (tmp_path / "appstack-dev/deployment-web.yaml").read_text()
    top = [line.split(":")[0] for line in text.splitlines() if line and not line[0].isspace()]
    assert top == ["apiVersion", "kind", "metadata", "spec"]


def test_unknown_stack_exits_2_naming_the_available_stacks() -> None:
    proc = stackctl("render", "qa")
    assert proc.returncode == 2
    assert "unknown stack 'qa'; available: dev, prod, staging" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_config_exits_2_naming_the_key_without_traceback(project: Path) -> None:
    stack_file = project / "Pulumi.dev.yaml"
    data = yaml.safe_load(stack_file.read_text())
    data["config"]["appstack:apps"]["web"]["replicas"] = 0
    data["config"]["appstack:apps"]["web"]["resources"] = {"limits": {"memory": "12x"}}
    stack_file.write_text(yaml.safe_dump(data))
    proc = stackctl("render", "dev", "--project-dir", str(project))
    assert proc.returncode == 2
    assert "appstack:apps.web.replicas:" in proc.stderr
    assert "appstack:apps.web.resources.limits.memory: '12x' is not a Kubernetes quantity" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_a_failed_render_leaves_the_previous_output_untouched(project: Path) -> None:
    out = project / "out" / "dev"
    assert stackctl("render", "dev", "--project-dir", str(project)).returncode == 0
    before = read_tree(out)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("appstack-dev", "Not_A_Namespace"))
    proc = stackctl("render", "dev", "--project-dir", str(project))
    assert proc.returncode == 2
    assert read_tree(out) == before
    assert [p.name for p in (project / "out").iterdir()] == ["dev"]  # no temp dirs left


def test_a_rerender_replaces_stale_files(project: Path) -> None:
    out = project / "out" / "dev"
    (out / "stale").mkdir(parents=True)
    (out / "stale" / "old.yaml").write_text("kind: Old\n")
    assert stackctl("render", "dev", "--project-dir", str(project)).returncode == 0
    assert not (out / "stale").exists()


def test_encrypted_stack_values_are_rendered_redacted(project: Path) -> None:
    stack_file = project / "Pulumi.dev.yaml"
    data = yaml.safe_load(stack_file.read_text())
    data["config"]["appstack:secrets"] = {"web": {"API_TOKEN": {"secure": "v1:Zm9vYmFy"}}}
    stack_file.write_text(yaml.safe_dump(data))
    result = render_mod.render_stack("dev", project)
    secret = next(o for o in result.objects if o["kind"] == "Secret")
    assert secret["data"] == {"API_TOKEN": render_mod.REDACTED}
    assert "v1:Zm9vYmFy" not in repr(result.objects)


def test_a_secure_value_outside_secrets_is_rejected(project: Path) -> None:
    stack_file = project / "Pulumi.dev.yaml"
    data = yaml.safe_load(stack_file.read_text())
    data["config"]["appstack:apps"]["web"]["env"] = {"TOKEN": {"secure": "v1:abc"}}
    stack_file.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"appstack:apps\.web\.env\.TOKEN: secret values belong"):
        render_mod.render_stack("dev", project)


def test_a_secret_in_a_non_secret_object_fails_the_render() -> None:
    from pulumi.runtime import rpc

    leaked = render_mod.CapturedResource(
        type="kubernetes:core/v1:ConfigMap",
        name="leak",
        inputs={"kind": "ConfigMap", "data": {"X": rpc.wrap_rpc_secret("hunter2")}},
        options={},
        custom=True,
    )
    with pytest.raises(UserError, match="would be rendered in clear"):
        render_mod.to_manifest(leaked)


def test_other_packages_config_keys_are_ignored(project: Path) -> None:
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  kubernetes:context: kind-dev\n")
    assert render_mod.render_stack("dev", project).environment == "dev"


def test_render_captures_resource_options() -> None:
    result = render_mod.render_stack("prod")
    assert result.options["Deployment/appstack/web"]["ignore_changes"] == ["spec.replicas"]
    assert all(opts.get("parent") for opts in result.options.values())


def test_a_render_leaves_the_sdks_source_positions_as_it_found_them() -> None:
    """The mock runtime skips the SDK's stack walk and swaps in its own `contains_unknowns`
    (stackctl/mockruntime/engine.py) only while it runs."""
    from pulumi.runtime import resource as sdk_resource
    from pulumi.runtime import rpc

    from components import config as config_model
    from stackctl.render.stack import render_config
    from tests.conftest import base_raw

    before = sdk_resource._get_stack_trace, rpc.contains_unknowns
    render_config(config_model.load(base_raw("dev")), "dev")
    assert (sdk_resource._get_stack_trace, rpc.contains_unknowns) == before
    # the SDK's own, not the mock's
    assert [f.__module__ for f in before] == ["pulumi.runtime.resource", "pulumi.runtime.rpc"]
