"""What Slack gets when a listener (or middleware) fails: a clear answer, never a traceback.

bolt's default answers a bare 500, which Slack shows as "/incident failed with the error
dispatch_failed" for a command and as nothing at all for a button. Instead, by request type:

* slash command: 200 with an ephemeral message (Slack shows nothing useful for a non-2xx);
* Events API: 503 (500 for a bug), so Slack retries the event; the retry is deduplicated by
  event id if the first delivery did get recorded;
* view submission: 200 with `response_action: errors` on the form's first input, so the modal
  stays open with what the user typed and they can submit again (the view id dedupes it);
  a form without inputs gets 503, and Slack shows its own error in the modal;
* button or message shortcut: a 200 ack, and the message as an ephemeral reply through the
  request's `response_url` (posted from a thread: the ack must not wait on Slack). Without a
  `response_url` (App Home, modal buttons): 503, which Slack marks on the control.

"Nothing was recorded" is only said when that is certain: the listener's transaction failed before
COMMIT was sent (vigil_ir.db.CommitUncertain covers the other case).
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading

from slack_bolt import BoltResponse
from slack_sdk.webhook import WebhookClient

from vigil_ir import logs
from vigil_ir.db import CommitUncertain, is_unreachable, one_line

log = logging.getLogger(__name__)

DATABASE_DOWN = ("Vigil can't reach its database right now, so nothing was recorded. "
                 "Please try again in a minute.")
IN_DOUBT = ("Vigil lost its database connection while saving this, so it may or may not have been recorded. "
            "Check before trying again (reference {reference}).")
UNEXPECTED = ("Something went wrong in Vigil (reference {reference}). Please try again; if it keeps "
              "happening, give your Vigil admins the reference.")
RESPONSE_URL_TIMEOUT_SECONDS = 5
INTERACTIONS = ("block_actions", "message_action", "shortcut", "view_closed", "block_suggestion")


def explain(error: BaseException) -> tuple[str, int]:
    """The user-facing message, and the HTTP status for requests Slack retries (events)."""
    reference = logs.request_id.get() or "none"
    if isinstance(error, CommitUncertain):
        return IN_DOUBT.format(reference=reference), 503
    if is_unreachable(error):
        return DATABASE_DOWN, 503
    return UNEXPECTED.format(reference=reference), 500


def handle_error(error: Exception, body: dict) -> BoltResponse:
    """bolt's global error handler (`App.error`): log once, answer in the request's own shape."""
    kind = request_kind(body)
    if is_unreachable(error):
        log.warning("database unavailable during a Slack %s: %s", kind, one_line(error))
    else:
        log.error("Slack %s failed", kind, exc_info=error)
    message, status = explain(error)
    return reply(kind, body, message, status)


def request_kind(body: dict) -> str:
    if "command" in body:
        return "command"
    return str(body.get("type") or "request")


def reply(kind: str, body: dict, message: str, status: int) -> BoltResponse:
    if kind == "command":
        return _json(200, {"response_type": "ephemeral", "text": f":warning: {message}"})
    if kind == "view_submission":
        block_id = first_input_block(body.get("view"))
        if block_id:
            return _json(200, {"response_action": "errors", "errors": {block_id: message}})
    if kind in INTERACTIONS:
        # Slack never retries a button press or a shortcut; any status but 200 only shows a bare error
        # icon, so the notice goes to the response_url when there is one (a missing one, or one blanked
        # for not being Slack's, leaves nobody to tell).
        if isinstance(body.get("response_url"), str) and body["response_url"]:
            tell_later(body["response_url"], f":warning: {message}")
        else:
            log.warning("no response_url to tell the user of a failed %s", kind)
        return BoltResponse(status=200, body="")
    return _json(status, {"ok": False, "error": "database_unavailable" if status == 503 else "internal_error"})


def first_input_block(view) -> str | None:
    blocks = view.get("blocks") if isinstance(view, dict) else None
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "input" and isinstance(block.get("block_id"), str):
            return block["block_id"]
    return None


def tell_later(response_url: str, text: str) -> None:
    """An ephemeral reply through `response_url`; the outbox cannot carry it (it is in the database)."""
    def send() -> None:
        try:
            WebhookClient(response_url, timeout=RESPONSE_URL_TIMEOUT_SECONDS).send(
                text=text, response_type="ephemeral", replace_original=False)
        except Exception as failure:  # noqa: BLE001 - best effort; the failure is already logged
            log.warning("could not send the error notice to response_url: %s", failure)

    context = contextvars.copy_context()  # the request id, on the warning above
    threading.Thread(target=context.run, args=(send,), name="vigil-error-notice", daemon=True).start()


def _json(status: int, payload: dict) -> BoltResponse:
    return BoltResponse(status=status, body=json.dumps(payload),
                        headers={"content-type": "application/json;charset=utf-8"})
