"""Loopback servers that speak the ServiceNow Table API, Jira REST v2 and the PagerDuty
Events API v2 as far as Watchfloor uses them: the same paths, status codes, JSON fields,
basic-auth checks (401) and validation errors (400) in each API's own error shape.

Each keeps every request it received, for assertions, and can be told to fail the next
N requests (503, 429 with Retry-After) without processing them, or to process the next
N and then drop the connection before answering: the response a client loses, which a
retry must not turn into a second ticket.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

Answer = tuple[int, Any, dict[str, str]]
BAD_JSON = object()


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    outcome: str = "answered"  # answered | failed:<status> | dropped

    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        return user, password


@dataclass
class Fault:
    kind: str  # fail | drop
    status: int = 503
    retry_after: str | None = None
    method: str | None = None  # only requests with this method (None: any)

    def matches(self, request: Received) -> bool:
        return self.method is None or self.method == request.method


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no delayed-ACK stall between headers and body
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `received` instead."""

    def _dispatch(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = BAD_JSON
        request = Received(self.command, parts.path, dict(parse_qsl(parts.query)),
                           {k.lower(): v for k, v in self.headers.items()}, body)
        fake = self.server.fake
        fault = fake.take_fault(request)
        if fault is not None and fault.kind == "fail":
            request.outcome = f"failed:{fault.status}"
            fake.record(request)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send(fault.status, fake.error(fault.status, "Service Unavailable"
                                                if fault.status >= 500 else "Too many requests"),
                       headers)
            return
        status, payload, headers = fake.answer(request)
        if fault is not None and fault.kind == "drop":  # processed; the answer is lost
            request.outcome = "dropped"
            fake.record(request)
            self.close_connection = True
            return
        fake.record(request)
        self._send(status, payload, headers)

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeApi


class FakeApi(ABC):
    """Base: the HTTP plumbing, faults and the record of what came in."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, n: int, status: int = 503, retry_after: str | None = None, *,
                  method: str | None = None) -> None:
        """Answer the next `n` (matching) requests with `status`, processing nothing."""
        with self._lock:
            self._faults += [Fault("fail", status, retry_after, method) for _ in range(n)]

    def drop_next(self, n: int = 1, *, method: str | None = None) -> None:
        """Process the next `n` (matching) requests, then close without answering."""
        with self._lock:
            self._faults += [Fault("drop", method=method) for _ in range(n)]

    def take_fault(self, request: Received) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(request):
                    return self._faults.pop(index)
            return None

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def requests(self, method: str | None = None, path: str = "") -> list[Received]:
        return [r for r in self.received
                if (method is None or r.method == method) and r.path.startswith(path)]

    def answer(self, request: Received) -> Answer:
        with self._lock:
            if request.body is BAD_JSON:
                return 400, self.error(400, "the request body is not valid JSON"), {}
            return self.handle(request)

    @abstractmethod
    def handle(self, request: Received) -> Answer:
        """Answer one request the way the real API would."""

    @abstractmethod
    def error(self, status: int, message: str, detail: str = "") -> Any:
        """The API's own error body."""


# --- ServiceNow --------------------------------------------------------------------


class FakeServiceNow(FakeApi):
    TABLES: ClassVar[dict[str, tuple[str, int, str]]] = {
        "incident": ("INC", 10000, "1"), "change_request": ("CHG", 30000, "-5")}
    CLOSED: ClassVar[dict[str, str]] = {"incident": "6", "change_request": "3"}

    def __init__(self, user: str = "wf.bot", password: str = "sn-secret") -> None:
        super().__init__()
        self.credentials = (user, password)
        self.records: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in self.TABLES}
        self._numbers = {t: itertools.count(start + 1) for t, (_, start, _) in
                         self.TABLES.items()}

    def error(self, status: int, message: str, detail: str = "") -> Any:
        return {"error": {"message": message, "detail": detail or None}, "status": "failure"}

    def handle(self, request: Received) -> Answer:
        if request.basic_auth() != self.credentials:
            return 401, self.error(401, "User Not Authenticated",
                                   "Required to provide Auth information"), {}
        match = re.fullmatch(r"/api/now/table/(\w+)(?:/(\w+))?", request.path)
        if match is None:
            return 400, self.error(400, "Requested URI does not represent any resource"), {}
        table, sys_id = match.groups()
        if table not in self.records:
            return 400, self.error(400, f"Invalid table {table}"), {}
        rows = self.records[table]
        if request.method == "GET" and sys_id is None:
            return 200, {"result": self._query(rows, request.query)}, {}
        if request.method == "POST" and sys_id is None:
            return self._create(table, request.body)
        if sys_id is None or sys_id not in rows:
            return 404, self.error(404, "No Record found", "Record doesn't exist or ACL "
                                   "restricts the record retrieval"), {}
        if request.method == "GET":
            return 200, {"result": rows[sys_id]}, {}
        if request.method == "PATCH":
            return self._patch(table, rows[sys_id], request.body)
        return 405, self.error(405, "Method not Supported"), {}

    def _query(self, rows: dict[str, dict[str, Any]], query: dict[str, str]) -> list[Any]:
        terms = [t.partition("=") for t in query.get("sysparm_query", "").split("^") if t]
        found = [r for r in rows.values() if all(str(r.get(k)) == v for k, _, v in terms)]
        found = found[:int(query.get("sysparm_limit", "10000"))]
        if "sysparm_fields" in query:
            names = query["sysparm_fields"].split(",")
            found = [{n: r.get(n, "") for n in names} for r in found]
        return found

    def _create(self, table: str, body: Any) -> Answer:
        if not isinstance(body, dict):
            return 400, self.error(400, "Exception while reading request",
                                   "The payload is not valid JSON."), {}
        if not body.get("short_description"):
            return 400, self.error(400, "Data Policy Exception: ",
                                   "The following fields are mandatory: Short description"), {}
        prefix, _, state = self.TABLES[table]
        sys_id = uuid.uuid4().hex
        record = {"sys_id": sys_id, "number": f"{prefix}{next(self._numbers[table]):07d}",
                  "state": state, "assignment_group": "", "work_notes": "", "close_code": "",
                  "close_notes": "", "journal": [], **body}
        if record["work_notes"]:
            record["journal"] = [record["work_notes"]]
        self.records[table][sys_id] = record
        return 201, {"result": record}, {"Location": f"{self.url}/api/now/table/{table}/{sys_id}"}

    def _patch(self, table: str, record: dict[str, Any], body: Any) -> Answer:
        if not isinstance(body, dict):
            return 400, self.error(400, "Exception while reading request"), {}
        merged = {**record, **body}
        if str(merged.get("state")) == self.CLOSED[table]:
            missing = [label for name, label in (("close_code", "Resolution code"),
                                                 ("close_notes", "Resolution notes"))
                       if not merged.get(name)]
            if missing:
                return 400, self.error(400, "Data Policy Exception: ", "The following fields "
                                       f"are mandatory: {', '.join(missing)}"), {}
        if body.get("work_notes"):
            merged["journal"] = [*record["journal"], body["work_notes"]]
        record.update(merged)
        return 200, {"result": record}, {}


