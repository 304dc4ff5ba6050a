"""`make e2e-supply`: the supply chain against a real OCI registry (issues 28 item 4, 32 item 5).

- the registry is distribution v3 (e2e/registry.py): TLS from a CA made for the run, basic auth,
  deletes enabled;
- `app/Dockerfile`, unchanged, is built by buildah on a stand-in of its base image (Debian
  bookworm packages, labelled as a stand-in; e2e/image.py), pushed, and pulled back by digest
  with skopeo;
- `stackctl deploy --image web=<repo>@sha256:<digest>` deploys dev on the e2e control plane
  (kwok nodes: the image is not pulled here; the real pull is the real-node tier's) with the
  stack's own pull Secret (`appstack:registry` with `pullSecret: true`), whose credentials are
  then used against the registry;
- `stackctl registry prune` runs against the registry: commit tags with controlled ages (their
  image config's `created`), a version tag sharing a digest, cosign-named companion tags, and a
  digest the dev stack's history references; dry run changes nothing, `--apply` deletes exactly
  what the rules say, and `registry garbage-collect` then removes the deleted images' blobs.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.engine import Engine
from e2e.image import (
    DOCKERFILE,
    STANDIN_LABEL,
    Buildah,
    dockerfile_base,
    skopeo_pull_by_digest,
)
from e2e.kube import Kube
from e2e.registry import Registry
from tests.e2e.live import wait_workloads_available

pytestmark = pytest.mark.supply

REPO = "appstack/web"
DEV_NS = "appstack-dev"


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    with Registry() as running:
        yield running


@pytest.fixture(scope="session")
def built(registry: Registry) -> Iterator[dict[str, Any]]:
    """app/Dockerfile built by buildah and pushed as <registry>/appstack/web:<commit>; the
    builder's store (about 0.5 GB, vfs) is removed at the end of the session."""
    builder = Buildah(root=Path(tempfile.mkdtemp(prefix="appstack-buildah-")))
    try:
        builder.setup()
        base = dockerfile_base()
        builder.standin_base(base)
        tag = f"localhost/{REPO}:e2e"
        builder.build(DOCKERFILE, DOCKERFILE.parent, tag)
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        digest = builder.push(
            tag,
            f"{registry.host}/{REPO}:{commit}",
            authfile=registry.auth_file,
            cert_dir=registry.cert_dir,
        )
        yield {"digest": digest, "commit": commit, "base": base, "timings": builder.timings}
    finally:
        shutil.rmtree(builder.root, ignore_errors=True)


