"""A small S3 client (standard library only) for what stackctl reads of an `s3://` state
backend: list, get and delete objects (and create a bucket, for a test backend).

Why not boto3: stackctl needs four calls, and boto3 with botocore adds about 100 MB to every
install of the runtime venv (`make test`, CI images); the AWS Signature Version 4 algorithm
below is short and fully specified ("Authenticating Requests: Using the Authorization Header
(AWS Signature Version 4)", Amazon S3 API Reference; the unit tests check it against the
examples published there).

The backend URL is the one Pulumi opens with gocloud.dev's s3blob driver,
`s3://<bucket>[/<prefix>]?endpoint=<host:port or URL>&s3ForcePathStyle=true&region=<r>`; the
query names are those of the two CLIs this project runs (gocloud.dev v0.37 `aws.ConfigFromURLParams`
for CLI v3.219: `region`, `endpoint`, `disableSSL`, `s3ForcePathStyle`, `profile`, `awssdk`;
v0.46 s3blob `URLOpener` for v3.274: also `use_path_style`). A `<prefix>` path puts the whole
state under that key prefix (pulumi pkg/backend/diy/backend.go: a prefixed bucket). An endpoint
without a scheme gets `http://` when `disableSSL` is true, else `https://`; one with a scheme
keeps it, as AWS SDK v1 did and v3.274 translates (pkg/backend/diy/backend.go
`translateLegacyS3Params`, v3.274.0).

Credentials, as the AWS SDKs read static ones: the URL's `profile` from the shared credentials
file; else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`); else the
profile `AWS_PROFILE` (or `default`) of `AWS_SHARED_CREDENTIALS_FILE` (default
`~/.aws/credentials`). Region: the URL's, else `AWS_REGION`, `AWS_DEFAULT_REGION`, the
profile's `region` in `AWS_CONFIG_FILE` (`~/.aws/config`), else `us-east-1`. Credentials never
appear in a message, a repr or a log line.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import hmac
import http.client
import os
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from stackctl.errors import UserError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
DEFAULT_REGION = "us-east-1"
TIMEOUT = 30.0
TRUE = ("1", "t", "true")  # Go's strconv.ParseBool, lower-cased


class S3Error(Exception):
    """An S3 request failed: the operation, the HTTP status and S3's error code and message."""


@dataclass(frozen=True, repr=False)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key[:4]}..., secret=<hidden>)"


@dataclass(frozen=True)
class S3Location:
    """Where an `s3://` backend keeps its objects."""

    bucket: str
    prefix: str  # "" or "<path>/"
    scheme: str  # http | https
    host: str  # host[:port] of the endpoint
    path_style: bool
    region: str
    profile: str

    @property
    def described(self) -> str:
        """For messages: bucket and endpoint, never the whole URL."""
        return f"s3://{self.bucket}/{self.prefix} at {self.scheme}://{self.host}"


def _flag(query: Mapping[str, list[str]], *names: str) -> bool | None:
    for name in names:
        if name in query:
            return query[name][0].strip().lower() in TRUE
    return None


def parse_backend_url(url: str, environ: Mapping[str, str] | None = None) -> S3Location:
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise UserError(f"not an s3:// backend URL with a bucket: {parts.scheme}://{parts.netloc}")
    query = parse_qs(parts.query)
    profile = (query.get("profile") or [""])[0]
    region = (
        (query.get("region") or [""])[0]
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or profile_region(profile or env.get("AWS_PROFILE") or "default", env)
        or DEFAULT_REGION
    )
    endpoint = (query.get("endpoint") or [""])[0]
    plain = bool(_flag(query, "disableSSL"))
    if "://" in endpoint:
        given = urlsplit(endpoint)
        scheme, host = given.scheme, given.netloc
    elif endpoint:
        scheme, host = ("http" if plain else "https"), endpoint
    else:
        scheme, host = ("http" if plain else "https"), f"s3.{region}.amazonaws.com"
    prefix = parts.path.strip("/")
    return S3Location(
        bucket=parts.hostname,
        prefix=f"{prefix}/" if prefix else "",
        scheme=scheme,
        host=host,
        path_style=bool(_flag(query, "use_path_style", "s3ForcePathStyle")),
        region=region,
        profile=profile,
    )


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    with contextlib.suppress(OSError, configparser.Error):
        parser.read(path, encoding="utf-8")
    return parser


def _aws_file(env: Mapping[str, str], variable: str, name: str) -> Path:
    return Path(env.get(variable) or Path(env.get("HOME") or Path.home()) / ".aws" / name)


def profile_region(profile: str, env: Mapping[str, str]) -> str:
    config = _aws_file(env, "AWS_CONFIG_FILE", "config")
    parser = _ini(config)
    section = profile if profile == "default" else f"profile {profile}"
    return parser.get(section, "region", fallback="") if parser.has_section(section) else ""


def credentials(location: S3Location, environ: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    if not location.profile and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN", "")
        )
    profile = location.profile or env.get("AWS_PROFILE") or "default"
    path = _aws_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")
    parser = _ini(path)
    if parser.has_section(profile):
        key = parser.get(profile, "aws_access_key_id", fallback="")
        secret = parser.get(profile, "aws_secret_access_key", fallback="")
        if key and secret:
            token = parser.get(profile, "aws_session_token", fallback="")
            return Credentials(key, secret, token)
    raise UserError(
        f"no AWS credentials for the state backend {location.described}: set "
        f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile {profile!r} in {path}"
    )


