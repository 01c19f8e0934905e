"""Which `response_url`s Vigil follows: only Slack's own hooks host.

A signed request carries a `response_url` that Vigil later POSTs to (ephemeral replies). The
signature proves the request came from Slack, but following any URL it names would let a leaked
signing secret turn Vigil into a request forwarder, so only `SLACK_HOOKS_URL` (Slack's hooks host;
a fake in tests) is followed. The URL is a short-lived credential: it is never logged.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def is_slack_hook(url: object, hooks_url: str) -> bool:
    """`url` has the scheme and host of `hooks_url` and lies under its path."""
    if not isinstance(url, str):
        return False
    try:
        wanted, given = urlsplit(hooks_url), urlsplit(url)
        return (given.scheme, given.netloc.lower()) == (wanted.scheme, wanted.netloc.lower()) \
            and given.path.startswith(wanted.path or "/") and not given.username
    except ValueError:
        return False


def drop_foreign_response_urls(body: dict, hooks_url: str) -> None:
    """Blank a request's response_url that is not a Slack hook (so none is followed; listeners that
    read the field still find it, and `notify.respond_later` skips a blank one)."""
    if body.get("response_url") and not is_slack_hook(body["response_url"], hooks_url):
        body["response_url"] = ""
        log.warning("ignored a response_url outside %s", hooks_url)
    if isinstance(body.get("response_urls"), list):
        kept = [item for item in body["response_urls"]
                if isinstance(item, dict) and is_slack_hook(item.get("response_url"), hooks_url)]
        if len(kept) != len(body["response_urls"]):
            log.warning("ignored a response_url outside %s", hooks_url)
        body["response_urls"] = kept
