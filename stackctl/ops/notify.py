"""Deploy notifications: a failed deploy and a rollback, posted to a chat webhook.

The webhook URL is a secret: it comes from `APPSTACK_NOTIFY_WEBHOOK_URL`, or from the file named
by `APPSTACK_NOTIFY_WEBHOOK_URL_FILE` (a mounted secret), and is never printed, logged or written
anywhere. Neither set: notifications are off and nothing is sent.

The payload is the one Slack's incoming webhooks take (https://api.slack.com/messaging/webhooks:
a JSON POST with `text`, the notification fallback, and optional Block Kit `blocks`), which
Mattermost, Rocket.Chat and Google Chat's Slack-compatible endpoints accept too. It names the
stack, its environment, the apps and images, the failure reason in one line and, for a rollback,
the version rolled back to.

Sending is one POST with a bounded timeout and no retry. A notification that fails prints one
line (never the URL) and changes nothing else: the command keeps its own exit status.

`python -m stackctl.ops.notify ...` is the same sender for the CI scripts (scripts/ci/common.sh
`notify`); it always exits 0 once its arguments parse.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from stackctl.errors import UserError
from stackctl.ops.stacks import read_stack_images, stack_environment

URL_ENV = "APPSTACK_NOTIFY_WEBHOOK_URL"
URL_FILE_ENV = "APPSTACK_NOTIFY_WEBHOOK_URL_FILE"
TIMEOUT_SECONDS = 10.0
# Slack: a section's text holds at most 3000 characters.
_SECTION_LIMIT = 3000
_REASON_LIMIT = 300

Event = Literal["deploy-failed", "rolled-back", "rollback-failed"]
EVENTS: tuple[Event, ...] = ("deploy-failed", "rolled-back", "rollback-failed")


@dataclass(frozen=True)
class Notice:
    """What happened to which stack; `rolled_back_to` is the history version, for rollbacks."""

    event: Event
    stack: str
    reason: str
    images: Mapping[str, str] = field(default_factory=dict)
    rolled_back_to: int | None = None
    source: str = "stackctl"

    @property
    def environment(self) -> str:
        try:
            return stack_environment(self.stack)
        except UserError:
            return "unknown"

    def title(self) -> str:
        target = f" to v{self.rolled_back_to}" if self.rolled_back_to is not None else ""
        if self.event == "deploy-failed":
            return f"Deploy of {self.stack} ({self.environment}) FAILED"
        if self.event == "rolled-back":
            return f"{self.stack} ({self.environment}) rolled back{target}"
        return f"Rollback of {self.stack} ({self.environment}){target} FAILED"


def one_line(text: str) -> str:
    """The first non-empty line, at most 300 characters."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else "no reason given")[:_REASON_LIMIT]


def payload(notice: Notice) -> dict[str, Any]:
    """The Slack incoming-webhook body: `text` (fallback) plus `blocks`."""
    reason = one_line(notice.reason)
    images = ", ".join(f"{app}={image}" for app, image in sorted(notice.images.items())) or "-"
    apps = ", ".join(sorted(notice.images)) or "-"
    text = f"{notice.title()}: {reason}"
    fields = [
        f"*Stack*\n{notice.stack}",
        f"*Environment*\n{notice.environment}",
        f"*Apps*\n{apps}",
        f"*Sent by*\n{notice.source}",
    ]
    if notice.rolled_back_to is not None:
        fields.append(f"*Rolled back to*\nv{notice.rolled_back_to}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{notice.title()}*\n{reason}"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Images*\n{images}"[:_SECTION_LIMIT]},
        },
    ]
    return {"text": text, "blocks": blocks}


@dataclass(frozen=True)
class Notifier:
    """Posts notices to one webhook. `from_environment` is None when notifications are off."""

    url: str = field(repr=False)
    timeout: float = TIMEOUT_SECONDS
    err: TextIO | None = field(default=None, repr=False)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, err: TextIO | None = None
    ) -> Notifier | None:
        env = os.environ if environ is None else environ
        url = env.get(URL_ENV, "").strip()
        path = env.get(URL_FILE_ENV, "").strip()
        if not url and path:
            try:
                url = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                _warn(err, f"notification not sent: cannot read {URL_FILE_ENV} ({exc.strerror})")
                return None
        return cls(url=url, err=err) if url else None

    def send(self, notice: Notice) -> bool:
        """One POST, no retry; True when the webhook answered 2xx. Never raises."""
        if not self.url.startswith(("https://", "http://")):
            _warn(self.err, "notification not sent: the webhook URL is not http(s)")
            return False
        body = json.dumps(payload(notice)).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            _warn(self.err, f"notification not sent: the webhook answered HTTP {exc.code}")
            return False
        except (OSError, ValueError) as exc:
            # refused, unresolvable, timed out: only the cause's type, its message may hold the URL
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            name = type(cause).__name__ if isinstance(cause, BaseException) else "URLError"
            _warn(self.err, f"notification not sent: {name} reaching the webhook")
            return False
        return True


def _warn(err: TextIO | None, text: str) -> None:
    print(f"warning: {text}", file=err if err is not None else sys.stderr, flush=True)


def parse_images(items: list[str]) -> dict[str, str]:
    """`svc=image` items (also comma-separated, `-` for none) -> service -> image."""
    images: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            service, sep, image = part.strip().partition("=")
            if sep and service and image:
                images[service] = image
    return images


def main(argv: list[str] | None = None) -> int:
    """`python -m stackctl.ops.notify <event> <stack> --reason ...`: the CI scripts' sender."""
    parser = argparse.ArgumentParser(
        prog="python -m stackctl.ops.notify",
        description=f"Post a deploy notification to the webhook in {URL_ENV} (or the file in "
        f"{URL_FILE_ENV}); nothing when neither is set. Exit 0 even if sending fails.",
    )
    parser.add_argument("event", choices=EVENTS)
    parser.add_argument("stack")
    parser.add_argument("--reason", required=True, help="what failed, one line")
    parser.add_argument(
        "--image", action="append", default=[], metavar="SERVICE=IMAGE", help="repeatable"
    )
    parser.add_argument("--rolled-back-to", type=int, default=None, metavar="VERSION")
    parser.add_argument("--source", default="ci")
    parser.add_argument(
        "--project-dir",
        default=None,
        help="read the apps' images from Pulumi.<stack>.yaml here when no --image is given",
    )
    args = parser.parse_args(argv)
    notifier = Notifier.from_environment()
    if notifier is None:
        return 0
    images = parse_images(args.image)
    if not images and args.project_dir:
        images = read_stack_images(Path(args.project_dir), args.stack)
    notice = Notice(
        event=args.event,
        stack=args.stack,
        reason=args.reason,
        images=images,
        rolled_back_to=args.rolled_back_to,
        source=args.source,
    )
    if notifier.send(notice):
        print(f"notification sent: {notice.title()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
