"""The CrossGuard pack: resources -> manifests, unknown-value skipping, environment choice,
and the pack itself answering the analyzer gRPC protocol (no Pulumi engine involved)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import (
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    unknown_checking_proxy,
)

from policy.pack import (
    build_policies,
    make_validate,
    manifests_from_resources,
    resolve_environment,
    resource_to_manifest,
)
from policy.rules import RULES
from policy.rules.base import RuleContext
from tests.policy.factory import compliant_stack, deployment

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
URN = "urn:pulumi:prod::appstack::kubernetes:apps/v1:Deployment::web"


@dataclass
class FakeResource:
    resource_type: str
    props: Any
    urn: str


def deployment_outputs() -> dict[str, Any]:
    """A Deployment as the kubernetes provider reports it: the object plus outputs."""
    props = deployment()
    props["metadata"].update(uid="1234", resourceVersion="7", generation=1, managedFields=[{}])
    props["status"] = {"replicas": 2}
    props["__inputs"] = {"whatever": True}
    return props


def test_a_kubernetes_resource_becomes_its_manifest() -> None:
    manifest = resource_to_manifest("kubernetes:apps/v1:Deployment", deployment_outputs())
    assert manifest == deployment()


def test_proxied_props_convert_to_plain_dicts_and_lists() -> None:
    manifest = resource_to_manifest(
        "kubernetes:apps/v1:Deployment", unknown_checking_proxy(deployment_outputs())
    )
    assert manifest == deployment()
    assert manifest is not None
    assert type(manifest["spec"]["template"]["spec"]["containers"]) is list
    assert type(manifest["spec"]["template"]["spec"]["containers"][0]) is dict


def test_custom_resources_convert_too() -> None:
    props = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"endpoints": [{"port": "http"}]},
    }
    assert (
        resource_to_manifest("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", props) == props
    )


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        ("pulumi:providers:kubernetes", {"apiVersion": "v1", "kind": "x"}),
        ("aws:s3/bucket:Bucket", {"apiVersion": "v1", "kind": "x"}),
        ("kubernetes:yaml:ConfigFile", {"file": "x.yaml", "resources": {}}),
        ("pulumi:pulumi:Stack", {}),
    ],
)
def test_non_manifests_are_ignored(resource_type: str, props: dict[str, Any]) -> None:
    assert resource_to_manifest(resource_type, props) is None


@pytest.mark.parametrize("proxied", [True, False])
@pytest.mark.parametrize(
    ("where", "sentinel"),
    [
        (("spec", "template", "spec", "containers", 0, "image"), UNKNOWN_STRING_VALUE),
        (("spec", "minReadySeconds"), UNKNOWN_NUMBER_VALUE),
        (("spec",), UNKNOWN_OBJECT_VALUE),
        (("metadata", "name"), UNKNOWN_STRING_VALUE),
    ],
)
def test_a_resource_with_unknown_values_is_skipped(
    where: tuple[str | int, ...], sentinel: str, proxied: bool
) -> None:
    props: Any = deployment_outputs()
    node = props
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = sentinel
    resources = [
        FakeResource(
            "kubernetes:apps/v1:Deployment",
            unknown_checking_proxy(props) if proxied else props,
            URN,
        ),
        FakeResource(
            "kubernetes:core/v1:Namespace",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}},
            "urn:ns",
        ),
    ]
    converted = manifests_from_resources(resources)
    assert [m["kind"] for m in converted.manifests] == ["Namespace"]
    assert [urn for urn, _ in converted.skipped] == [URN]
    assert "unknown during preview" in converted.skipped[0][1]


def test_unknown_output_only_fields_do_not_skip_a_resource() -> None:
    props = deployment_outputs()
    props["status"] = UNKNOWN_OBJECT_VALUE
    props["metadata"]["uid"] = UNKNOWN_STRING_VALUE
    converted = manifests_from_resources(
        [FakeResource("kubernetes:apps/v1:Deployment", unknown_checking_proxy(props), URN)]
    )
    assert converted.skipped == []
    assert converted.urns == {"Deployment/apps/web": URN}


@dataclass
class FakeOptions:
    ignore_changes: list[str]


@dataclass
class FakeResourceWithOptions(FakeResource):
    opts: FakeOptions


def test_a_field_under_ignore_changes_is_not_judged_as_the_programs() -> None:
    # The HPA owns the replicas: the program sets none and ignores them. After an `up`, the
    # provider's Check puts the live (HPA-written) value into the props the analyzer gets.
    # The zero-downtime rule must then see what the program declares: no replicas.
    props = deployment_outputs()
    props["spec"]["replicas"] = 3
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": props["metadata"]["namespace"]},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 3,
            "maxReplicas": 6,
        },
    }
    rule = next(r for r in RULES if r.name == "zero-downtime-rollout")
    prod = RuleContext("prod")
    kinds = ("kubernetes:apps/v1:Deployment", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    plain = manifests_from_resources(
        [FakeResource(kinds[0], props, URN), FakeResource(kinds[1], hpa, "urn:hpa")]
    )
    assert any("spec.replicas" in v.message for v in rule.check(plain.manifests, prod))
    ignored = manifests_from_resources(
        [
            FakeResourceWithOptions(kinds[0], props, URN, FakeOptions(["spec.replicas"])),
            FakeResource(kinds[1], hpa, "urn:hpa"),
        ]
    )
    assert "replicas" not in ignored.manifests[0]["spec"]
    assert not [v for v in rule.check(ignored.manifests, prod) if "replicas" in v.message]


@pytest.mark.parametrize(
    ("config", "stack", "expected"),
    [
        ({}, "prod", "prod"),
        ({}, "dev", "dev"),
        ({}, "acme/appstack/dev", "dev"),
        ({}, "staging", "staging"),
        ({}, "acme/appstack/staging", "staging"),
        ({}, "qa", "prod"),
        ({}, None, "prod"),
        ({"environment": "dev"}, "prod", "dev"),
    ],
)
def test_environment_resolution(config: dict[str, Any], stack: str | None, expected: str) -> None:
    assert resolve_environment(config, stack) == expected


def test_a_bad_configured_environment_is_rejected() -> None:
    with pytest.raises(ValueError, match="not one of: dev, staging, prod"):
        resolve_environment({"environment": "qa"}, "prod")


def test_one_stack_policy_per_rule() -> None:
    policies = build_policies()
    assert [p.name for p in policies] == [r.name for r in RULES]
    assert [p.description for p in policies] == [r.description for r in RULES]
    assert all(isinstance(p, StackValidationPolicy) for p in policies)


def test_validate_reports_violations_with_the_resource_urn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULUMI_STACK", "dev")
    objects = compliant_stack()
    objects[2]["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/web:latest"
    resources = [
        FakeResource(f"kubernetes:x/v1:{o['kind']}", unknown_checking_proxy(o), f"urn:{i}")
        for i, o in enumerate(objects)
    ]
    reported: list[tuple[str, str | None]] = []
    image_rule = next(r for r in RULES if r.name == "image-pinned")
    make_validate(image_rule)(
        StackValidationArgs(resources, {}), lambda msg, urn=None: reported.append((msg, urn))
    )
    assert len(reported) == 1
    message, urn = reported[0]
    assert urn == "urn:2"
    assert message.startswith(
        'Deployment/apps/web: spec.template.spec.containers[web].image is "ghcr.io/acme/web:latest"'
    )


# --- the pack as the Pulumi CLI runs it --------------------------------------------------------


def _local_requirements() -> list[Path]:
    """The local path dependencies of policy/requirements.txt, resolved from the pack's directory
    (where the Pulumi CLI runs pip)."""
    lines = (POLICY_DIR / "requirements.txt").read_text().splitlines()
    return [(POLICY_DIR / line.strip()).resolve() for line in lines if line.startswith(".")]


@pytest.fixture(scope="module")
def pack_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory holding what policy/requirements.txt installs from this repo (the
    PyPI packages come from the test venv), built with pip as the pack's venv would be."""
    site = tmp_path_factory.mktemp("pack-site")
    local = _local_requirements()
    assert local, "policy/requirements.txt installs the value grammar from this repo"
    # built from copies: setuptools builds in place and the work tree stays untouched
    copies = [shutil.copytree(path, tmp_path_factory.mktemp("src") / path.name) for path in local]
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--no-index", "--target", str(site), *map(str, copies)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


