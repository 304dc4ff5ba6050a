"""Images: pinned, never latest or untagged, pulled Always (`image-pinned`).

Reads a manifest's image by position (`split_image`): a registry port is not a tag. Digest
syntax and the moving tags come from the value grammar (appstack_grammar).
"""

from __future__ import annotations

from collections.abc import Iterator

from appstack_grammar import MOVING_TAGS, is_digest, split_image
from policy.rules.base import (
    Objects,
    RuleContext,
    Violation,
    containers,
    object_id,
    pod_templates,
    show,
)

__all__ = ["check_image_pinned", "split_image"]


def _image_problems(path: str, image: str, ctx: RuleContext) -> Iterator[str]:
    _, tag, digest = split_image(image)
    if digest is not None and not is_digest(digest):
        yield (
            f"{path} is {show(image)}: digest {show(digest)} is malformed; "
            "expected @sha256:<64 hex>"
        )
    if tag == "latest":
        yield (
            f'{path} is {show(image)}: the "latest" tag is forbidden; pin an '
            "explicit version tag or a digest"
        )
    elif tag is None and digest is None:
        yield (
            f"{path} is {show(image)}: untagged (means latest); pin an explicit "
            "version tag or a digest (@sha256:...)"
        )
    elif ctx.prod and digest is None and tag in MOVING_TAGS:
        moving = ", ".join(sorted(MOVING_TAGS))
        yield (
            f"{path} is {show(image)}: moving tag {show(tag)} in {ctx.environment}; use a "
            f"digest (@sha256:...) or a version tag (not {moving})"
        )


def check_image_pinned(objects: Objects, ctx: RuleContext) -> list[Violation]:
    """Never `latest` or untagged; in prod a digest or a non-moving tag; imagePullPolicy Always."""
    rule = "image-pinned"
    out: list[Violation] = []
    for template in pod_templates(objects):
        oid = object_id(template.owner)
        for container in containers(template):
            path = f"{container.path}.image"
            image = container.spec.get("image")
            if not isinstance(image, str) or not image:
                out.append(Violation(rule, oid, f"{path} is unset; set a pinned image"))
                continue
            out.extend(Violation(rule, oid, m) for m in _image_problems(path, image, ctx))
            policy = container.spec.get("imagePullPolicy")
            if policy != "Always":
                out.append(
                    Violation(
                        rule,
                        oid,
                        f"{container.path}.imagePullPolicy is {show(policy)}; it must be Always",
                    )
                )
    return out
