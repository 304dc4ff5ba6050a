"""A small client of the OCI distribution API (v2): the calls registry retention needs.

- tags: `GET /v2/<name>/tags/list` (paginated with `n` and the `Link` header, spec end-8a/8b);
- a tag's digest: `HEAD /v2/<name>/manifests/<tag>` with the manifest media types in `Accept`,
  digest from `Docker-Content-Digest`;
- an image's creation time: the manifest's (or index's) `org.opencontainers.image.created`
  annotation, else the image config's `created` (OCI image-spec config.md); for an index, its
  first manifest's config;
- delete: `DELETE /v2/<name>/manifests/<digest>`, 202 Accepted (spec end-9); a registry without
  deletion enabled answers 405, reported as such.

Authentication: HTTP Basic, or a Bearer token from the realm a `WWW-Authenticate: Bearer`
challenge names (the Docker token flow most hosted registries use), with the login from a
containers/Docker auth file (`{"auths": {"<host>": {"auth": "<base64 user:password>"}}}`).
TLS is verified against the system trust store plus, if given, one CA file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stackctl.errors import OperationFailed, UserError

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[0], MANIFEST_TYPES[2]
CREATED_ANNOTATION = "org.opencontainers.image.created"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def split_repository(reference: str) -> tuple[str, str]:
    """`host[:port]/path/name[:tag|@digest]` -> (host, path/name)."""
    ref = reference.split("@", 1)[0]
    host, sep, path = ref.partition("/")
    if not sep or not ("." in host or ":" in host or host == "localhost"):
        raise UserError(
            f"repository {reference!r}: expected <registry host>/<path>, e.g. "
            "registry.example.com/appstack/web"
        )
    last = path.rsplit("/", 1)
    if ":" in last[-1]:
        path = path.rsplit(":", 1)[0]
    return host, path


def parse_created(value: object) -> datetime | None:
    """An RFC 3339 time (image config `created`); None if absent or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def read_auth(auth_file: Path | None, host: str) -> tuple[str, str] | None:
    """(user, password) for `host` from an auth file; None without a file or an entry."""
    if auth_file is None or not auth_file.exists():
        return None
    try:
        auths = json.loads(auth_file.read_text(encoding="utf-8")).get("auths") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"--authfile {auth_file}: not a JSON auth file ({exc})") from None
    entry = auths.get(host) or auths.get(f"https://{host}")
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return (user, password) if sep else None


@dataclass
class RegistryClient:
    """One registry host."""

    host: str
    login: tuple[str, str] | None = None
    ca_file: Path | None = None
    _token: dict[str, str] = field(default_factory=dict, repr=False)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_file is not None:
            ctx.load_verify_locations(cafile=str(self.ca_file))
        return ctx

    def _basic(self) -> str | None:
        if self.login is None:
            return None
        return "Basic " + base64.b64encode(":".join(self.login).encode()).decode()

    def _bearer(self, challenge: str, scope_key: str) -> str:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith("https://"):
            raise OperationFailed(f"registry {self.host}: token realm {realm!r} is not https")
        req = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(params)}")
        basic = self._basic()
        if basic:
            req.add_header("Authorization", basic)
        with urllib.request.urlopen(req, context=self._context(), timeout=60) as resp:
            body = json.loads(resp.read())
        token = body.get("token") or body.get("access_token") or ""
        self._token[scope_key] = f"Bearer {token}"
        return self._token[scope_key]

    def request(
        self, method: str, path: str, *, accept: str = "", scope: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        """One call; follows a Bearer challenge once. Returns (status, headers, body)."""
        header = self._token.get(scope) or self._basic()
        for attempt in range(2):
            req = urllib.request.Request(f"https://{self.host}{path}", method=method)
            if accept:
                req.add_header("Accept", accept)
            if header:
                req.add_header("Authorization", header)
            try:
                with urllib.request.urlopen(req, context=self._context(), timeout=60) as resp:
                    return resp.status, dict(resp.headers.items()), resp.read()
            except urllib.error.HTTPError as err:
                challenge = err.headers.get("WWW-Authenticate", "")
                if err.code == 401 and attempt == 0 and challenge.lower().startswith("bearer"):
                    header = self._bearer(challenge[len("bearer") :], scope)
                    continue
                return err.code, dict(err.headers.items()), err.read()
            except (urllib.error.URLError, OSError) as exc:
                raise OperationFailed(f"registry {self.host}: {method} {path}: {exc}") from None
        raise OperationFailed(f"registry {self.host}: {method} {path}: not authorized")

    def _check(self, status: int, body: bytes, what: str, ok: tuple[int, ...] = (200,)) -> None:
        if status not in ok:
            detail = body[:300].decode(errors="replace").strip()
            raise OperationFailed(f"registry {self.host}: {what}: HTTP {status} {detail}")

    def tags(self, repo: str) -> list[str]:
        scope = f"repository:{repo}:pull"
        path: str | None = f"/v2/{repo}/tags/list?n=1000"
        tags: list[str] = []
        while path:
            status, headers, body = self.request("GET", path, scope=scope)
            if status == 404:
                return []
            self._check(status, body, f"tags of {repo}")
            tags += json.loads(body).get("tags") or []
            link = re.match(r"<([^>]+)>", headers.get("Link", ""))
            path = link.group(1) if link else None
        return sorted(set(tags))

    def manifest(self, repo: str, reference: str) -> tuple[str, dict[str, Any]]:
        """(digest, manifest JSON) of a tag or digest."""
        status, headers, body = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            accept=", ".join(MANIFEST_TYPES),
            scope=f"repository:{repo}:pull",
        )
        self._check(status, body, f"manifest {repo}:{reference}")
        digest = headers.get("Docker-Content-Digest") or ""
        if not digest.startswith("sha256:"):
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return digest, json.loads(body)

    def created(self, repo: str, manifest: dict[str, Any]) -> datetime | None:
        """The image's creation time (annotation, else config `created`)."""
        annotated = parse_created((manifest.get("annotations") or {}).get(CREATED_ANNOTATION))
        if annotated is not None:
            return annotated
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            children = manifest.get("manifests") or []
            if not children:
                return None
            _, child = self.manifest(repo, children[0]["digest"])
            return self.created(repo, child)
        config = (manifest.get("config") or {}).get("digest")
        if not config:
            return None
        status, _, body = self.request(
            "GET", f"/v2/{repo}/blobs/{config}", scope=f"repository:{repo}:pull"
        )
        self._check(status, body, f"config blob {repo}@{config}")
        return parse_created(json.loads(body).get("created"))

    def delete_manifest(self, repo: str, digest: str) -> None:
        status, _, body = self.request(
            "DELETE", f"/v2/{repo}/manifests/{digest}", scope=f"repository:{repo}:delete"
        )
        if status == 405:
            raise OperationFailed(
                f"registry {self.host}: DELETE {repo}@{digest}: 405, the registry does not allow "
                "deletes (distribution: storage.delete.enabled: true)"
            )
        self._check(status, body, f"DELETE {repo}@{digest}", ok=(200, 202))
