"""A fake Slack Web API on 127.0.0.1 that records calls and answers in Slack's shapes.

Point `WebClient(base_url=fake.base_url)` at it and `response_url`s at `fake.response_url()`.
Tests assert on `fake.calls` (what we sent) rather than on counts, and inject 429/5xx/timeouts
with `fail_next` / `fail_always` / `delay_next` / `delay_always` / `drop_next`; `fail_always` and
`delay_always` take "*" for every method (Slack down, or slow, as a whole). See DESIGN.md §5 and
reference/slack-stack.md §2.4 for why the shapes below matter.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
# slack_sdk sends these as JSON strings when a method is form-encoded; tests want objects.
_JSON_PARAMS = ("blocks", "view", "attachments", "metadata")
_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")


@dataclass
class Call:
    method: str
    params: dict
    headers: dict  # lower-cased names: urllib sends "Content-type", other clients differ
    failed: bool = False  # injected fault, auth failure or any {"ok": false} answer
    status: int = 200
    response: dict = field(default_factory=dict)


@dataclass
class _Fault:
    status: int
    error: str
    retry_after: int | None = None
    drop: bool = False  # close the socket without answering (RemoteDisconnected client-side)
    fields: dict | None = None  # more of Slack's answer, e.g. missing_scope's `needed`


def _truthy(value) -> bool:
    return value in (True, 1, "1", "true", "True")


class FakeSlack:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.calls: list[Call] = []
        self.channels: dict[str, dict] = {}
        self.pins: dict[str, list[str]] = defaultdict(list)  # channel -> pinned message ts
        self.missing_channels: set[str] = set()
        self.views: dict[str, dict] = {}  # view_id -> view as last answered
        self.views_by_trigger: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.usergroups: dict[str, dict] = {}  # group id -> {"handle": …, "users": [...]}
        self.messages: dict[str, dict[str, dict]] = defaultdict(dict)  # channel -> ts -> message
        self.openid_codes: dict[str, dict] = {}  # Sign in with Slack: code -> id_token claims
        self.files: dict[str, dict] = {}  # file id -> metadata (files.uploadV2)
        self.uploads: dict[str, bytes] = {}  # file id -> uploaded bytes
        self.socket_url: str | None = None  # what apps.connections.open answers (tests/fakes/socket_mode.py)
        self._responses: list[tuple[str, dict]] = []
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._always: dict[str, _Fault] = {}
        self._delays: dict[str, deque[float]] = defaultdict(deque)
        self._slow: dict[str, float] = {}  # method (or "*") -> delay for every call
        self._counter = 0
        self._last_ts_us = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.base_url = f"{self.url}/api/"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    # ---- test-facing API -------------------------------------------------------------------
    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response_url/{name}"

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def responses(self, name: str | None = None) -> list[dict]:
        with self._lock:
            return [body for n, body in self._responses if name is None or n == name]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while len(found := self.calls_to(method)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        if len(found) < count:
            raise AssertionError(f"expected >= {count} call(s) to {method} within {timeout}s, got "
                                 f"{len(found)}; calls so far: {[c.method for c in self.calls]}")
        return found

    def fail_next(self, method, *, status=429, error="ratelimited", retry_after=None, times=1):
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults[method].extend(_Fault(status, error, retry_after) for _ in range(times))

    def fail_always(self, method, *, status=500, error="internal_error", retry_after=None, **fields):
        """`fields`: more of the answer, as Slack sends them (missing_scope: `needed="groups:write"`)."""
        with self._lock:
            self._always[method] = _Fault(status, error, retry_after, fields=fields or None)

    def drop_next(self, method: str, times: int = 1) -> None:
        with self._lock:
            self._faults[method].extend(_Fault(0, "", drop=True) for _ in range(times))

    def heal(self, method: str | None = None) -> None:
        """Forget every injected fault and delay (for one method, or all)."""
        with self._lock:
            for table in (self._faults, self._always, self._delays, self._slow):
                if method is None:
                    table.clear()
                else:
                    table.pop(method, None)

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._delays[method].extend([seconds] * times)

    def delay_always(self, method: str, seconds: float) -> None:
        """Answer every call to `method` ("*": any method) `seconds` late, until `heal`.

        As on real Slack, the call still takes effect: only the answer is late.
        """
        with self._lock:
            self._slow[method] = seconds

    def ok_calls(self, method: str) -> list[Call]:
        """Calls Slack carried out (answered ok), whether or not the client waited for the answer."""
        return [c for c in self.calls_to(method) if not c.failed]

    def set_user(self, user_id, *, name=None, tz="America/New_York", tz_offset=None, is_bot=False,
                 real_name=None, email=None, title=None, deleted=False):
        """A user users.info answers with; real_name, email (users:read.email) and title go in the profile."""
        now = datetime.now(ZoneInfo(tz))
        offset = int(now.utcoffset().total_seconds()) if tz_offset is None else tz_offset
        user = _user(user_id, name or user_id.lower(), tz, now.tzname(), offset, is_bot)
        if real_name is not None:
            user["real_name"] = user["profile"]["real_name"] = real_name
        if email is not None:
            user["profile"]["email"] = email
        if title is not None:
            user["profile"]["title"] = title
        user["deleted"] = deleted
        self.users[user_id] = user

    def set_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        """Create or change a user group (usergroups.list / usergroups.users.list answer from it)."""
        with self._lock:
            self.usergroups[group_id] = {"handle": handle, "users": list(users)}

    def add_message(self, channel, ts, text, user="U0AUTHOR", thread_ts=None) -> dict:
        message = {"type": "message", "user": user, "text": text, "ts": ts}
        with self._lock:
            return self._store(channel, message, thread_ts)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._responses.clear()
            self._faults.clear()
            self._always.clear()
            self._delays.clear()
            self._slow.clear()
            self.messages.clear()
            self.pins.clear()

    def close(self) -> None:
        self._closed.set()  # wakes handlers sleeping in delay_next
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- request handling ------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, query = handler.path.partition("?")
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if path.startswith("/response_url/"):
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"raw": raw.decode("utf-8", "replace")}
            with self._lock:
                self._responses.append((path.removeprefix("/response_url/"), body))
            return _send(handler, 200, b"ok", "text/plain")
        if path.startswith("/upload/"):  # files.uploadV2's second step: the bytes themselves
            with self._lock:
                self.uploads[path.removeprefix("/upload/")] = raw
            return _send(handler, 200, f"OK - {len(raw)}".encode(), "text/plain")
        if not path.startswith("/api/"):  # catches a base_url missing its /api/
            return _send(handler, 404, b"not found", "text/plain")
        method = path.removeprefix("/api/")
        params = _parse(raw, handler.headers.get("Content-Type", ""), query)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        extra_headers: dict[str, str] = {}
        fault = None
        with self._lock:
            delays = self._delays.get(method)
            delay = delays.popleft() if delays else self._slow.get(method, self._slow.get("*", 0.0))
            authorization = headers.get("authorization", "")
            # openid.connect.token authenticates with the app's client id and secret (HTTP Basic).
            basic_ok = method == "openid.connect.token" and authorization.startswith("Basic ")
            if not (re.match(r"Bearer (xoxb|xapp)-", authorization) or basic_ok):
                status, body = 200, {"ok": False, "error": "not_authed"}
            elif (queue := self._faults.get(method)) or (always := self._always.get(method, self._always.get("*"))):
                fault = queue.popleft() if queue else always
                status, body = fault.status, {"ok": False, "error": fault.error, **(fault.fields or {})}
                if fault.retry_after is not None:
                    extra_headers["Retry-After"] = str(fault.retry_after)
            else:
                status, body = 200, self._answer(method, params)
            failed = status != 200 or not body.get("ok")
            # Encode under the lock: answers share dicts (channels, views) later calls mutate,
            # and each Call keeps a snapshot of what was actually answered.
            encoded = json.dumps(body).encode()
            self.calls.append(Call(method, params, headers, failed, status, json.loads(encoded)))
        # The call was already handled (and a message stored) before the delay, as on real
        # Slack: a client timeout does not mean the side effect did not happen.
        if delay:
            self._closed.wait(delay)
        if fault is not None and fault.drop:
            handler.close_connection = True
            return None
        _send(handler, status, encoded, "application/json", extra_headers)

    def _answer(self, method: str, params: dict) -> dict:
        channel = params.get("channel") or params.get("channel_id")
        if channel in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        api = getattr(self, "_api_" + method.replace(".", "_"), None)
        return api(params) if api else {"ok": True}

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _next_ts(self) -> str:
        # Real-time based so ts compares sensibly with clocks; bumped to stay strictly increasing.
        self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 100)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _channel(self, channel_id: str) -> dict:
        return self.channels.get(channel_id) or {
            "id": channel_id, "name": channel_id.lower(), "is_channel": True, "is_private": False,
            "created": int(time.time()), "creator": "U0BOT", "is_member": True,
        }

    def _store(self, channel: str, message: dict, thread_ts: str | None) -> dict:
        if thread_ts and thread_ts != message["ts"]:
            message["thread_ts"] = thread_ts
            parent = self.messages[channel].get(thread_ts)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
        self.messages[channel][message["ts"]] = message
        return message

    # ---- one method per Slack API method (others answer {"ok": true}) -----------------------
    def _api_apps_connections_open(self, p):
        # Slack answers with a single-use WebSocket URL; only an app-level token may ask.
        if not self.socket_url:
            return {"ok": False, "error": "internal_error"}
        return {"ok": True, "url": self.socket_url}

    def _api_auth_test(self, p):
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "vigil",
                "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT"}

    def _api_conversations_create(self, p):
        name = p.get("name", "")
        if not name:
            return {"ok": False, "error": "invalid_name_required"}
        if len(name) > 80:
            return {"ok": False, "error": "invalid_name_maxlength"}
        if not _CHANNEL_NAME.match(name):  # upper case, spaces, periods, other specials
            return {"ok": False, "error": "invalid_name_specials"}
        if not re.search(r"[a-z0-9]", name):
            return {"ok": False, "error": "invalid_name_punctuation"}
        if any(c["name"] == name for c in self.channels.values()):
            return {"ok": False, "error": "name_taken"}
        channel = {
            "id": f"C{self._next():09d}", "name": name, "name_normalized": name,
            "is_channel": True, "is_private": _truthy(p.get("is_private")),
            "created": int(time.time()), "creator": "U0BOT", "is_member": True, "is_archived": False,
            "topic": {"value": ""}, "purpose": {"value": ""},
        }
        self.channels[channel["id"]] = channel
        return {"ok": True, "channel": channel}

    def _api_conversations_invite(self, p):
        return {"ok": True, "channel": self._channel(p.get("channel", ""))}

    _api_conversations_join = _api_conversations_info = _api_conversations_invite

    def _api_conversations_list(self, p):
        """Channels created here, oldest first, in pages (`limit`, opaque `cursor`) as Slack serves them."""
        wanted = set((p.get("types") or "public_channel").split(","))
        kinds = [c for c in self.channels.values()
                 if ("private_channel" if c.get("is_private") else "public_channel") in wanted
                 and not (_truthy(p.get("exclude_archived")) and c.get("is_archived"))]
        start = int(base64.b64decode(p["cursor"]).decode().removeprefix("next:")) if p.get("cursor") else 0
        limit = min(int(p.get("limit") or 100), 1000)
        page, rest = kinds[start:start + limit], kinds[start + limit:]
        cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if rest else ""
        return {"ok": True, "channels": [dict(c) for c in page], "response_metadata": {"next_cursor": cursor}}

    def _api_conversations_setTopic(self, p):  # also setPurpose
        channel = self._channel(p.get("channel", ""))
        for key in ("topic", "purpose"):
            if key in p:
                channel[key] = {"value": p[key]}
        return {"ok": True, "channel": channel}

    _api_conversations_setPurpose = _api_conversations_setTopic

    def _api_conversations_history(self, p):
        latest, oldest = float(p.get("latest") or "inf"), float(p.get("oldest") or 0)
        inclusive = _truthy(p.get("inclusive"))

        def wanted(m):  # thread replies live in conversations.replies, not in history
            t = float(m["ts"])
            in_range = oldest <= t <= latest if inclusive else oldest < t < latest
            return in_range and m.get("thread_ts", m["ts"]) == m["ts"]

        def shown(m):  # message metadata is left out unless asked for
            return m if _truthy(p.get("include_all_metadata")) else {k: v for k, v in m.items() if k != "metadata"}

        stored = self.messages.get(p.get("channel"), {}).values()
        picked = sorted(filter(wanted, stored), key=lambda m: float(m["ts"]), reverse=True)
        start = int(base64.b64decode(p["cursor"]).decode().removeprefix("next:")) if p.get("cursor") else 0
        limit = int(p.get("limit") or 100)
        page, more = picked[start:start + limit], len(picked) > start + limit
        cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        return {"ok": True, "messages": [shown(m) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": cursor}}

    def _api_conversations_replies(self, p):
        stored = self.messages.get(p.get("channel"), {})
        ts = p.get("ts")
        if ts not in stored:
            return {"ok": False, "error": "thread_not_found"}
        thread = [m for m in stored.values() if m["ts"] == ts or m.get("thread_ts") == ts]
        return {"ok": True, "messages": sorted(thread, key=lambda m: float(m["ts"])),
                "has_more": False}

    def _api_chat_postMessage(self, p):
        ts = self._next_ts()
        message = {"type": "message", "text": p.get("text", ""), "user": "U0BOT",
                   "bot_id": "B0BOT", "ts": ts}
        if p.get("blocks") is not None:
            message["blocks"] = p["blocks"]
        if isinstance(p.get("metadata"), dict):
            message["metadata"] = p["metadata"]
        self._store(p["channel"], message, p.get("thread_ts"))
        return {"ok": True, "channel": p["channel"], "ts": ts, "message": dict(message)}

    def _api_chat_update(self, p):
        message = self.messages.get(p.get("channel"), {}).get(p.get("ts"))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.update({k: p[k] for k in ("text", "blocks") if k in p})
        return {"ok": True, "channel": p["channel"], "ts": p["ts"], "text": message["text"]}

    def _api_pins_add(self, p):
        channel, ts = p.get("channel", ""), p.get("timestamp", "")
        if ts in self.pins[channel]:
            return {"ok": False, "error": "already_pinned"}
        self.pins[channel].append(ts)
        return {"ok": True}

    def _api_chat_postEphemeral(self, p):
        return {"ok": True, "message_ts": self._next_ts()}

    def _api_chat_getPermalink(self, p):
        channel, ts = p.get("channel", ""), p.get("message_ts", "")
        return {"ok": True, "channel": channel,
                "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _api_views_open(self, p):  # also push, publish and update (which keeps its view_id)
        n = self._next()
        view_id = p.get("view_id") or f"V{n:09d}"
        view = {**(p.get("view") or {}), "id": view_id, "hash": f"{int(time.time())}.h{n}"}
        self.views[view_id] = view
        if p.get("trigger_id"):
            self.views_by_trigger[p["trigger_id"]] = view
        return {"ok": True, "view": view}

    _api_views_push = _api_views_publish = _api_views_update = _api_views_open

    def _api_files_getUploadURLExternal(self, p):
        file_id = f"F{self._next():08d}"
        self.files[file_id] = {"id": file_id, "name": p.get("filename"), "length": int(p.get("length", 0))}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, p):
        files = json.loads(p["files"]) if isinstance(p.get("files"), str) else p.get("files", [])
        for entry in files:
            self.files.setdefault(entry["id"], {"id": entry["id"]}).update(
                title=entry.get("title"), channel=p.get("channel_id"), shared=True)
        return {"ok": True, "files": [self.files[entry["id"]] for entry in files]}

    # ---- Sign in with Slack (OpenID Connect) ----------------------------------------------------
    def add_openid_code(self, code, *, user_id, nonce, client_id="1.2", team_id="T0FAKE", name=None,
                        email=None, **claims) -> None:
        """What Slack's authorize page would have issued: `code` for this user, bound to `nonce`."""
        now = int(time.time())
        self.openid_codes[code] = {
            "iss": "https://slack.com", "sub": user_id, "aud": client_id, "exp": now + 3600, "iat": now,
            "auth_time": now, "nonce": nonce, "https://slack.com/user_id": user_id,
            "https://slack.com/team_id": team_id, "name": name or user_id.lower(),
            "email": email or f"{user_id.lower()}@example.com", "email_verified": True, **claims}

    def _api_openid_connect_token(self, p):
        claims = self.openid_codes.pop(p.get("code", ""), None)  # codes are single-use, as on Slack
        if claims is None:
            return {"ok": False, "error": "invalid_code"}
        segments = [base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                    for part in ({"alg": "RS256", "kid": "fake", "typ": "JWT"}, claims)]
        return {"ok": True, "access_token": f"xoxp-openid-{claims['sub']}", "token_type": "Bearer",
                "id_token": ".".join([*segments, "fake-signature"])}

    # usergroups.list / usergroups.users.list, in Slack's shapes (a group's `users` only on request).
    def _api_usergroups_list(self, p):
        return {"ok": True, "usergroups": [
            {"id": gid, "team_id": "T0FAKE", "is_usergroup": True, "name": g["handle"].title(),
             "description": "", "handle": g["handle"], "is_external": False, "date_create": 1446598059,
             "date_update": 1446670362, "date_delete": 0, "auto_type": None, "created_by": "U0ADMIN",
             "updated_by": "U0ADMIN", "deleted_by": None, "prefs": {"channels": [], "groups": []},
             "user_count": len(g["users"]), **({"users": list(g["users"])} if _truthy(p.get("include_users")) else {})}
            for gid, g in self.usergroups.items()]}

    def _api_usergroups_users_list(self, p):
        group = self.usergroups.get(p.get("usergroup", ""))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group["users"])}

    def _api_conversations_open(self, p):  # a DM with the app: D + the user id
        users = str(p.get("users", ""))
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0]}}

    def _api_users_info(self, p):
        uid = p.get("user", "")
        return {"ok": True, "user": self.users.get(uid) or _user(uid, uid.lower(), "UTC", "UTC", 0)}


