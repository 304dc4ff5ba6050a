"""Issue 32 item 6: the Argo CD Application as an object of the stack (`appstack:gitops`).

Off by default: nothing is registered (same objects, same resources as without the key). On: one
`argoproj.io/v1alpha1` Application in Argo CD's namespace, valid strictly against the upstream
CRD schema (argo-cd v3.6.2, tests/crd_schemas.py), pointing at the branch and directory that
scripts/ci/publish-manifests.sh writes (the shell's own answer is the oracle), and kept outside
the manifests it syncs: its rendered file and the redacted Secrets match its own exclude glob,
every other rendered file does not. `make e2e-gitops` runs the same object under a real Argo CD.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from typing import Any

import pytest

from stackctl.render import RenderResult
from stackctl.render.stack import file_name
from tests import crd_schemas
from tests.ci.test_gitops import published_branch_and_target
from tests.conftest import Render, base_raw, load_error
from tests.tooling import REPO, SHIPPED_STACKS

REPO_URL = "https://git.example.com/acme/appstack.git"
ON = {"enabled": True, "repoUrl": REPO_URL}


def _with_gitops(settings: dict[str, Any], environment: str = "dev") -> dict[str, Any]:
    raw = base_raw(environment)
    raw["gitops"] = settings
    return raw


def _with_jenkins(raw: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    out["jenkins"] = {"enabled": True}
    return out


def _applications(result: RenderResult) -> list[dict[str, Any]]:
    return [o for o in result.objects if o["kind"] == "Application"]


def gobwas_match(pattern: str, path: str) -> bool:
    """github.com/gobwas/glob compiled without separators, as Argo CD's util/glob.Match calls it
    for `directory.exclude` (reposerver/repository getPotentiallyValidManifestFile): `*` and
    `**` match any run of characters, `/` included; `{a,b}` is an alternation; `?` one char."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out += ".*"
        elif c == "?":
            out += "."
        elif c == "{":
            out += "(?:"
        elif c == "}":
            out += ")"
        elif c == ",":
            out += "|"
        else:
            out += re.escape(c)
        i += 1
    return re.fullmatch(out, path, flags=re.S) is not None


def test_the_glob_reading_is_gobwas() -> None:
    # gobwas without separators: `*` crosses `/` (the reason `argocd/*` covers a whole folder)
    assert gobwas_match("{**/secret-*.yaml,argocd/*}", "appstack/secret-web-secrets.yaml")
    assert gobwas_match("{**/secret-*.yaml,argocd/*}", "argocd/sub/application-x.yaml")
    assert not gobwas_match("{**/secret-*.yaml,argocd/*}", "secret-top.yaml")
    assert not gobwas_match("{**/secret-*.yaml,argocd/*}", "appstack/configmap-secret.yaml")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_off_in_every_shipped_stack(stack: str, renders: Any) -> None:
    result = renders.stack(stack)
    assert _applications(result) == []
    assert not [o for o in result.objects if o["metadata"].get("namespace") == "argocd"]


def test_off_registers_nothing(render: Render) -> None:
    """A gitops block that is not enabled changes nothing: same objects, same resources."""
    plain = render(base_raw("dev"))
    off = render(_with_gitops({"enabled": False, "repoUrl": REPO_URL, "namespace": "gitops"}))
    assert off.objects == plain.objects
    assert [(r.type, r.name) for r in off.resources] == [(r.type, r.name) for r in plain.resources]


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_on_renders_one_application_valid_against_the_upstream_crd(
    environment: str, render: Render
) -> None:
    result = render(_with_gitops(ON, environment))
    (app,) = _applications(result)
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    assert app["metadata"]["namespace"] == "argocd"
    assert app["metadata"]["name"] == f"appstack-{environment}"
    assert crd_schemas.errors(app) == []
    # the program adds exactly that one object
    plain = render(base_raw(environment))
    assert len(result.objects) == len(plain.objects) + 1