def test_the_reference_image_is_built_pushed_and_pulled_by_digest(
    registry: Registry, built: dict[str, Any], tmp_path: Path, figures: dict[str, float]
) -> None:
    figures.update(built["timings"])
    digest = built["digest"]
    # TLS and auth are on: no credentials, no access
    assert registry.api("GET", f"/v2/{REPO}/tags/list", auth=False).status == 401
    assert registry.manifest_digest(REPO, built["commit"]) == digest
    started = time.monotonic()
    out = skopeo_pull_by_digest(
        f"{registry.host}/{REPO}@{digest}",
        tmp_path / "pulled",
        authfile=registry.auth_file,
        cert_dir=registry.cert_dir,
    )
    figures["supply.pull_by_digest_s"] = time.monotonic() - started
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest]
    manifest = json.loads((out / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    config_digest = manifest["config"]["digest"].split(":")[1]
    config = json.loads((out / "blobs" / "sha256" / config_digest).read_text())
    # what app/Dockerfile says, as built
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["Entrypoint"] == ["python", "-m", "app.server"]
    assert config["config"]["WorkingDir"] == "/srv"
    assert config["config"]["Labels"][STANDIN_LABEL] == "true"  # inherited from the stand-in
    assert "/opt/venv/bin" in next(e for e in config["config"]["Env"] if e.startswith("PATH="))


# ------------------------------------------------------------------ deploy by digest


@pytest.fixture(scope="session")
def deployed(
    registry: Registry, built: dict[str, Any], engine: Engine, kube: Kube
) -> dict[str, Any]:
    """dev deployed by stackctl with the built digest and the stack's own pull Secret."""
    engine.init_stack("dev")
    doc = engine.read_config("dev")
    doc["config"]["appstack:registry"] = {
        "server": registry.host,
        "username": registry.user,
        "pullSecret": True,
    }
    engine.write_config("dev", doc)
    # the password through stdin, so it is in no command line and no log
    proc = subprocess.run(
        [
            str(engine.binaries / "pulumi"),
            "config",
            "set",
            "--secret",
            "--path",
            "appstack:registry.password",
            "--stack",
            "dev",
            "--non-interactive",
        ],
        input=registry.password,
        cwd=engine.project,
        env=engine.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    engine.commit("e2e: dev pulls from the e2e registry")
    ref = f"{registry.host}/{REPO}@{built['digest']}"
    engine.stackctl(
        "deploy",
        "dev",
        "--yes",
        "--image",
        f"web={ref}",
        policy_cli=True,
        timing="supply.deploy_by_digest_s",
    )
    wait_workloads_available(kube, [DEV_NS], timeout=120)
    return {"ref": ref}


def test_dev_deploys_the_digest_with_the_stacks_pull_secret(
    registry: Registry, deployed: dict[str, Any], kube: Kube
) -> None:
    dep = kube.get("Deployment", "web", DEV_NS)
    pod = dep["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == [deployed["ref"]]
    secret_names = [s["name"] for s in pod.get("imagePullSecrets", [])]
    assert "registry-credentials" in secret_names
    secret = kube.get("Secret", "registry-credentials", DEV_NS)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    doc = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = doc["auths"][registry.host]
    # what the kubelet would send: the Secret's own credentials fetch the manifest by digest
    resp = registry.api(
        "HEAD",
        f"/v2/{REPO}/manifests/{deployed['ref'].split('@')[1]}",
        auth=False,
        headers={
            "Authorization": f"Basic {entry['auth']}",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        },
    )
    assert resp.status == 200, resp
    wrong = registry.api(
        "HEAD",
        f"/v2/{REPO}/manifests/{deployed['ref'].split('@')[1]}",
        auth=False,
        headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="},
    )
    assert wrong.status == 401


# ------------------------------------------------------------------ retention


def created(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_tag(n: int) -> str:
    return f"{n:x}" * 7 + "0" * 33  # a 40-hex commit hash


def test_registry_prune_dry_run_then_apply_then_garbage_collect(
    registry: Registry,
    built: dict[str, Any],
    deployed: dict[str, Any],
    engine: Engine,
    figures: dict[str, float],
) -> None:
    ages = {1: 1, 2: 5, 3: 40, 4: 60, 5: 90, 6: 120}
    when = {n: created(d) for n, d in ages.items()}
    digests = {
        n: registry.push_image(REPO, commit_tag(n), created=when[n], content=f"image {n}".encode())
        for n in ages
    }
    # a version tag on image 5's digest; cosign-named companions of images 4 and 6 (content:
    # plain images; real signatures are the signing tier's)
    assert registry.push_image(REPO, "0.1.0", created=when[5], content=b"image 5") == digests[5]
    companions = {}
    for n in (4, 6):
        for kind in ("sig", "att", "sbom"):
            tag = f"{digests[n].replace(':', '-')}.{kind}"
            companions[tag] = registry.push_image(
                REPO, tag, created=when[n], content=f"{kind} of {n}".encode()
            )
    # dev's history references image 4: deploy it (and back to the built image)
    engine.stackctl(
        "deploy",
        "dev",
        "--yes",
        "--image",
        f"web={registry.host}/{REPO}@{digests[4]}",
        policy_cli=True,
    )
    engine.stackctl("deploy", "dev", "--yes", "--image", f"web={deployed['ref']}", policy_cli=True)
    layer_of_3 = json.loads(
        registry.api(
            "GET",
            f"/v2/{REPO}/manifests/{digests[3]}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        ).body
    )["layers"][0]["digest"]
    before = registry.tags(REPO)
    args = [
        "registry",
        "prune",
        "--stack",
        "dev",
        "--repository",
        f"{registry.host}/{REPO}",
        "--max-age-days",
        "30",
        "--keep-last",
        "2",
        "--authfile",
        str(registry.auth_file),
        "--ca-file",
        str(registry.ca_file),
    ]
    dry = engine.stackctl(*args, policy_cli=True, timing="supply.prune_dry_run_s")
    assert registry.tags(REPO) == before, "a dry run deleted something"
    # The rules (stackctl/ops/retention.py): newest 2 = the built image and image 1; image 2 is
    # younger than 30 days; 4 is in dev's history; 5 shares its digest with 0.1.0; 3 and 6 go,
    # 6 with its companions; 4's companions stay with it.
    gone = {commit_tag(3), commit_tag(6), *(t for t in companions if digests[6][7:] in t)}
    for tag in gone:
        assert f":{tag} " in dry.stdout, dry.stdout
    applied = engine.stackctl(*args, "--apply", policy_cli=True, timing="supply.prune_apply_s")
    assert "deleted 5 manifests" in applied.stdout, applied.stdout
    assert set(registry.tags(REPO)) == set(before) - gone
    for n in (3, 6):
        assert registry.manifest_digest(REPO, digests[n]) is None
    for n in (1, 2, 4, 5):
        assert registry.manifest_digest(REPO, digests[n]) == digests[n]
    assert registry.manifest_digest(REPO, built["digest"]) == built["digest"]
    # the blobs stay until the garbage collector runs
    assert registry.api("HEAD", f"/v2/{REPO}/blobs/{layer_of_3}").status == 200
    started = time.monotonic()
    registry.garbage_collect()
    figures["supply.registry_gc_s"] = time.monotonic() - started
    assert registry.api("HEAD", f"/v2/{REPO}/blobs/{layer_of_3}").status == 404
    assert registry.manifest_digest(REPO, digests[4]) == digests[4]
