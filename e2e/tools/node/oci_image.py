"""Write a one-layer OCI image archive (an OCI image layout in a tar, as `ctr images import`
and `skopeo copy oci-archive:` read it) from files on this machine.

Used by build.sh for the images a real e2e node runs, which no registry can provide here: the
pod sandbox (`pause`, built from kubernetes' pause.c) and the test image (Debian's
busybox-static). Deterministic: fixed mtimes, owners and order, so the same inputs give the same
digests. Standard library only.

    oci_image.py --name localhost/x/pause:3.10.2 --out pause.oci.tar \
        --user 65535:65535 --entrypoint /pause --file /tmp/pause:pause:0755
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# Epoch of the image's files and of `created` (reproducible builds: nothing depends on now).
EPOCH = 0


@dataclass(frozen=True)
class Entry:
    path: str  # inside the image, relative (no leading /)
    source: Path | None = None  # a regular file's content
    mode: int = 0o755
    link: str | None = None  # a symlink's target
    directory: bool = False


def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def layer_tar(entries: list[Entry]) -> bytes:
    """The uncompressed layer: every parent directory, then the entries, in path order."""
    dirs = {e.path: e.mode for e in entries if e.directory}
    for entry in entries:
        parts = entry.path.split("/")[:-1]
        for i in range(len(parts)):
            dirs.setdefault("/".join(parts[: i + 1]), 0o755)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(_tarinfo(d + "/", tarfile.DIRTYPE, dirs[d]))
        for entry in sorted(entries, key=lambda e: e.path):
            if entry.directory:
                continue
            if entry.link is not None:
                info = _tarinfo(entry.path, tarfile.SYMTYPE, 0o777)
                info.linkname = entry.link
                tar.addfile(info)
            else:
                assert entry.source is not None
                data = entry.source.read_bytes()
                info = _tarinfo(entry.path, tarfile.REGTYPE, entry.mode, len(data))
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def image_archive(name: str, entries: list[Entry], config: dict[str, Any]) -> bytes:
    """The OCI layout (oci-layout, index.json, blobs/sha256/*) as one tar."""
    raw = layer_tar(entries)
    layer = gzip.compress(raw, mtime=EPOCH)
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "e2e/tools/node"}],
    }
    config_blob = _json(image_config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": _digest(config_blob),
            "size": len(config_blob),
        },
        "layers": [{"mediaType": MEDIA_LAYER, "digest": _digest(layer), "size": len(layer)}],
    }
    manifest_blob = _json(manifest)
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": _digest(manifest_blob),
                "size": len(manifest_blob),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    # containerd's importer names the image after this annotation...
                    "io.containerd.image.name": name,
                    # ...and skopeo/umoci after this one (the tag within the layout).
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    files = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": _json(index),
    }
    for blob in (layer, config_blob, manifest_blob):
        files["blobs/sha256/" + _digest(blob).removeprefix("sha256:")] = blob
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs/", "blobs/sha256/"):
            tar.addfile(_tarinfo(d, tarfile.DIRTYPE, 0o755))
        for path in sorted(files):
            data = files[path]
            tar.addfile(_tarinfo(path, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return out.getvalue()


def _file(spec: str) -> Entry:
    source, path, mode = spec.split(":")
    return Entry(path=path.lstrip("/"), source=Path(source), mode=int(mode, 8))


def _symlink(spec: str) -> Entry:
    path, target = spec.split(":")
    return Entry(path=path.lstrip("/"), link=target)


def _dir(spec: str) -> Entry:
    path, mode = spec.split(":")
    return Entry(path=path.strip("/"), mode=int(mode, 8), directory=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="image reference, e.g. localhost/x/y:1")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--file", action="append", default=[], help="SOURCE:PATH:OCTAL_MODE")
    parser.add_argument("--symlink", action="append", default=[], help="PATH:TARGET")
    parser.add_argument("--dir", action="append", default=[], help="PATH:OCTAL_MODE")
    parser.add_argument("--user", default="")
    parser.add_argument("--entrypoint", default="")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE")
    args = parser.parse_args(argv)
    entries = [_file(s) for s in args.file] + [_symlink(s) for s in args.symlink]
    entries += [_dir(s) for s in args.dir]
    config: dict[str, Any] = {}
    if args.user:
        config["User"] = args.user
    if args.entrypoint:
        config["Entrypoint"] = [args.entrypoint]
    if args.env:
        config["Env"] = list(args.env)
    args.out.write_bytes(image_archive(args.name, entries, config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