def _user(uid, name, tz, tz_label, tz_offset, is_bot=False) -> dict:
    return {"id": uid, "name": name, "real_name": name, "tz": tz, "tz_label": tz_label,
            "tz_offset": tz_offset, "is_bot": is_bot,
            "profile": {"real_name": name, "display_name": name}}


def _parse(raw: bytes, content_type: str, query: str) -> dict:
    params: dict = dict(parse_qsl(query))
    if content_type.startswith("application/json"):
        params.update(json.loads(raw or b"{}"))
    elif raw:
        params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    for key in _JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
    return params


def _send(handler, status: int, body: bytes, content_type: str, headers: dict | None = None):
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", f"{content_type}; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (timeout test) before we answered


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.server.fake._serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST

    def log_message(self, format, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def fake_slack(monkeypatch):
    # slack_sdk's WebClient routes through these proxies, even for 127.0.0.1.
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    fake = FakeSlack()
    try:
        yield fake
    finally:
        fake.close()


# ==== Holding calls before Slack performs them (crash tests, tests/test_faults_crash.py) ==========
# `delay_next` answers late *after* the call was performed (Slack did it; the client has not heard).
# A crash test needs the other case too: a process killed while its call has not reached Slack yet,
# so the test knows for certain that the side effect did not happen and a retry must do it once.


class _Parked:
    def __init__(self, method: str) -> None:
        self.method = method
        self.perform = False
        self.released = threading.Event()


class HoldingFakeSlack(FakeSlack):
    """FakeSlack that can park calls to chosen methods *before* performing them.

    `hold("chat.postMessage")` (or `hold("*")` for every Web API method) parks each later call;
    `wait_held()` waits until calls are parked; `abandon_held()` closes their connections without
    performing or recording them (as if the request never reached Slack; the list `abandoned`
    names them); `release_held()` performs them normally; `stop_holding()` lets later calls through.
    """

    def __init__(self) -> None:
        self._hold_lock = threading.Lock()
        self._held_methods: set[str] = set()
        self._parked: list[_Parked] = []
        self.abandoned: list[str] = []
        super().__init__()  # starts serving, so the attributes above must exist first

    def hold(self, *methods: str) -> None:
        with self._hold_lock:
            self._held_methods.update(methods)

    def stop_holding(self) -> None:
        with self._hold_lock:
            self._held_methods.clear()

    def held(self) -> list[str]:
        with self._hold_lock:
            return [p.method for p in self._parked]

    def wait_held(self, count: int = 1, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(parked := self.held()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        if len(parked) < count:
            raise AssertionError(f"expected >= {count} parked call(s) within {timeout}s, got {parked}")
        return parked

    def abandon_held(self) -> list[str]:
        return self._let_go(perform=False)

    def release_held(self) -> list[str]:
        return self._let_go(perform=True)

    def close(self) -> None:
        self.abandon_held()
        super().close()

    def _let_go(self, *, perform: bool) -> list[str]:
        with self._hold_lock:
            parked, self._parked = self._parked, []
        for entry in parked:
            entry.perform = perform
            entry.released.set()
        return [entry.method for entry in parked]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.partition("?")[0]
        method = path.removeprefix("/api/")
        with self._hold_lock:
            holding = path.startswith("/api/") and bool({method, "*"} & self._held_methods)
            entry = _Parked(method) if holding else None
            if entry is not None:
                self._parked.append(entry)
        if entry is not None:
            while not entry.released.wait(0.05) and not self._closed.is_set():
                pass
            if not entry.perform:
                with self._hold_lock:
                    self.abandoned.append(method)
                handler.close_connection = True  # no answer: the client sees a dropped connection
                return None
        return super()._serve(handler)
