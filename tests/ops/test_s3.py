"""stackctl's S3 client (stackctl/ops/s3.py) for an `s3://` state backend (issue 29 scenario 5).

Oracles: the signatures are the ones the Amazon S3 API Reference publishes for its Signature
Version 4 examples ("Examples: Signature calculations for the Authorization header", bucket
`examplebucket`, key AKIAIOSFODNN7EXAMPLE, 2013-05-24); the URL options are gocloud.dev's
(v0.37 `aws.ConfigFromURLParams`, v0.46 s3blob `URLOpener`) as the two pinned CLIs read them;
the listing is the ListObjectsV2 response shape of the S3 API Reference. The client against a
real S3 API server is `make e2e-failure` (versitygw)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from stackctl.errors import OperationFailed, UserError
from stackctl.ops.locks import backend_files, read_locks
from stackctl.ops.s3 import (
    Credentials,
    S3Client,
    S3Error,
    authorization,
    credentials,
    parse_backend_url,
    uri_encode,
)

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
DATE = "20130524T000000Z"
HOST = "examplebucket.s3.amazonaws.com"
SECRET = "s3cr3t-backend-key-never-shown"


def test_get_object_is_signed_as_the_published_example() -> None:
    header = authorization(
        EXAMPLE, method="GET", path="/test.txt", params={},
        headers={"Host": HOST, "Range": "bytes=0-9", "x-amz-content-sha256": EMPTY,
                 "x-amz-date": DATE},
        payload_hash=EMPTY, region="us-east-1", amz_date=DATE,
    )  # fmt: skip
    assert header == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_put_object_with_an_encoded_key_is_signed_as_the_published_example() -> None:
    body = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    header = authorization(
        EXAMPLE, method="PUT", path=uri_encode("/test$file.text", slash=True), params={},
        headers={"Host": HOST, "Date": "Fri, 24 May 2013 00:00:00 GMT",
                 "x-amz-storage-class": "REDUCED_REDUNDANCY", "x-amz-content-sha256": body,
                 "x-amz-date": DATE},
        payload_hash=body, region="us-east-1", amz_date=DATE,
    )  # fmt: skip
    assert header.endswith(
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )


def test_a_listing_query_is_signed_as_the_published_example() -> None:
    header = authorization(
        EXAMPLE, method="GET", path="/", params={"max-keys": "2", "prefix": "J"},
        headers={"Host": HOST, "x-amz-content-sha256": EMPTY, "x-amz-date": DATE},
        payload_hash=EMPTY, region="us-east-1", amz_date=DATE,
    )  # fmt: skip
    assert header.endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )


@pytest.mark.parametrize(
    ("url", "scheme", "host", "path_style"),
    [
        # gocloud v0.37 (AWS SDK v1) names, the form docs/ci.md gives for a non-AWS server
        ("s3://state?endpoint=127.0.0.1:9000&s3ForcePathStyle=true&disableSSL=true"
         "&region=us-east-1", "http", "127.0.0.1:9000", True),
        # gocloud v0.46 (SDK v2) name of path style
        ("s3://state?endpoint=127.0.0.1:9000&use_path_style=true&disableSSL=true",
         "http", "127.0.0.1:9000", True),
        # a scheme in the endpoint wins over disableSSL (SDK v1; pulumi PR #24593)
        ("s3://state?endpoint=https://s3.example.com&disableSSL=true", "https",
         "s3.example.com", False),
        ("s3://state?endpoint=s3.example.com:8443", "https", "s3.example.com:8443", False),
        ("s3://state?region=eu-west-1", "https", "s3.eu-west-1.amazonaws.com", False),
    ],
)  # fmt: skip
def test_the_backend_url_options_are_read_as_gocloud_reads_them(
    url: str, scheme: str, host: str, path_style: bool
) -> None:
    loc = parse_backend_url(url, environ={})
    assert (loc.bucket, loc.scheme, loc.host, loc.path_style) == ("state", scheme, host, path_style)


def test_a_path_in_the_url_is_the_key_prefix_of_the_whole_state() -> None:
    # pulumi pkg/backend/diy/backend.go: blob.PrefixedBucket(bucket, "<path>/")
    assert parse_backend_url("s3://state/teams/appstack?region=x", environ={}).prefix == (
        "teams/appstack/"
    )


def test_the_region_falls_back_to_the_environment_then_us_east_1(tmp_path: Path) -> None:
    assert parse_backend_url("s3://b", environ={"AWS_REGION": "eu-north-1"}).region == "eu-north-1"
    config = tmp_path / "config"
    config.write_text("[profile ci]\nregion = ap-south-1\n")
    env = {"AWS_PROFILE": "ci", "AWS_CONFIG_FILE": str(config)}
    assert parse_backend_url("s3://b", environ=env).region == "ap-south-1"
    assert parse_backend_url("s3://b", environ={"HOME": str(tmp_path)}).region == "us-east-1"


def test_credentials_come_from_the_environment_or_the_profile(tmp_path: Path) -> None:
    loc = parse_backend_url("s3://b?profile=team", environ={})
    shared = tmp_path / "credentials"
    shared.write_text(f"[team]\naws_access_key_id = AKIATEAM\naws_secret_access_key = {SECRET}\n")
    env = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_SHARED_CREDENTIALS_FILE": str(shared)}  # fmt: skip
    assert credentials(loc, env).access_key == "AKIATEAM"  # the URL's profile wins
    plain = parse_backend_url("s3://b", environ={})
    assert credentials(plain, env).access_key == "AKIAENV"
    assert SECRET not in repr(credentials(loc, env))


def test_no_credentials_is_a_clear_error(tmp_path: Path) -> None:
    loc = parse_backend_url("s3://b", environ={})
    with pytest.raises(UserError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        credentials(loc, {"HOME": str(tmp_path)})


# ---------------------------------------------------------------- against a local HTTP server

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _listing(keys: list[str], token: str = "") -> bytes:
    contents = "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in keys)
    more = (
        f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
        if token
        else "<IsTruncated>false</IsTruncated>"
    )
    body = f"<Name>state</Name>{contents}{more}"
    return f'<ListBucketResult xmlns="{NS}">{body}</ListBucketResult>'.encode()


class Bucket(http.server.BaseHTTPRequestHandler):
    """A bucket with two pages of listing and one lock object; anything else is 403 with S3's
    error document. Records every request line and its Authorization header."""

    seen: ClassVar[list[tuple[str, str, str]]] = []
    objects: ClassVar[dict[str, bytes]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("Authorization", "")))
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/state" and query.get("list-type") == ["2"]:
            prefix = query["prefix"][0]
            keys = sorted(k for k in self.objects if k.startswith(prefix))
            if "continuation-token" not in query:
                return self._send(200, _listing(keys[:1], token="page 2"))
            return self._send(200, _listing(keys[1:]))
        key = url.path.removeprefix("/state/")
        if key in self.objects:
            return self._send(200, self.objects[key])
        return self._send(
            403,
            b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        )

    def do_DELETE(self) -> None:
        self.seen.append(("DELETE", self.path, self.headers.get("Authorization", "")))
        self.objects.pop(urlsplit(self.path).path.removeprefix("/state/"), None)
        self._send(204, b"")


@pytest.fixture
def bucket() -> Iterator[str]:
    lock = b'{"pid": 1, "username": "ci", "hostname": "runner-7", "timestamp": "T"}'
    Bucket.seen = []
    Bucket.objects = {
        "team/.pulumi/locks/organization/appstack/dev/a.json": lock,
        "team/.pulumi/locks/organization/appstack/prod/b.json": lock,
        "team/.pulumi/stacks/appstack/dev.json": b"{}",
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bucket)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"s3://state/team?endpoint=127.0.0.1:{server.server_port}&s3ForcePathStyle=true&disableSSL=true"
    server.shutdown()


ENV = {"AWS_ACCESS_KEY_ID": "AKIATEST", "AWS_SECRET_ACCESS_KEY": SECRET}


def test_a_listing_follows_every_page_and_strips_the_prefix(bucket: str) -> None:
    client = S3Client.for_backend(bucket, ENV)
    assert client.list(".pulumi/locks/") == [
        ".pulumi/locks/organization/appstack/dev/a.json",
        ".pulumi/locks/organization/appstack/prod/b.json",
    ]
    second = Bucket.seen[1][1]
    assert "continuation-token=page%202" in second and "prefix=team%2F.pulumi%2Flocks%2F" in second
    assert all(auth.startswith("AWS4-HMAC-SHA256 Credential=AKIATEST/") for *_, auth in Bucket.seen)


def test_the_stacks_locks_are_read_and_removed_through_the_bucket(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    [lock] = read_locks(bucket, "appstack", "dev")
    assert (lock.hostname, lock.where) == (
        "runner-7", "s3://state/team/.pulumi/locks/organization/appstack/dev/a.json"
    )  # fmt: skip
    files = backend_files(bucket)
    assert files is not None
    files.remove(lock.key)
    assert Bucket.seen[-1][:2] == (
        "DELETE",
        "/state/team/.pulumi/locks/organization/appstack/dev/a.json",
    )
    assert read_locks(bucket, "appstack", "dev") == []
    assert [other.key for other in read_locks(bucket, "*", "prod")] == [
        ".pulumi/locks/organization/appstack/prod/b.json"
    ]


def test_an_s3_error_names_the_operation_and_code_never_the_secret(bucket: str) -> None:
    client = S3Client.for_backend(bucket, ENV)
    with pytest.raises(S3Error) as caught:
        client.get(".pulumi/missing.json")
    message = str(caught.value)
    assert "S3 GET team/.pulumi/missing.json" in message
    assert "HTTP 403 AccessDenied: Access Denied" in message and SECRET not in message


def test_an_unreachable_backend_fails_the_lock_check_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(OperationFailed) as caught:
        read_locks("s3://state?endpoint=127.0.0.1:9&disableSSL=true", "appstack", "dev")
    message = str(caught.value)
    assert message.startswith("reading the locks of dev: S3 GET state") and SECRET not in message


def test_the_e2e_gateways_url_is_loopback_plain_http_path_style() -> None:
    from e2e.s3 import S3Gateway

    gateway = S3Gateway(port=40123)
    loc = parse_backend_url(gateway.backend_url, environ={})
    assert (loc.scheme, loc.host, loc.path_style, loc.bucket) == (
        "http", "127.0.0.1:40123", True, "appstack-state"
    )  # fmt: skip
    assert gateway.secret_key not in repr(gateway)
    assert credentials(loc, gateway.environment).access_key == gateway.access_key
