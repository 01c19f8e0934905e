"""Linear (GraphQL API, a personal or workspace API key).

New issues carry a marker line in their description (`vigil-act-12`), found again with an issue filter
on the description after a lost answer. Webhooks are signed `Linear-Signature: <hex HMAC-SHA256 of the
body>` with a `Linear-Delivery` id; their `webhookTimestamp` (milliseconds) must be within a minute of
our clock, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import json
import re

import httpx

from vigil_ir import clock
from vigil_ir.tickets.trackers import (NewTicket, Target, Ticket, TicketNotFound, TrackerError, Webhook,
                                       WebhookRefused, body_digest, header, iso_day, iso_time, signature_matches)
from vigil_ir.tickets.transport import call

KEY = re.compile(r"^[A-Z][A-Z0-9]{0,9}-\d{1,12}$")
ISSUE_URL = re.compile(r"^https?://linear\.app/[^/\s]+/issue/([A-Za-z][A-Za-z0-9]{0,9}-\d{1,12})(?:/[^\s]*)?$")
ISSUE_FIELDS = "id identifier url title updatedAt dueDate state { name type } assignee { email name } team { id }"
STATE_TYPES = {"completed": "done", "canceled": "cancelled"}
REPLAY_WINDOW_SECONDS = 60


class Linear:
    name, label = "linear", "Linear"

    def __init__(self, *, api_key: str, api_url: str = "https://api.linear.app/graphql",
                 webhook_secret: str | None = None, timeout: float = 10.0):
        self.api_url, self.webhook_secret = api_url, webhook_secret
        self.client = httpx.Client(timeout=timeout, trust_env=False,
                                   headers={"Authorization": api_key, "Content-Type": "application/json"})
        self._teams: dict[str, str] = {}

    def _query(self, query: str, variables: dict, *, label: str, writes: bool = False) -> dict:
        answer = call(self.client, "POST", self.api_url, json={"query": query, "variables": variables},
                      label=label, writes=writes) or {}
        errors = answer.get("errors") or []
        if errors:
            codes = {((e.get("extensions") or {}).get("code") or "").upper() for e in errors}
            text = "; ".join(str(e.get("message")) for e in errors)[:300]
            if "RATELIMITED" in codes:
                raise TrackerError(f"{label}: rate limited", retry_later=True)
            raise TrackerError(f"{label}: {text}")
        return answer.get("data") or {}

    def url_for(self, key: str) -> str:
        return ""  # the workspace's URL is only known from an answer; the first sync fills it in

    def ticket(self, issue: dict) -> Ticket:
        state = issue.get("state") or {}
        assignee = issue.get("assignee") or {}
        return Ticket(key=issue["identifier"], url=issue.get("url") or "", external_id=str(issue.get("id") or ""),
                      state=STATE_TYPES.get(state.get("type") or "", "open"), state_name=state.get("name") or "",
                      title=issue.get("title") or "", assignee=assignee.get("email") or assignee.get("name") or None,
                      due_on=iso_day(issue.get("dueDate")), updated_at=iso_time(issue.get("updatedAt")))

    def _team_id(self, team_key: str) -> str:
        if team_key not in self._teams:
            data = self._query("query Teams($key: String!) { teams(filter: {key: {eq: $key}}) { nodes { id } } }",
                               {"key": team_key}, label="Linear teams")
            nodes = (data.get("teams") or {}).get("nodes") or []
            if not nodes:
                raise TrackerError(f"Linear has no team with the key {team_key!r}")
            self._teams[team_key] = nodes[0]["id"]
        return self._teams[team_key]

    def _user_id(self, email: str) -> str | None:
        data = self._query("query Users($email: String!) { users(filter: {email: {eq: $email}}) { nodes { id } } }",
                           {"email": email}, label="Linear users")
        nodes = (data.get("users") or {}).get("nodes") or []
        return nodes[0]["id"] if nodes else None

    def create(self, new: NewTicket) -> Ticket:
        values: dict = {"teamId": self._team_id(new.target.project), "title": new.title,
                        "description": f"{new.description}\n\n`{new.marker}`"}
        if new.due_on:
            values["dueDate"] = new.due_on.isoformat()
        assignee = self._user_id(new.assignee_email) if new.assignee_email else None
        if assignee:
            values["assigneeId"] = assignee
        data = self._query(f"mutation Create($input: IssueCreateInput!) {{ issueCreate(input: $input) "
                           f"{{ success issue {{ {ISSUE_FIELDS} }} }} }}", {"input": values},
                           label="Linear create issue", writes=True)
        issue = (data.get("issueCreate") or {}).get("issue")
        if not issue:
            raise TrackerError("Linear create issue: an answer without an issue", retry_later=True, uncertain=True)
        return self.ticket(issue)

    def find_marked(self, marker: str, target: Target) -> Ticket | None:
        data = self._query(f"query Marked($marker: String!) {{ issues(filter: {{description: {{contains: $marker}}}}, "
                           f"first: 5) {{ nodes {{ {ISSUE_FIELDS} }} }} }}", {"marker": marker},
                           label="Linear search")
        nodes = (data.get("issues") or {}).get("nodes") or []
        return self.ticket(nodes[0]) if nodes else None

    def _issue(self, key: str) -> dict:
        data = self._query(f"query Issue($id: String!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}", {"id": key},
                           label=f"Linear issue {key}")
        if not data.get("issue"):
            raise TicketNotFound(f"Linear issue {key}: not found")
        return data["issue"]

    def fetch(self, key: str) -> Ticket:
        return self.ticket(self._issue(key))

    def close(self, key: str, *, cancelled: bool) -> None:
        issue = self._issue(key)
        wanted = "canceled" if cancelled else "completed"
        data = self._query("query States($team: ID!, $type: String!) { workflowStates(filter: "
                           "{team: {id: {eq: $team}}, type: {eq: $type}}) { nodes { id name } } }",
                           {"team": (issue.get("team") or {}).get("id"), "type": wanted}, label="Linear states")
        nodes = (data.get("workflowStates") or {}).get("nodes") or []
        if not nodes:
            raise TrackerError(f"Linear {key}: its team has no {wanted} state")
        self._query("mutation Close($id: String!, $state: String!) { issueUpdate(id: $id, input: {stateId: $state}) "
                    "{ success } }", {"id": issue["id"], "state": nodes[0]["id"]}, label=f"Linear close {key}",
                    writes=True)

    def comment(self, key: str, text: str) -> None:
        issue = self._issue(key)
        self._query("mutation Comment($id: String!, $body: String!) { commentCreate(input: {issueId: $id, body: $body}) "
                    "{ success } }", {"id": issue["id"], "body": text}, label=f"Linear comment {key}", writes=True)

    def parse_ref(self, text: str) -> str | None:
        text = (text or "").strip().strip("<>").split("|", 1)[0]
        if KEY.match(text.upper()) and not text.startswith("http"):
            return text.upper()
        match = ISSUE_URL.match(text)
        return match.group(1).upper() if match else None

    def webhook(self, headers: dict[str, str], body: bytes) -> Webhook:
        if not signature_matches(self.webhook_secret, body, header(headers, "Linear-Signature")):
            raise WebhookRefused("the Linear-Signature does not match the Linear webhook secret")
        payload = json.loads(body)
        if not isinstance(payload, dict):
            return Webhook(body_digest(body), None, ignored="not an object")
        sent = payload.get("webhookTimestamp")
        now_ms = clock.now().timestamp() * 1000
        if not isinstance(sent, (int, float)) or abs(now_ms - sent) > REPLAY_WINDOW_SECONDS * 1000:
            raise WebhookRefused("the webhookTimestamp is more than a minute from now (a replayed delivery?)")
        delivery = header(headers, "Linear-Delivery") or body_digest(body)
        data = payload.get("data")
        if payload.get("type") != "Issue" or payload.get("action") not in ("create", "update") or \
                not isinstance(data, dict) or not data.get("identifier"):
            return Webhook(delivery, None, ignored=f"{payload.get('type')} {payload.get('action')} is not an issue change")
        return Webhook(delivery, self.ticket({**data, "url": data.get("url") or payload.get("url")}))
