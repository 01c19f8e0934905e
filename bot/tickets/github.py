"""GitHub Issues (REST API, a token: fine-grained, classic or a GitHub App installation token).

A ticket's key is `owner/repo#number`. New issues carry the `vigil` label and a marker line in their
body (`<!-- vigil-act-12 -->`); an issue whose creation answer was lost is found again among the
repository's newest `vigil` issues (the issues list, not the search API, which lags). Webhooks send
`issues` events signed `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with an
`X-GitHub-Delivery` id, the same when GitHub redelivers it.
"""

from __future__ import annotations

import json
import re

import httpx

from vigil_ir.tickets.trackers import (NewTicket, Target, Ticket, TrackerError, Webhook, WebhookRefused, body_digest,
                                       header, iso_time, signature_matches)
from vigil_ir.tickets.transport import call

REPO = r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}"
KEY = re.compile(rf"^({REPO})#(\d{{1,12}})$")
ISSUE_URL = re.compile(rf"^https?://[^/\s]+/({REPO})/issues/(\d{{1,12}})/?(?:[?#].*)?$")
CANCELLED_REASONS = {"not_planned", "duplicate"}
LABEL = "vigil"
MARKER_PAGE = 100  # newest `vigil` issues looked through for a lost creation


def marker_line(marker: str) -> str:
    return f"<!-- {marker} -->"


class GitHub:
    name, label = "github", "GitHub"

    def __init__(self, *, token: str, api_url: str = "https://api.github.com", webhook_secret: str | None = None,
                 logins: dict[str, str] | None = None, timeout: float = 10.0):
        self.webhook_secret = webhook_secret
        base = api_url.rstrip("/")
        # api.github.com serves github.com; GitHub Enterprise Server serves <host>/api/v3 for <host>.
        self.web_url = "https://github.com" if base == "https://api.github.com" else base.removesuffix("/api/v3")
        self.logins = {login.lower(): email for login, email in (logins or {}).items()}  # login -> e-mail
        self.emails = {email.lower(): login for login, email in self.logins.items()}
        self.client = httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout, trust_env=False, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28"})

    def url_for(self, key: str) -> str:
        repo, number = self._split(key)
        return f"{self.web_url}/{repo}/issues/{number}"

    def ticket(self, issue: dict, repo: str) -> Ticket:
        state = "open"
        if issue.get("state") == "closed":
            state = "cancelled" if issue.get("state_reason") in CANCELLED_REASONS else "done"
        reason = issue.get("state_reason")
        login = ((issue.get("assignee") or {}).get("login") or "")
        return Ticket(key=f"{repo}#{issue['number']}", url=issue.get("html_url") or "",
                      external_id=str(issue.get("id") or ""), state=state,
                      state_name=f"{issue.get('state')}" + (f" ({reason})" if reason and state != "open" else ""),
                      title=issue.get("title") or "",
                      assignee=self.logins.get(login.lower(), login) if login else None,
                      updated_at=iso_time(issue.get("updated_at")))

    def _split(self, key: str) -> tuple[str, int]:
        match = KEY.match(key)
        if not match:
            raise TrackerError(f"{key!r} is not a GitHub issue key (owner/repo#number)")
        return match.group(1), int(match.group(2))

    def create(self, new: NewTicket) -> Ticket:
        body = {"title": new.title, "labels": [LABEL],
                "body": f"{new.description}\n\n{marker_line(new.marker)}"}
        login = self.emails.get((new.assignee_email or "").lower())
        if login:
            body["assignees"] = [login]
        issue = call(self.client, "POST", f"/repos/{new.target.project}/issues", json=body, writes=True,
                     label="GitHub create issue")
        if not isinstance(issue, dict) or "number" not in issue:
            raise TrackerError(f"GitHub create issue: an answer without a number ({str(issue)[:100]})",
                               retry_later=True, uncertain=True)
        return self.ticket(issue, new.target.project)

    def find_marked(self, marker: str, target: Target) -> Ticket | None:
        issues = call(self.client, "GET", f"/repos/{target.project}/issues", label="GitHub list issues", params={
            "labels": LABEL, "state": "all", "sort": "created", "direction": "desc", "per_page": MARKER_PAGE})
        line = marker_line(marker)
        for issue in issues or []:
            if "pull_request" not in issue and line in (issue.get("body") or ""):
                return self.ticket(issue, target.project)
        return None

    def fetch(self, key: str) -> Ticket:
        repo, number = self._split(key)
        return self.ticket(call(self.client, "GET", f"/repos/{repo}/issues/{number}", label=f"GitHub {key}"), repo)

    def close(self, key: str, *, cancelled: bool) -> None:
        repo, number = self._split(key)
        call(self.client, "PATCH", f"/repos/{repo}/issues/{number}", label=f"GitHub close {key}", writes=True,
             json={"state": "closed", "state_reason": "not_planned" if cancelled else "completed"})

    def comment(self, key: str, text: str) -> None:
        repo, number = self._split(key)
        call(self.client, "POST", f"/repos/{repo}/issues/{number}/comments", json={"body": text}, writes=True,
             label=f"GitHub comment {key}")

    def parse_ref(self, text: str) -> str | None:
        text = (text or "").strip().strip("<>").split("|", 1)[0]
        match = KEY.match(text) or ISSUE_URL.match(text)
        return f"{match.group(1)}#{int(match.group(2))}" if match else None

    def webhook(self, headers: dict[str, str], body: bytes) -> Webhook:
        if not signature_matches(self.webhook_secret, body, header(headers, "X-Hub-Signature-256"), "sha256="):
            raise WebhookRefused("the X-Hub-Signature-256 does not match the GitHub webhook secret")
        delivery = header(headers, "X-GitHub-Delivery") or body_digest(body)
        event = header(headers, "X-GitHub-Event")
        payload = json.loads(body)
        if event != "issues" or not isinstance(payload, dict):
            return Webhook(delivery, None, ignored=f"event {event!r} is not an issues event")
        issue, repo = payload.get("issue"), (payload.get("repository") or {}).get("full_name")
        if not isinstance(issue, dict) or not repo or "number" not in issue:
            return Webhook(delivery, None, ignored="no issue in the payload")
        return Webhook(delivery, self.ticket(issue, repo), extra={"action": payload.get("action")})
