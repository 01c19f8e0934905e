"""Fake Jira Cloud, GitHub Issues and Linear APIs on 127.0.0.1, in their documented shapes.

Each records the calls it gets (`calls`, `calls_to(op)`), keeps issues, and injects faults per
operation: `fail_next(op, status)` answers with an error before doing anything; `fail_after(op,
status)` does the work and then answers with an error (the answer that gets lost: a 500 after the
issue was created); `drop_after(op)` does the work and closes the connection without answering.
`change(...)` edits an issue as a person would in the tracker and returns the webhook body the
tracker would send, and `signed(...)` gives the headers the tracker signs it with.

Shapes: Jira REST API v3 (`POST /rest/api/3/issue` answers {id, key, self}; issues carry `fields`
with `status.statusCategory.key`, `resolution`, `assignee.emailAddress`, `duedate`, `updated`), GitHub
REST (`/repos/{owner}/{repo}/issues…`: number, html_url, state, state_reason, assignee.login,
updated_at), Linear GraphQL (`issueCreate`, `issues(filter:)`, `issue(id:)`, `workflowStates`,
`issueUpdate`, `commentCreate`; states with `type`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

import pytest


@dataclass
class Call:
    op: str
    method: str
    path: str
    body: dict | None
    headers: dict
    status: int = 200


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _any(self):
        self.server.fake.serve(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any


class _Fake:
    """The server, the call log and the fault injection shared by the three fakes."""

    auth: str = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.faults: dict[str, deque] = defaultdict(deque)
        self._clock = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def tick(self) -> datetime:
        """The tracker's own clock: a second later on every change, so `updated` orders them."""
        with self.lock:
            self._clock += timedelta(seconds=1)
            return self._clock

    # faults
    def fail_next(self, op: str, status: int = 500, times: int = 1, retry_after: int | None = None) -> None:
        with self.lock:
            self.faults[op].extend([("before", status, retry_after)] * times)

    def fail_after(self, op: str, status: int = 500, times: int = 1) -> None:
        with self.lock:
            self.faults[op].extend([("after", status, None)] * times)

    def drop_after(self, op: str, times: int = 1) -> None:
        with self.lock:
            self.faults[op].extend([("drop", 0, None)] * times)

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()

    def calls_to(self, op: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.op == op]

    def ok_calls(self, op: str) -> list[Call]:
        return [c for c in self.calls_to(op) if c.status < 400]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # serving (each fake has its own `route(method, path, query, body) -> (op, status, answer)`)
    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, raw_query = handler.path.partition("?")
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        query = {k: v[0] for k, v in parse_qs(raw_query).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if headers.get("authorization") != self.auth:
            return self._answer(handler, 401, {"message": "Unauthorized"})
        op = self.operation(handler.command, path, body)
        call = Call(op, handler.command, path, body, headers)
        with self.lock:
            self.calls.append(call)
            fault = self.faults[op].popleft() if self.faults[op] else None
        if fault and fault[0] == "before":
            call.status = fault[1]
            extra = {"Retry-After": str(fault[2])} if fault[2] is not None else {}
            return self._answer(handler, fault[1], {"message": "injected failure"}, extra)
        with self.lock:
            _, status, answer = self.route(handler.command, unquote(path), query, body)
        if fault and fault[0] == "drop":
            call.status = 599
            handler.close_connection = True
            handler.connection.shutdown(2)
            return None
        if fault and fault[0] == "after":
            call.status = fault[1]
            return self._answer(handler, fault[1], {"message": "injected failure after the work was done"})
        call.status = status
        return self._answer(handler, status, answer)

    def operation(self, method: str, path: str, body) -> str:
        return f"{method} {path}"

    @staticmethod
    def _answer(handler, status: int, answer, headers: dict | None = None) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def hub_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ==== Jira Cloud ================================================================================
JIRA_STATUSES = {"To Do": "new", "In Progress": "indeterminate", "Done": "done", "Cancelled": "done"}
JIRA_TRANSITIONS = [("11", "To Do"), ("21", "In Progress"), ("31", "Done"), ("41", "Cancelled")]


class FakeJira(_Fake):
    EMAIL, TOKEN, SECRET = "vigil@example.com", "jira-token", "jira-webhook-secret"

    def __init__(self) -> None:
        super().__init__()
        self.auth = "Basic " + base64.b64encode(f"{self.EMAIL}:{self.TOKEN}".encode()).decode()
        self.issues: dict[str, dict] = {}
        self.comments: dict[str, list] = defaultdict(list)
        self.users = {"dana@example.com": "acc-dana", "sam@example.com": "acc-sam"}
        self._ids = itertools.count(10001)
        self._numbers: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))

    def settings(self, **more) -> dict:
        return {"VIGIL_JIRA_URL": self.url, "VIGIL_JIRA_EMAIL": self.EMAIL, "VIGIL_JIRA_API_TOKEN": self.TOKEN,
                "VIGIL_JIRA_WEBHOOK_SECRET": self.SECRET, "VIGIL_JIRA_PROJECTS": "default=OPS/Task", **more}

    def operation(self, method: str, path: str, body) -> str:
        if path == "/rest/api/3/issue":
            return "create"
        if path == "/rest/api/3/search/jql":
            return "search"
        if path.endswith("/transitions"):
            return "transition" if method == "POST" else "transitions"
        if path.endswith("/comment"):
            return "comment"
        if path.startswith("/rest/api/3/user/search"):
            return "user_search"
        return "get" if path.startswith("/rest/api/3/issue/") else f"{method} {path}"

    def _user(self, email: str | None) -> dict | None:
        if not email:
            return None
        return {"accountId": self.users.get(email, "acc-" + email.split("@")[0]), "emailAddress": email,
                "displayName": email.split("@")[0].title()}

    def new_issue(self, project: str, summary: str, *, labels=(), status: str = "To Do", assignee: str | None = None,
                  duedate: str | None = None, issue_type: str = "Task") -> dict:
        with self.lock:
            key = f"{project}-{next(self._numbers[project])}"
            issue = {"id": str(next(self._ids)), "key": key, "self": f"{self.url}/rest/api/3/issue/{key}",
                     "fields": {"summary": summary, "labels": list(labels), "issuetype": {"name": issue_type},
                                "project": {"key": project}, "assignee": self._user(assignee), "duedate": duedate,
                                "resolution": None, "updated": ""}}
            self._set_status(issue, status)
            self.issues[key] = issue
            return issue

    def _set_status(self, issue: dict, status: str, resolution: str | None = None) -> None:
        category = JIRA_STATUSES[status]
        issue["fields"]["status"] = {"name": status, "statusCategory": {"key": category}}
        if category == "done":
            issue["fields"]["resolution"] = {"name": resolution or ("Won't Do" if status == "Cancelled" else "Done")}
        else:
            issue["fields"]["resolution"] = None
        self._touch(issue)

    def _touch(self, issue: dict) -> None:
        issue["fields"]["updated"] = self.tick().strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def route(self, method, path, query, body):
        if path == "/rest/api/3/issue" and method == "POST":
            f = body["fields"]
            assignee = next((e for e, a in self.users.items() if a == (f.get("assignee") or {}).get("accountId")), None)
            issue = self.new_issue(f["project"]["key"], f["summary"], labels=f.get("labels") or [],
                                   assignee=assignee, duedate=f.get("duedate"), issue_type=f["issuetype"]["name"])
            issue["fields"]["description"] = f.get("description")
            return "create", 201, {"id": issue["id"], "key": issue["key"], "self": issue["self"]}
        if path == "/rest/api/3/search/jql":
            match = re.fullmatch(r'labels = "([^"]+)" ORDER BY created ASC', query.get("jql", ""))
            found = [i for i in self.issues.values() if match and match.group(1) in i["fields"]["labels"]]
            return "search", 200, {"issues": found[:int(query.get("maxResults", 50))], "isLast": True}
        if path == "/rest/api/3/user/search":
            email = query.get("query", "")
            return "user_search", 200, [self._user(email)] if email in self.users else []
        match = re.fullmatch(r"/rest/api/3/issue/([^/]+)(/transitions|/comment)?", path)
        issue = self.issues.get(match.group(1)) if match else None
        if issue is None:
            return "get", 404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}
        if match.group(2) == "/transitions" and method == "GET":
            here = issue["fields"]["status"]["name"]
            return "transitions", 200, {"transitions": [
                {"id": tid, "name": name, "to": {"name": name, "statusCategory": {"key": JIRA_STATUSES[name]}}}
                for tid, name in JIRA_TRANSITIONS if name != here]}
        if match.group(2) == "/transitions":
            target = dict(JIRA_TRANSITIONS).get(body["transition"]["id"])
            if target is None or target == issue["fields"]["status"]["name"]:
                return "transition", 400, {"errorMessages": ["Transition id is not valid for this issue."]}
            self._set_status(issue, target)
            return "transition", 204, None
        if match.group(2) == "/comment":
            self.comments[issue["key"]].append(body["body"])
            self._touch(issue)
            return "comment", 201, {"id": str(len(self.comments[issue["key"]])), "body": body["body"]}
        return "get", 200, issue

    # a person working in Jira
    def change(self, key: str, *, status: str | None = None, resolution: str | None = None,
               summary: str | None = None, assignee: str | None = "keep", duedate: str | None = "keep") -> bytes:
        with self.lock:
            issue = self.issues[key]
            if status:
                self._set_status(issue, status, resolution)
            if summary is not None:
                issue["fields"]["summary"] = summary
            if assignee != "keep":
                issue["fields"]["assignee"] = self._user(assignee)
            if duedate != "keep":
                issue["fields"]["duedate"] = duedate
            self._touch(issue)
            return self.webhook_body(key)

    def webhook_body(self, key: str, event: str = "jira:issue_updated") -> bytes:
        issue = json.loads(json.dumps(self.issues[key]))
        return json.dumps({"timestamp": int(self._clock.timestamp() * 1000), "webhookEvent": event,
                           "issue_event_type_name": "issue_generic", "user": {"accountId": "acc-dana"},
                           "issue": issue, "changelog": {"id": "1", "items": []}}).encode()

    def signed(self, body: bytes, *, delivery: str | None = None, secret: str | None = None) -> dict:
        return {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(secret or self.SECRET, body),
                "X-Atlassian-Webhook-Identifier": delivery or str(uuid.uuid4())}