# --- Jira --------------------------------------------------------------------------


class FakeJira(FakeApi):
    STATUSES: ClassVar[dict[str, tuple[str, str]]] = {
        "11": ("To Do", "new"), "21": ("In Progress", "indeterminate"), "31": ("Done", "done")}

    def __init__(self, email: str = "noc@example.com", token: str = "jira-token",
                 project: str = "OPS", components: tuple[str, ...] = ("noc", "db")) -> None:
        super().__init__()
        self.credentials = (email, token)
        self.project = project
        self.issue_types = ("Task", "Incident", "Change")
        self.components = components
        self.issues: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(10001)

    def error(self, status: int, message: str, detail: str = "") -> Any:
        return {"errorMessages": [message], "errors": {}}

    def _invalid(self, errors: dict[str, str]) -> Answer:
        return 400, {"errorMessages": [], "errors": errors}, {}

    def handle(self, request: Received) -> Answer:
        if request.basic_auth() != self.credentials:
            return 401, self.error(401, "You are not authenticated. Authentication required "
                                   "to perform this operation."), {}
        if request.path == "/rest/api/2/issue" and request.method == "POST":
            return self._create(request.body)
        if request.path == "/rest/api/2/search" and request.method == "GET":
            return self._search(request.query)
        match = re.fullmatch(r"/rest/api/2/issue/([A-Z]+-\d+)(/comment|/transitions)?",
                             request.path)
        if match is None:
            return 404, self.error(404, "null for uri: " + request.path), {}
        key, sub = match.groups()
        issue = self.issues.get(key)
        if issue is None:
            return 404, self.error(404, "Issue does not exist or you do not have permission "
                                   "to see it."), {}
        if sub == "/comment" and request.method == "POST":
            return self._comment(issue, request.body)
        if sub == "/transitions":
            return self._transitions(issue, request)
        if request.method == "GET":
            return 200, self._view(issue), {}
        if request.method == "PUT":
            return self._edit(issue, request.body)
        return 405, self.error(405, "Method Not Allowed"), {}

    def _view(self, issue: dict[str, Any]) -> dict[str, Any]:
        return {key: issue[key] for key in ("id", "key", "self", "fields")}

    def _create(self, body: Any) -> Answer:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._invalid({"fields": "fields are required"})
        errors = {}
        if (fields.get("project") or {}).get("key") != self.project:
            errors["project"] = "valid project is required"
        if not str(fields.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        if (fields.get("issuetype") or {}).get("name") not in self.issue_types:
            errors["issuetype"] = "Specify a valid issue type"
        for label in fields.get("labels") or []:
            if " " in label:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        for component in fields.get("components") or []:
            if component.get("name") not in self.components:
                errors["components"] = f"Component name '{component.get('name')}' is not valid"
        if errors:
            return self._invalid(errors)
        number = next(self._ids)
        key = f"{self.project}-{number - 10000}"
        issue = {"id": str(number), "key": key, "self": f"{self.url}/rest/api/2/issue/{number}",
                 "fields": {**fields, "labels": list(fields.get("labels") or []),
                            "components": list(fields.get("components") or []),
                            "status": self._status("11")},
                 "comments": []}
        self.issues[key] = issue
        return 201, {"id": issue["id"], "key": key, "self": issue["self"]}, {}

    def _status(self, transition: str) -> dict[str, Any]:
        name, category = self.STATUSES[transition]
        return {"name": name, "statusCategory": {"key": category}}

    def _search(self, query: dict[str, str]) -> Answer:
        match = re.fullmatch(r'labels\s*=\s*"([^"]+)"', query.get("jql", "").strip())
        if match is None:
            return 400, {"errorMessages": [f"Error in the JQL Query: {query.get('jql')!r} is "
                                           "not supported here."], "errors": {}}, {}
        found = [i for i in self.issues.values() if match.group(1) in i["fields"]["labels"]]
        limit = int(query.get("maxResults", "50"))
        return 200, {"expand": "names,schema", "startAt": 0, "maxResults": limit,
                     "total": len(found),
                     "issues": [{"id": i["id"], "key": i["key"], "self": i["self"],
                                 "fields": {"summary": i["fields"]["summary"]}}
                                for i in found[:limit]]}, {}

    def _comment(self, issue: dict[str, Any], body: Any) -> Answer:
        text = body.get("body") if isinstance(body, dict) else None
        if not text:
            return self._invalid({"comment": "Comment body can not be empty!"})
        comment = {"id": str(len(issue["comments"]) + 1), "body": text,
                   "self": f"{issue['self']}/comment/{len(issue['comments']) + 1}"}
        issue["comments"].append(comment)
        return 201, comment, {}

    def _transitions(self, issue: dict[str, Any], request: Received) -> Answer:
        current = issue["fields"]["status"]["name"]
        available = [{"id": tid, "name": name, "to": self._status(tid)}
                     for tid, (name, _) in self.STATUSES.items() if name != current]
        if request.method == "GET":
            return 200, {"expand": "transitions", "transitions": available}, {}
        body = request.body if isinstance(request.body, dict) else {}
        wanted = str((body.get("transition") or {}).get("id"))
        if wanted not in {t["id"] for t in available}:
            return 400, self.error(400, f"Transition id '{wanted}' is not valid for this "
                                   "issue."), {}
        issue["fields"]["status"] = self._status(wanted)
        for change in (body.get("update") or {}).get("comment") or []:
            self._comment(issue, change.get("add"))
        return 204, None, {}

    def _edit(self, issue: dict[str, Any], body: Any) -> Answer:
        update = body.get("update") if isinstance(body, dict) else None
        if not isinstance(update, dict):
            return self._invalid({"update": "nothing to update"})
        fields = issue["fields"]
        for op in update.get("components") or []:
            names = [c.get("name") for c in op.get("set", [])]
            unknown = [n for n in names if n not in self.components]
            if unknown:
                return self._invalid({"components": f"Component name '{unknown[0]}' is not "
                                                    "valid"})
            fields["components"] = [{"name": n} for n in names]
        for op in update.get("labels") or []:
            if " " in op.get("add", ""):
                return self._invalid({"labels": "The label contains spaces which is invalid."})
            fields["labels"].append(op["add"])
        return 204, None, {}


# --- PagerDuty ---------------------------------------------------------------------


@dataclass
class Alert:
    dedup_key: str
    summary: str
    source: str
    severity: str
    status: str = "triggered"
    log: list[dict[str, Any]] = field(default_factory=list)


class FakePagerDuty(FakeApi):
    SEVERITIES = ("critical", "error", "warning", "info")

    def __init__(self, routing_key: str = "R0UTINGKEY0000000000000000000001") -> None:
        super().__init__()
        self.routing_keys = {routing_key}
        self.alerts: list[Alert] = []
        self.change_events: list[dict[str, Any]] = []

    def error(self, status: int, message: str, detail: str = "") -> Any:
        if status == 429:
            return {"status": "throttle event", "message": "Requests for this service are "
                    "arriving too quickly. Please retry later."}
        return {"status": "error", "message": message}

    def _invalid(self, *errors: str) -> Answer:
        return 400, {"status": "invalid event", "message": "Event object is invalid",
                     "errors": list(errors)}, {}

    def open_alert(self, dedup_key: str) -> Alert | None:
        return next((a for a in self.alerts if a.dedup_key == dedup_key
                     and a.status != "resolved"), None)

    def handle(self, request: Received) -> Answer:
        body = request.body if isinstance(request.body, dict) else None
        if request.method != "POST" or request.path not in ("/v2/enqueue",
                                                            "/v2/change/enqueue"):
            return 404, {"status": "error", "message": "Not Found"}, {}
        if body is None:
            return self._invalid("Event object must be a JSON object")
        if body.get("routing_key") not in self.routing_keys:
            return self._invalid("Invalid routing key")
        payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
        if request.path == "/v2/change/enqueue":
            if not str(payload.get("summary") or "").strip():
                return self._invalid("'payload.summary' is missing or blank")
            self.change_events.append(body)
            return 202, {"status": "success", "message": "Change event processed"}, {}
        return self._event(body, payload)

    def _event(self, body: dict[str, Any], payload: dict[str, Any]) -> Answer:
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            return self._invalid("'event_action' is invalid (must be one of the following: "
                                 "'trigger', 'acknowledge' or 'resolve')")
        dedup_key = str(body.get("dedup_key") or "")
        if action == "trigger":
            errors = [f"'payload.{name}' is missing or blank" for name in ("summary", "source")
                      if not str(payload.get(name) or "").strip()]
            if payload.get("severity") not in self.SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of the following: "
                              "'critical', 'warning', 'error' or 'info')")
            if errors:
                return self._invalid(*errors)
            dedup_key = dedup_key or uuid.uuid4().hex
            alert = self.open_alert(dedup_key)
            if alert is None:
                alert = Alert(dedup_key, payload["summary"], payload["source"],
                              payload["severity"])
                self.alerts.append(alert)
            alert.log.append(body)
        elif not dedup_key:
            return self._invalid("'dedup_key' is missing or blank")
        else:
            alert = self.open_alert(dedup_key)
            if alert is not None:  # events for no open alert are dropped, not refused
                alert.log.append(body)
                alert.status = "acknowledged" if action == "acknowledge" else "resolved"
        return 202, {"status": "success", "message": "Event processed",
                     "dedup_key": dedup_key}, {}
