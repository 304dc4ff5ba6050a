"""Only the prod deploy job can bind the prod kubeconfig, and only a successful build of main
starts it (item 6), shown over the rendered JCasC: its global credentials, the job-dsl script
(folders, folder credentials, jobs, triggers) and the role-strategy roles.

The oracle is the credentials lookup of the pinned plugins, modelled here:
- credentials 1480.v2246fd131e83 CredentialsProvider.findCredentialById(id, type, run) looks up
  `lookupCredentialsInItem(type, run.getParent(), ...)` over every provider;
- SystemCredentialsProvider gives its (global) credentials to any item;
- cloudbees-folder 6.1073.va_7888eb_dd514 FolderCredentialsProvider.getCredentialsInItemGroup
  collects the FolderCredentialsProperty of the item's folder and of each ancestor
  (`itemGroup = ((Item) itemGroup).getParent()` up to the root), nothing else.
A multibranch project is such a folder; its branch and pull-request jobs are its children."""

from __future__ import annotations

import re
from typing import Any

from components.jenkins.casc import DEPLOYER_PERMISSIONS, DEVELOPER_PERMISSIONS
from stackctl.render import RenderResult
from tests.jenkins.helpers import casc
from tests.renders import Renders
from tests.tooling import REPO

PROD_CREDENTIAL = "kubeconfig-prod"


def _global_ids(doc: dict[str, Any]) -> set[str]:
    (domain,) = doc["credentials"]["system"]["domainCredentials"]
    return {next(iter(c.values()))["id"] for c in domain["credentials"]}


def _script(doc: dict[str, Any]) -> str:
    (job,) = doc["jobs"]
    script: str = job["script"]
    return script


def _folder_credentials(script: str) -> dict[str, set[str]]:
    """Folder full name -> IDs of its folderCredentialsProperty (job-dsl `folder(...)`)."""
    out: dict[str, set[str]] = {}
    for match in re.finditer(r"^folder\('([^']+)'\) \{\n(.*?)^\}", script, re.S | re.M):
        body = match.group(2)
        if "folderCredentialsProperty" in body:
            out[match.group(1)] = set(re.findall(r"\bid\('([^']+)'\)", body))
    # the multibranch project is a folder too, with no credentials of its own
    for name in re.findall(r"^multibranchPipelineJob\('([^']+)'\)", script, re.M):
        out.setdefault(name, set())
    return out


def visible(item: str, global_ids: set[str], folders: dict[str, set[str]]) -> set[str]:
    """IDs a build of `item` (full name) can bind: global + each ancestor folder's."""
    ids = set(global_ids)
    parts = item.split("/")
    for depth in range(1, len(parts)):
        ids |= folders.get("/".join(parts[:depth]), set())
    return ids


def _prod(renders: Renders) -> tuple[RenderResult, dict[str, Any], str]:
    result = renders.stack("prod")
    doc = casc(result)
    return result, doc, _script(doc)


def test_only_the_prod_job_can_bind_the_prod_kubeconfig(renders: Renders) -> None:
    _, doc, script = _prod(renders)
    globals_ = _global_ids(doc)
    folders = _folder_credentials(script)
    assert PROD_CREDENTIAL not in globals_
    assert folders["appstack-prod"] == {PROD_CREDENTIAL}
    for item in ("appstack/main", "appstack/PR-7", "appstack/feature%2Fx"):
        assert PROD_CREDENTIAL not in visible(item, globals_, folders), item
        assert "kubeconfig-dev" in visible(item, globals_, folders)
    assert PROD_CREDENTIAL in visible("appstack-prod/deploy", globals_, folders)
    # Beside the multibranch job, never inside it (else its branches would inherit it).
    assert not "appstack-prod".startswith("appstack/")


def test_the_prod_job_builds_main_and_starts_only_after_main(renders: Renders) -> None:
    _, doc, script = _prod(renders)
    job = re.search(r"^pipelineJob\('appstack-prod/deploy'\) \{\n(.*?)^\}", script, re.S | re.M)
    assert job is not None
    body = job.group(1)
    # core ReverseBuildTrigger (@Symbol "upstream"): started when appstack/main succeeds
    assert "upstream { upstreamProjects('appstack/main'); threshold('SUCCESS') }" in body
    assert "branch('*/main')" in body  # its pipeline is main's, whoever starts it
    path = re.search(r"scriptPath\('([^']+)'\)", body)
    assert path is not None and (REPO / path.group(1)).is_file()
    env = doc["jenkins"]["globalNodeProperties"][0]["envVars"]["env"]
    assert {"key": "APPSTACK_RELEASE_JOB", "value": "appstack/main"} in env
    # The prod file refuses every other start (tests/ci/test_jenkinsfile.py holds its code).
    assert "env.APPSTACK_RELEASE_JOB" in (REPO / path.group(1)).read_text()


def test_nobody_but_admin_can_reconfigure_the_prod_job_or_read_credentials() -> None:
    """Changing the trigger, the script path or the folder's credentials needs Job/Configure,
    Item creation or Credentials permissions (role-strategy global roles); only admin has them
    (Overall/Administer)."""
    for perms in (DEVELOPER_PERMISSIONS, DEPLOYER_PERMISSIONS):
        assert not [
            p
            for p in perms
            if p.startswith(
                ("Credentials/", "Job/Configure", "Job/Create", "Job/Delete", "Run/Replay")
            )
        ]
        assert "Overall/Administer" not in perms
