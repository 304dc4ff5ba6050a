"""`appstack:imageSigning`: which image signatures a stack's deploys require (issue 32 item 4).

The program never reads a registry: these settings are used by `stackctl deploy --image`
(stackctl/ops/signatures.py), which verifies each given digest with cosign BEFORE it changes
anything; the render and the preview stay functions of config. Whether an environment requires
signatures is data (`ENVIRONMENT_DEFAULTS[<env>]["stack"]["imageSigning"]`: prod yes).

`publicKey` is checked as `cosign verify --key <file>` reads it (sigstore's
`cryptoutils.UnmarshalPEMToPublicKey`): one PEM block of type `PUBLIC KEY` holding a PKIX
SubjectPublicKeyInfo (`x509.ParsePKIXPublicKey`), of a key type cosign signs with: ECDSA, RSA or
Ed25519 (sigstore's signature.LoadVerifier).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from components.config.base import CUSTOM_ERRORS, Model

CUSTOM_ERRORS.add("pem_public_key")

_PEM = re.compile(
    r"\A\s*-----BEGIN PUBLIC KEY-----\s*\n(?P<body>[A-Za-z0-9+/=\s]+?)-----END PUBLIC KEY-----\s*\Z"
)
#: DER of the algorithm OIDs x509.ParsePKIXPublicKey maps to a signing key (crypto/x509 oids):
#: id-ecPublicKey 1.2.840.10045.2.1, rsaEncryption 1.2.840.113549.1.1.1, id-Ed25519 1.3.101.112.
KEY_ALGORITHMS = {
    bytes.fromhex("2a8648ce3d0201"): "ECDSA",
    bytes.fromhex("2a864886f70d010101"): "RSA",
    bytes.fromhex("2b6570"): "Ed25519",
}
_ALLOWED = (
    "a PEM public key ('-----BEGIN PUBLIC KEY-----', the output of `cosign public-key --key "
    "<key>`) of an ECDSA, RSA or Ed25519 key"
)


def _der_item(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the DER item at `offset`; ValueError when malformed."""
    if offset + 2 > len(data):
        raise ValueError("truncated")
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or offset + size > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[offset : offset + size], "big")
        offset += size
    if offset + length > len(data):
        raise ValueError("truncated")
    return tag, data[offset : offset + length], offset + length


def _algorithm_oid(der: bytes) -> bytes:
    """SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT
    STRING }; AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY }
    (RFC 5280 4.1): the algorithm's OID."""
    tag, spki, end = _der_item(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a SEQUENCE")
    tag, algorithm, after = _der_item(spki, 0)
    if tag != 0x30:
        raise ValueError("no AlgorithmIdentifier")
    tag, oid, _ = _der_item(algorithm, 0)
    key_tag, _, rest = _der_item(spki, after)
    if tag != 0x06 or key_tag != 0x03 or rest != len(spki):
        raise ValueError("no OID or no BIT STRING")
    return oid


def key_algorithm(pem: str) -> str:
    """The key type of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo); ValueError otherwise."""
    match = _PEM.match(pem)
    if match is None:
        raise ValueError("not one PEM block of type PUBLIC KEY")
    try:
        der = base64.b64decode("".join(match.group("body").split()), validate=True)
    except binascii.Error:
        raise ValueError("its body is not base64") from None
    try:
        oid = _algorithm_oid(der)
    except ValueError:
        raise ValueError("its body is not a DER SubjectPublicKeyInfo") from None
    if oid not in KEY_ALGORITHMS:
        raise ValueError("a key type cosign does not verify with")
    return KEY_ALGORITHMS[oid]


def _public_key(value: str) -> str:
    try:
        key_algorithm(value)
    except ValueError as exc:
        raise PydanticCustomError(
            "pem_public_key",
            "{reason}; expected " + _ALLOWED,
            {"reason": str(exc)},
        ) from None
    return value.strip() + "\n"


PemPublicKey = Annotated[str, AfterValidator(_public_key)]


class ImageSigning(Model):
    """Signed images only: what `stackctl deploy --image` verifies before it changes anything."""

    required: bool = False
    """Refuse an `--image` digest without a valid cosign signature from `publicKey` (the
    environment defaults: prod true)."""
    public_key: PemPublicKey | None = None
    """The public half of the CI's cosign signing key (PEM, `cosign public-key --key <key>`);
    a deploy with `--image` where `required` is true refuses to run without it."""
    transparency_log: bool = False
    """Require each signature's transparency-log (Rekor) entry; false verifies with
    `--insecure-ignore-tlog=true`, for signatures made with `--tlog-upload=false`."""