# --------------------------------------------------------------------------------------------
# Signature Version 4


def uri_encode(text: str, *, slash: bool) -> str:
    """The spec's UriEncode: every byte but the unreserved characters A-Z a-z 0-9 - _ . ~
    percent-encoded in upper case; `/` kept in a path (`slash`), encoded in a query."""
    return quote(text, safe="-_.~/" if slash else "-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    pairs = sorted(
        (uri_encode(k, slash=False), uri_encode(v, slash=False)) for k, v in params.items()
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), day)
    for part in (region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    return key


def authorization(
    creds: Credentials,
    *,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
    region: str,
    amz_date: str,
) -> str:
    """The `Authorization` header of a request whose `headers` (names any case) are all
    signed; `path` is the canonical URI (already URI-encoded)."""
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query(params),
            *(f"{name}:{signed[name]}" for name in names),
            "",
            ";".join(names),
            payload_hash,
        ]
    )
    day = amz_date[:8]
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    signature = hmac.new(
        signing_key(creds.secret_key, day, region), to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return (
        f"{ALGORITHM} Credential={creds.access_key}/{scope},"
        f"SignedHeaders={';'.join(names)},Signature={signature}"
    )


# --------------------------------------------------------------------------------------------
# The client


def _error_text(status: int, body: bytes) -> str:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return f"HTTP {status}"
    found = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in root}
    return f"HTTP {status} {found.get('Code', '')}: {found.get('Message', '')}".strip()


class S3Client:
    """List, get, put and delete objects of one backend location (keys relative to its prefix)."""

    def __init__(
        self,
        location: S3Location,
        creds: Credentials,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.location = location
        self._creds = creds
        self._clock = clock

    @classmethod
    def for_backend(cls, url: str, environ: Mapping[str, str] | None = None) -> S3Client:
        location = parse_backend_url(url, environ)
        return cls(location, credentials(location, environ))

    def _target(self, key: str) -> tuple[str, str]:
        """(Host header, canonical path) of `key` ("" for the bucket itself)."""
        loc = self.location
        if loc.path_style:
            host, path = loc.host, f"/{loc.bucket}/{key}" if key else f"/{loc.bucket}"
        else:
            host, path = f"{loc.bucket}.{loc.host}", f"/{key}"
        return host, uri_encode(path, slash=True)

    def request(
        self, method: str, key: str, params: Mapping[str, str] | None = None, body: bytes = b""
    ) -> bytes:
        """One signed request; the response body, or S3Error naming the operation."""
        query = dict(params or {})
        host, path = self._target(key)
        amz_date = self._clock().strftime("%Y%m%dT%H%M%SZ")
        payload_hash = hashlib.sha256(body).hexdigest()
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
        if self._creds.session_token:
            headers["x-amz-security-token"] = self._creds.session_token
        headers["authorization"] = authorization(
            self._creds, method=method, path=path, params=query, headers=headers,
            payload_hash=payload_hash, region=self.location.region, amz_date=amz_date,
        )  # fmt: skip
        target = path + (f"?{canonical_query(query)}" if query else "")
        what = f"S3 {method} {key or self.location.bucket} on {self.location.described}"
        try:
            conn = self._connection(host)
            try:
                conn.request(method, target, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            raise S3Error(f"{what} failed: {type(exc).__name__}: {exc}") from None
        if response.status >= 300:
            raise S3Error(f"{what} failed: {_error_text(response.status, data)}")
        return data

    def _connection(self, host: str) -> http.client.HTTPConnection:
        if self.location.scheme == "http":
            return http.client.HTTPConnection(host, timeout=TIMEOUT)
        bundle = os.environ.get("AWS_CA_BUNDLE") or None
        context = ssl.create_default_context(cafile=bundle)
        return http.client.HTTPSConnection(host, timeout=TIMEOUT, context=context)

    def list(self, prefix: str) -> list[str]:
        """Keys (relative to the backend's prefix) that start with `prefix`: ListObjectsV2,
        every page."""
        keys: list[str] = []
        token = ""
        while True:
            params = {"list-type": "2", "prefix": self.location.prefix + prefix}
            if token:
                params["continuation-token"] = token
            root = ET.fromstring(self.request("GET", "", params))
            token = ""
            for node in root:
                tag = node.tag.rsplit("}", 1)[-1]
                if tag == "Contents":
                    for child in node:
                        if child.tag.rsplit("}", 1)[-1] == "Key" and child.text:
                            keys.append(child.text.removeprefix(self.location.prefix))
                elif tag == "NextContinuationToken":
                    token = node.text or ""
            if not token:
                return sorted(keys)

    def get(self, key: str) -> bytes:
        return self.request("GET", self.location.prefix + key)

    def put(self, key: str, body: bytes) -> None:
        self.request("PUT", self.location.prefix + key, body=body)

    def delete(self, key: str) -> None:
        self.request("DELETE", self.location.prefix + key)

    def create_bucket(self) -> None:
        """CreateBucket (in us-east-1 no configuration body is needed)."""
        body = b""
        if self.location.region != DEFAULT_REGION:
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.location.region}</LocationConstraint>"
                "</CreateBucketConfiguration>"
            ).encode()
        self.request("PUT", "", body=body)
