"""A new signing key's fingerprint in the audit channel, and the record that it was posted there.

The post is what an auditor compares a bundle's `manifest.sig` fingerprint with: the database
cannot rewrite it. Its permalink is recorded as `audit.signing_key_published`, which
`vigil verify --bundle` prints as where the key was witnessed. A retry after a lost answer finds the
marked post instead of posting twice (Deliverer._post_once), and the event is recorded once.
"""

from __future__ import annotations

from vigil_ir.eventlog import append
from vigil_ir.idempotency import first_time
from vigil_ir.signing.service import PUBLISHED, STREAM

ACTOR = "system:worker"


def text(fingerprint: str, public_key: str) -> str:
    return (f":key: Vigil's evidence bundles are now signed with the Ed25519 key `{fingerprint}`. "
            "`vigil verify --bundle FILE --key FINGERPRINT` checks a bundle's `manifest.sig` against it; a bundle "
            "signed with any other key was not signed by this installation after this post.\n"
            f"`signing-key v1 fingerprint={fingerprint} public_key={public_key}`")


def deliver(deliverer, payload: dict) -> dict:
    channel, key, fingerprint = payload["channel"], payload["key"], payload["fingerprint"]
    ts = deliverer._post_once(key, channel, text=text(fingerprint, payload["public_key"]))
    link = deliverer._call("chat_getPermalink", channel=channel, message_ts=ts).get("permalink")
    with deliverer.database.session() as session:
        if first_time(session, f"signing-key-published:{key}"):
            append(session, stream=STREAM, kind=PUBLISHED, actor=ACTOR,
                   data={"fingerprint": fingerprint, "channel": channel, "ts": ts, "permalink": link})
    return {"ts": ts, "permalink": link}