def test_a_misspelt_field_would_fail_the_schema(render: Render) -> None:
    (app,) = _applications(render(_with_gitops(ON)))
    app["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    assert any("selfheal" in e for e in crd_schemas.errors(app))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_points_at_what_publish_manifests_writes(stack: str, renders: Any) -> None:
    result = renders.config(_with_gitops(ON, stack), stack)
    (app,) = _applications(result)
    branch, target = published_branch_and_target(stack)
    source = app["spec"]["source"]
    assert (source["repoURL"], source["targetRevision"], source["path"]) == (
        REPO_URL,
        branch,
        target,
    )
    assert source["directory"]["recurse"] is True  # _cluster/, the apps', Jenkins' folders


def test_outside_the_manifests_it_syncs_and_no_redacted_secret_applied(render: Render) -> None:
    raw = _with_jenkins(_with_gitops(ON))
    raw["secrets"] = {"web": {"API_TOKEN": "s3cr3t-value"}}
    result = render(raw)
    (app,) = _applications(result)
    exclude = app["spec"]["source"]["directory"]["exclude"]
    excluded = {file_name(o) for o in result.objects if gobwas_match(exclude, file_name(o))}
    expected = {file_name(app)} | {file_name(o) for o in result.objects if o["kind"] == "Secret"}
    assert len(expected) >= 2 and excluded == expected
    # what it syncs carries the JENKINS_HOME claim, marked never to be pruned
    (claim,) = [o for o in result.objects if o["kind"] == "PersistentVolumeClaim"]
    assert file_name(claim) not in excluded
    assert claim["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false"
    # and so does its namespace: pruning it would delete the claim with it
    (namespace,) = [
        o
        for o in result.objects
        if o["kind"] == "Namespace" and o["metadata"]["name"] == claim["metadata"]["namespace"]
    ]
    assert namespace["metadata"]["annotations"] == {
        "argocd.argoproj.io/sync-options": "Prune=false"
    }


def test_sync_policy_and_settings(render: Render) -> None:
    settings = {
        **ON,
        "targetRevision": "release/manifests",
        "path": "clusters/eu/dev",
        "namespace": "gitops",
        "applicationName": "shop-dev",
        "project": "shop",
        "destinationServer": "https://10.0.0.1:6443",
        "prune": False,
        "selfHeal": False,
        "retryLimit": 0,
    }
    (app,) = _applications(render(_with_gitops(settings)))
    spec = app["spec"]
    assert (app["metadata"]["name"], app["metadata"]["namespace"]) == ("shop-dev", "gitops")
    assert spec["source"]["targetRevision"] == "release/manifests"
    assert spec["source"]["path"] == "clusters/eu/dev"
    assert spec["source"]["directory"]["exclude"] == "{**/secret-*.yaml,gitops/*}"
    assert spec["project"] == "shop"
    assert spec["destination"] == {"server": "https://10.0.0.1:6443"}
    assert spec["syncPolicy"]["automated"] == {"prune": False, "selfHeal": False}
    assert spec["syncPolicy"]["retry"]["limit"] == 0
    assert "CreateNamespace=false" in spec["syncPolicy"]["syncOptions"]
    assert "finalizers" not in app["metadata"]
    assert crd_schemas.errors(app) == []


@pytest.mark.parametrize(
    ("settings", "key", "words"),
    [
        ({"enabled": True}, "gitops.repoUrl", "needs the repository"),
        ({**ON, "repoUrl": "https://ci:t0ken@git.example.com/a.git"}, "gitops.repoUrl", "password"),
        ({**ON, "repoUrl": "ftp://git.example.com/a.git"}, "gitops.repoUrl", "file:///path"),
        ({**ON, "targetRevision": "-x"}, "gitops.targetRevision", "branch name"),
        ({**ON, "targetRevision": "a..b"}, "gitops.targetRevision", "branch name"),
        ({**ON, "targetRevision": "x.lock"}, "gitops.targetRevision", "branch name"),
        ({**ON, "path": "../prod"}, "gitops.path", "no '..'"),
        ({**ON, "path": "/manifests/dev"}, "gitops.path", "relative"),
        ({**ON, "namespace": "shop"}, "gitops.namespace", "must differ"),
        ({**ON, "namespace": "Argo"}, "gitops.namespace", ""),
        ({**ON, "destinationServer": "kubernetes"}, "gitops.destinationServer", "URL"),
        ({**ON, "retryLimit": 21}, "gitops.retryLimit", "20"),
        ({**ON, "sync": True}, "gitops.sync", ""),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, Any], key: str, words: str) -> None:
    message = load_error(_with_gitops(settings))
    assert f"appstack:{key}" in message
    assert words in message


def test_jenkins_namespace_is_not_argo_cds() -> None:
    raw = _with_jenkins(_with_gitops({**ON, "namespace": "jenkins"}))
    assert "appstack:gitops.namespace" in load_error(raw)
    assert "appstack:jenkins.namespace" in load_error(raw)


@pytest.mark.parametrize(
    "url",
    [
        REPO_URL,
        "http://127.0.0.1:9418/manifests.git",
        "ssh://git@git.example.com/acme/appstack.git",
        "git@github.com:acme/appstack.git",
        "git://127.0.0.1/manifests.git",
        "file:///srv/git/manifests.git",
        "https://ci@git.example.com/a.git",
    ],
)
def test_repo_urls_argo_cd_clones(url: str, render: Render) -> None:
    (app,) = _applications(render(_with_gitops({**ON, "repoUrl": url})))
    assert app["spec"]["source"]["repoURL"] == url


def test_render_command_refuses_bad_gitops_config(tmp_path: Any) -> None:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    stack = (REPO / "Pulumi.dev.yaml").read_text()
    stack += "  appstack:gitops:\n    enabled: true\n"
    (tmp_path / "Pulumi.dev.yaml").write_text(stack)
    proc = subprocess.run(
        [sys.executable, "-m", "stackctl", "render", "dev", "--project-dir", str(tmp_path),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "appstack:gitops.repoUrl" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_dev_and_prod_differ_by_name_and_path_only(renders: Any) -> None:
    """GitOps follows the same gate: dev's manifests (its own Application), then prod's."""
    (dev,) = _applications(renders.config(_with_gitops(ON, "prod"), "dev"))
    (prod,) = _applications(renders.config(_with_gitops(ON, "prod"), "prod"))
    assert (dev["metadata"]["name"], prod["metadata"]["name"]) == ("appstack-dev", "appstack-prod")
    assert dev["spec"]["source"].pop("path") == "manifests/dev"
    assert prod["spec"]["source"].pop("path") == "manifests/prod"
    assert dev["spec"] == prod["spec"]