@pytest.fixture
def analyzer(tmp_path: Path, pack_site: Path) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """Start the pack like pulumi/policy/__main__.py does (runpy.run_path on the directory),
    from a directory where neither `policy` nor the repo is importable (only what the pack's
    requirements install), and connect to its gRPC server."""
    env = dict(os.environ, PULUMI_PROJECT="appstack", PULUMI_STACK="prod", PULUMI_DRY_RUN="true")
    env["PYTHONPATH"] = str(pack_site)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-c",
            "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')",
            str(POLICY_DIR),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"policy pack did not start: {port!r}\n{err}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _resource(obj: dict[str, Any], urn: str) -> analyzer_pb2.AnalyzerResource:
    props = struct_pb2.Struct()
    json_format.ParseDict(obj, props)
    return analyzer_pb2.AnalyzerResource(
        type=f"kubernetes:x/v1:{obj['kind']}", properties=props, urn=urn, name=urn
    )


def test_the_pack_serves_every_rule_and_judges_a_stack(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "appstack"
    assert [p.name for p in info.policies] == [r.name for r in RULES]

    objects = compliant_stack()
    # A moving tag: a violation only because the stack name (prod) selects prod rules.
    objects[2]["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/web:stable"
    unknown = dict(objects[1], automountServiceAccountToken=UNKNOWN_STRING_VALUE)
    resources = [_resource(o, f"urn:{i}") for i, o in enumerate(objects)]
    resources[1] = _resource(unknown, "urn:unknown-sa")
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
    diagnostics = [(d.policyName, d.urn) for d in response.diagnostics]
    assert diagnostics == [("image-pinned", "urn:2")]
    message = response.diagnostics[0].message
    assert 'moving tag "stable" in prod' in message
    assert "urn:unknown-sa" in message  # the skipped resource is named


def test_struct_numbers_come_back_as_integers() -> None:
    """Props arrive as protobuf Structs (numbers are doubles), deserialized like AnalyzeStack."""
    from pulumi_policy.deserialize import deserialize_properties

    props = struct_pb2.Struct()
    json_format.ParseDict(deployment(), props)
    wire = unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(props)))
    assert wire["spec"]["minReadySeconds"] == 5.0 and isinstance(
        wire["spec"]["minReadySeconds"], float
    )
    manifest = resource_to_manifest("kubernetes:apps/v1:Deployment", wire)
    assert manifest == deployment()
    assert manifest is not None
    assert type(manifest["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) is int