# ==== GitHub ====================================================================================
class FakeGitHub(_Fake):
    TOKEN, SECRET = "ghp-test-token", "github-webhook-secret"

    def __init__(self) -> None:
        super().__init__()
        self.auth = f"Bearer {self.TOKEN}"
        self.issues: dict[str, dict[int, dict]] = defaultdict(dict)  # repo -> number -> issue
        self.comments: dict[str, list] = defaultdict(list)
        self._ids = itertools.count(5000001)

    def settings(self, **more) -> dict:
        return {"VIGIL_GITHUB_TOKEN": self.TOKEN, "VIGIL_GITHUB_API_URL": self.url,
                "VIGIL_GITHUB_WEBHOOK_SECRET": self.SECRET, "VIGIL_GITHUB_REPOS": "default=acme/ops",
                "VIGIL_GITHUB_USERS": "dana-gh=dana@example.com", **more}

    def operation(self, method: str, path: str, body) -> str:
        if re.fullmatch(r"/repos/[^/]+/[^/]+/issues", path):
            return "create" if method == "POST" else "list"
        if path.endswith("/comments"):
            return "comment"
        return "update" if method == "PATCH" else "get"

    def issue(self, key: str) -> dict:
        repo, number = key.split("#")
        return self.issues[repo][int(number)]

    def new_issue(self, repo: str, title: str, *, body: str = "", labels=(), state: str = "open",
                  assignee: str | None = None) -> dict:
        with self.lock:
            number = len(self.issues[repo]) + 1
            issue = {"id": next(self._ids), "node_id": f"I_{number}", "number": number, "title": title, "body": body,
                     "state": state, "state_reason": None, "labels": [{"name": n} for n in labels],
                     "assignee": {"login": assignee} if assignee else None,
                     "assignees": [{"login": assignee}] if assignee else [],
                     "html_url": f"https://github.example/{repo}/issues/{number}",
                     "url": f"{self.url}/repos/{repo}/issues/{number}", "updated_at": ""}
            self._touch(issue)
            self.issues[repo][number] = issue
            return issue

    def _touch(self, issue: dict) -> None:
        issue["updated_at"] = self.tick().strftime("%Y-%m-%dT%H:%M:%SZ")

    def route(self, method, path, query, body):
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(\d+))?(/comments)?", path)
        if not match:
            return "?", 404, {"message": "Not Found"}
        repo, number, comments = match.group(1), match.group(2), match.group(3)
        if number is None and method == "POST":
            issue = self.new_issue(repo, body["title"], body=body.get("body") or "", labels=body.get("labels") or [],
                                   assignee=(body.get("assignees") or [None])[0])
            return "create", 201, issue
        if number is None:
            wanted = set(filter(None, (query.get("labels") or "").split(",")))
            found = [i for i in sorted(self.issues[repo].values(), key=lambda i: -i["number"])
                     if wanted <= {label["name"] for label in i["labels"]}]
            return "list", 200, found[:int(query.get("per_page", 30))]
        issue = self.issues[repo].get(int(number))
        if issue is None:
            return "get", 404, {"message": "Not Found"}
        if comments:
            self.comments[f"{repo}#{number}"].append(body["body"])
            return "comment", 201, {"id": len(self.comments), "body": body["body"]}
        if method == "PATCH":
            for name in ("state", "state_reason", "title"):
                if name in body:
                    issue[name] = body[name]
            self._touch(issue)
            return "update", 200, issue
        return "get", 200, issue

    def change(self, key: str, *, state: str | None = None, state_reason: str | None = None,
               title: str | None = None, assignee: str | None = "keep", action: str = "edited") -> bytes:
        with self.lock:
            issue = self.issue(key)
            if state:
                issue["state"] = state
                issue["state_reason"] = state_reason if state == "closed" else "reopened"
                action = "closed" if state == "closed" else "reopened"
            if title is not None:
                issue["title"] = title
            if assignee != "keep":
                issue["assignee"] = {"login": assignee} if assignee else None
                action = "assigned" if assignee else "unassigned"
            self._touch(issue)
            return self.webhook_body(key, action)

    def webhook_body(self, key: str, action: str = "edited") -> bytes:
        repo = key.split("#")[0]
        return json.dumps({"action": action, "issue": self.issue(key), "repository": {"full_name": repo},
                           "sender": {"login": "dana-gh"}}).encode()

    def signed(self, body: bytes, *, delivery: str | None = None, secret: str | None = None,
               event: str = "issues") -> dict:
        return {"Content-Type": "application/json", "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                "X-Hub-Signature-256": hub_signature(secret or self.SECRET, body)}


# ==== Linear ====================================================================================
LINEAR_STATES = {"st-todo": ("Todo", "unstarted"), "st-doing": ("In Progress", "started"),
                 "st-done": ("Done", "completed"), "st-cancel": ("Canceled", "canceled")}


class FakeLinear(_Fake):
    KEY, SECRET = "lin_api_test", "linear-webhook-secret"

    def __init__(self) -> None:
        super().__init__()
        self.auth = self.KEY
        self.issues: dict[str, dict] = {}  # identifier -> issue
        self.comments: dict[str, list] = defaultdict(list)
        self.teams = {"ENG": "team-eng"}
        self.users = {"dana@example.com": "user-dana"}
        self._ids = itertools.count(1)

    def settings(self, **more) -> dict:
        return {"VIGIL_LINEAR_API_KEY": self.KEY, "VIGIL_LINEAR_API_URL": f"{self.url}/graphql",
                "VIGIL_LINEAR_WEBHOOK_SECRET": self.SECRET, "VIGIL_LINEAR_TEAMS": "default=ENG", **more}

    def operation(self, method: str, path: str, body) -> str:
        query = (body or {}).get("query", "")
        for op in ("issueCreate", "issueUpdate", "commentCreate", "workflowStates", "teams", "users", "issues(",
                   "issue("):
            if op in query:
                return op.rstrip("(")
        return "?"

    def _public(self, issue: dict) -> dict:
        name, kind = LINEAR_STATES[issue["stateId"]]
        email = next((e for e, u in self.users.items() if u == issue.get("assigneeId")), None)
        return {"id": issue["id"], "identifier": issue["identifier"], "url": issue["url"], "title": issue["title"],
                "description": issue["description"], "updatedAt": issue["updatedAt"], "dueDate": issue.get("dueDate"),
                "state": {"id": issue["stateId"], "name": name, "type": kind},
                "assignee": {"id": issue["assigneeId"], "name": "Dana", "email": email} if email else None,
                "team": {"id": issue["teamId"]}}

    def new_issue(self, team: str, title: str, *, description: str = "", state: str = "st-todo") -> dict:
        with self.lock:
            n = next(self._ids)
            issue = {"id": f"uuid-{n}", "identifier": f"{team}-{n}", "title": title, "description": description,
                     "url": f"https://linear.app/acme/issue/{team}-{n}/x", "stateId": state, "teamId": self.teams[team],
                     "assigneeId": None, "updatedAt": ""}
            issue["updatedAt"] = self.tick().strftime("%Y-%m-%dT%H:%M:%S.000Z")
            self.issues[issue["identifier"]] = issue
            return issue

    def route(self, method, path, query, body):
        op, variables = self.operation(method, path, body), (body or {}).get("variables") or {}
        if op == "teams":
            team = self.teams.get(variables.get("key"))
            return op, 200, {"data": {"teams": {"nodes": [{"id": team}] if team else []}}}
        if op == "users":
            user = self.users.get(variables.get("email"))
            return op, 200, {"data": {"users": {"nodes": [{"id": user}] if user else []}}}
        if op == "issueCreate":
            values = variables["input"]
            team = next(k for k, v in self.teams.items() if v == values["teamId"])
            issue = self.new_issue(team, values["title"], description=values.get("description") or "")
            issue["dueDate"], issue["assigneeId"] = values.get("dueDate"), values.get("assigneeId")
            return op, 200, {"data": {"issueCreate": {"success": True, "issue": self._public(issue)}}}
        if op == "issues":
            found = [self._public(i) for i in self.issues.values() if variables["marker"] in i["description"]]
            return op, 200, {"data": {"issues": {"nodes": found[:5]}}}
        if op == "issue":
            issue = self.issues.get(variables["id"])
            if issue is None:
                return op, 200, {"data": None, "errors": [{"message": "Entity not found",
                                                            "extensions": {"code": "INVALID_INPUT"}}]}
            return op, 200, {"data": {"issue": self._public(issue)}}
        if op == "workflowStates":
            found = [{"id": sid, "name": name} for sid, (name, kind) in LINEAR_STATES.items() if kind == variables["type"]]
            return op, 200, {"data": {"workflowStates": {"nodes": found}}}
        if op == "issueUpdate":
            issue = next(i for i in self.issues.values() if i["id"] == variables["id"])
            issue["stateId"] = variables["state"]
            issue["updatedAt"] = self.tick().strftime("%Y-%m-%dT%H:%M:%S.000Z")
            return op, 200, {"data": {"issueUpdate": {"success": True}}}
        if op == "commentCreate":
            issue = next(i for i in self.issues.values() if i["id"] == variables["id"])
            self.comments[issue["identifier"]].append(variables["body"])
            return op, 200, {"data": {"commentCreate": {"success": True}}}
        return op, 400, {"errors": [{"message": "unknown operation"}]}

    def change(self, identifier: str, *, state: str | None = None, title: str | None = None) -> bytes:
        with self.lock:
            issue = self.issues[identifier]
            if state:
                issue["stateId"] = state
            if title is not None:
                issue["title"] = title
            issue["updatedAt"] = self.tick().strftime("%Y-%m-%dT%H:%M:%S.000Z")
            return self.webhook_body(identifier)

    def webhook_body(self, identifier: str, *, sent_at: datetime | None = None) -> bytes:
        issue = self._public(self.issues[identifier])
        data = {k: v for k, v in issue.items() if k not in ("url",)}
        sent = sent_at or datetime.now(timezone.utc)
        return json.dumps({"action": "update", "type": "Issue", "data": data, "url": issue["url"],
                           "createdAt": issue["updatedAt"], "webhookTimestamp": int(sent.timestamp() * 1000),
                           "webhookId": "wh-1"}).encode()

    def signed(self, body: bytes, *, delivery: str | None = None, secret: str | None = None) -> dict:
        digest = hmac.new((secret or self.SECRET).encode(), body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "Linear-Delivery": delivery or str(uuid.uuid4()),
                "Linear-Event": "Issue", "Linear-Signature": digest}


@pytest.fixture
def fake_jira():
    fake = FakeJira()
    yield fake
    fake.close()


@pytest.fixture
def fake_github():
    fake = FakeGitHub()
    yield fake
    fake.close()


@pytest.fixture
def fake_linear():
    fake = FakeLinear()
    yield fake
    fake.close()
