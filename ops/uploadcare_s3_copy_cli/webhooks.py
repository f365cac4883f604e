"""`webhook register`: subscribes the stack's WebhookUrl to `file.uploaded` (and, with `--events`, to
`file.deleted`, `file.infected` or `file.info_updated`) in Uploadcare (`POST /webhooks/`, version 0.7, active,
signed). When the secret has no signing secret yet, one is generated and stored in Secrets Manager before Uploadcare
hears of it, so the webhook function never receives a signature it cannot check. An existing subscription is
compared, never duplicated."""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from uploadcare_s3_copy.source_changes import COPY_REQUEST_EVENTS, FILE_INFO_UPDATED, FILE_UPLOADED
from uploadcare_s3_copy_cli.base import EXIT_OK, EXIT_PROBLEMS, MARK_FAIL, MARK_OK, CliError, UsageError
from uploadcare_s3_copy_cli.context import Context

EVENT = FILE_UPLOADED
# The events the webhook function acts on (docs/design.md, "Deletions at the source"); one subscription each.
EVENTS = (*COPY_REQUEST_EVENTS, FILE_INFO_UPDATED)
VERSION = "0.7"
MAX_SIGNING_SECRET_CHARS = 32  # Uploadcare: "at most 32 characters"
SIGNING_SECRET_BYTES = 24  # token_urlsafe(24) is exactly 32 characters
MAX_TARGET_URL_CHARS = 255
SIGNING_SECRET_FIELD = "webhook_signing_secret"  # noqa: S105 - the field's name, not a secret
DASHBOARD_FIX = (
    "in the Uploadcare dashboard (API keys → Webhooks) edit webhook #{id}, or delete it and run "
    "`uploadcare-s3-copy webhook register` again"
)


def find_webhook(hooks: Iterable[Mapping[str, Any]], target_url: str, event: str = EVENT) -> Mapping[str, Any] | None:
    return next((hook for hook in hooks if hook.get("target_url") == target_url and hook.get("event") == event), None)


def webhook_problems(hook: Mapping[str, Any], stored_signing_secret: str) -> list[str]:
    """What keeps this subscription from delivering verifiable `file.uploaded` events to the stack (empty: none)."""
    problems: list[str] = []
    if hook.get("is_active") is not True:
        problems.append("it is not active")
    if str(hook.get("version") or "") != VERSION:
        problems.append(f"its version is {hook.get('version')!r}, not {VERSION!r}")
    signing_secret = hook.get("signing_secret")
    if signing_secret is not None:  # GET /webhooks/ shows it; an answer without the field cannot be compared
        if not signing_secret:
            problems.append("it has no signing secret (deliveries would be rejected with 401)")
        elif not secrets.compare_digest(str(signing_secret).encode(), stored_signing_secret.encode()):
            problems.append(f"its signing secret is not the secret's {SIGNING_SECRET_FIELD} (deliveries get 401)")
    return problems


def summary(hook: Mapping[str, Any]) -> str:
    active = "active" if hook.get("is_active") is True else "inactive"
    signed = "signed" if hook.get("signing_secret") else "unsigned"
    return f"webhook #{hook.get('id')} {hook.get('target_url')} ({hook.get('event')}, {active}, {signed}, " + (
        f"version {hook.get('version') or '-'})"
    )


def command(ctx: Context, args: argparse.Namespace) -> int:
    resources = ctx.resources
    resources.require("webhook register", "secret_id", "webhook_url")
    target_url = str(resources.webhook_url)
    if len(target_url) > MAX_TARGET_URL_CHARS or not target_url.startswith(("https://", "http://")):
        raise UsageError(f"the webhook URL must be an http(s) URL of at most {MAX_TARGET_URL_CHARS} characters")
    client = ctx.uploadcare()
    value = ctx.secret_value()
    stored = str(value.get(SIGNING_SECRET_FIELD) or "")
    if len(stored) > MAX_SIGNING_SECRET_CHARS:
        raise CliError(
            f"the secret's {SIGNING_SECRET_FIELD} has {len(stored)} characters; Uploadcare takes at most "
            f"{MAX_SIGNING_SECRET_CHARS}: store a shorter one (e.g. `openssl rand -hex 16`)"
        )

    hooks = client.list_webhooks()
    wanted = list(args.events)
    existing = {event: find_webhook(hooks, target_url, event) for event in wanted}
    broken = 0
    for event in wanted:
        hook = existing[event]
        if hook is None:
            continue
        problems = webhook_problems(hook, stored)
        if problems:
            ctx.say(f"{MARK_FAIL} {summary(hook)} exists, but {'; '.join(problems)}")
            ctx.say("  fix: " + DASHBOARD_FIX.format(id=hook.get("id")))
            broken += 1
        else:
            ctx.say(f"{MARK_OK} Already registered: {summary(hook)}. Nothing changed.")
    missing = [event for event in wanted if existing[event] is None]
    if missing and not stored:
        stored = secrets.token_urlsafe(SIGNING_SECRET_BYTES)
        # Secrets Manager first: a delivery signed with a secret the function cannot read yet would be a 401.
        secret_id = str(resources.secret_id)
        updated = {**value, SIGNING_SECRET_FIELD: stored}
        ctx.aws("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(updated))
        ctx.say(f"{MARK_OK} Stored a new {SIGNING_SECRET_FIELD} ({len(stored)} characters) in secret {secret_id}")
    for event in missing:
        created = client.create_webhook(target_url, signing_secret=stored, event=event, is_active=True)
        ctx.say(f"{MARK_OK} Registered {summary(created)}")
    return EXIT_PROBLEMS if broken else EXIT_OK


def parse_events(raw: str) -> tuple[str, ...]:
    """`--events file.uploaded,file.deleted`: known event names, each once, in the order given."""
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    unknown = [name for name in names if name not in EVENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(map(repr, unknown)) or 'no event'}: the events are {', '.join(EVENTS)}"
        )
    return names
