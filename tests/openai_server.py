"""A small local OpenAI-compatible server for tests: the real client (openai / langchain-openai) talks
HTTP to it on 127.0.0.1, and a pluggable policy decides each reply.

    with OpenAITestServer() as server:            # default_policy: view_decision, then choose_option
        run(base_url=server.base_url, ...)
        server.chat_requests[0].body["tools"]      # every request is recorded (body and headers)

A policy takes the request JSON and returns a `ToolCall` (or a list of them), a `Text`, or an
`HTTPError`; a plain `str` means text and a `{"name", "arguments"}` dict a tool call.
Endpoints: POST /v1/chat/completions (JSON, or SSE when the request says "stream": true) and
GET /v1/models.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = "test-model"


@dataclass(frozen=True)
class ToolCall:
    """A function call; `arguments` is the raw JSON text the model sends (it may be invalid on purpose)."""

    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class Text:
    content: str


@dataclass(frozen=True)
class HTTPError:
    status: int = 500
    message: str = "internal server error"


Reply = ToolCall | list[ToolCall] | Text | HTTPError | str | dict
Policy = Callable[[dict[str, Any]], Reply]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any = None  # parsed JSON, or None for a request without a body


# ---- policies ---------------------------------------------------------------------------------------
def tool_functions(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The request's tools by name: {name: {"name", "description", "parameters"}}."""
    return {t["function"]["name"]: t["function"] for t in request.get("tools") or [] if t.get("type") == "function"}


def has_tool_result(request: dict[str, Any]) -> bool:
    return any(m.get("role") == "tool" for m in request.get("messages", []))


def option_letters(request: dict[str, Any]) -> list[str]:
    fn = tool_functions(request).get("choose_option", {})
    return list(fn.get("parameters", {}).get("properties", {}).get("option", {}).get("enum", []))


def default_policy(request: dict[str, Any]) -> Reply:
    """A sensible agent: look at the decision first, then choose the first offered option."""
    tools = tool_functions(request)
    if "choose_option" not in tools:
        return Text("I have no console to record a decision in. My answer is A.")
    if not has_tool_result(request):
        return ToolCall("view_decision", "{}")
    letter = (option_letters(request) or ["A"])[0]
    return ToolCall("choose_option", json.dumps({"option": letter, "rationale": "It is the first option."}))


def scripted(*replies: Reply, then: Policy = default_policy) -> Policy:
    """A policy that replies by the number of tool results so far: replies[0] on the first turn,
    replies[1] after one tool result, ...; `then` once the script is used up. Per conversation, so it
    works for several episodes in parallel."""

    def policy(request: dict[str, Any]) -> Reply:
        turn = sum(1 for m in request.get("messages", []) if m.get("role") == "tool")
        return replies[turn] if turn < len(replies) else then(request)

    return policy


# ---- wire format ------------------------------------------------------------------------------------
def _normalise(reply: Reply) -> Text | list[ToolCall] | HTTPError:
    if isinstance(reply, str):
        return Text(reply)
    if isinstance(reply, dict):
        return [ToolCall(reply["name"], reply.get("arguments", "{}"))]
    if isinstance(reply, ToolCall):
        return [reply]
    if isinstance(reply, list):
        if not reply or not all(isinstance(c, ToolCall) for c in reply):
            raise TypeError(f"a list reply must hold ToolCall objects, got {reply!r}")
        return reply
    if isinstance(reply, Text | HTTPError):
        return reply
    raise TypeError(f"policy returned {type(reply).__name__}; expected ToolCall, Text, HTTPError, str or dict")


def _usage(request: dict[str, Any], completion: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content") or "").split()) for m in request.get("messages", []))
    done = len(completion.split())
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def _tool_calls_json(calls: list[ToolCall], ids: Iterator[int]) -> list[dict[str, Any]]:
    return [{"id": f"call_{next(ids)}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls]


def completion_body(request: dict[str, Any], reply: Text | list[ToolCall], completion_id: str,
                    ids: Iterator[int]) -> dict[str, Any]:
    if isinstance(reply, Text):
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        finish, text = "stop", reply.content
    else:
        message = {"role": "assistant", "content": None, "tool_calls": _tool_calls_json(reply, ids)}
        finish, text = "tool_calls", " ".join(c.arguments for c in reply)
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", MODEL_ID),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": _usage(request, text)}


def completion_chunks(request: dict[str, Any], reply: Text | list[ToolCall], completion_id: str,
                      ids: Iterator[int]) -> list[dict[str, Any]]:
    """The same reply as `chat.completion.chunk` events (role, content or tool calls, finish, usage)."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": request.get("model", MODEL_ID)}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if isinstance(reply, Text):
        chunks.append(chunk({"content": reply.content}))
        finish, text = "stop", reply.content
    else:
        for index, call in enumerate(_tool_calls_json(reply, ids)):
            chunks.append(chunk({"tool_calls": [{"index": index, **call}]}))
        finish, text = "tool_calls", " ".join(c.arguments for c in reply)
    chunks.append(chunk({}, finish))
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": _usage(request, text)})
    return chunks


# ---- the server -------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do; every response has a Content-Length
    timeout = 30  # an idle kept-alive connection ends its handler thread
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        owner = self.server.owner
        owner._record(RecordedRequest("GET", self.path, self._headers()))
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "tests"} for m in owner.model_ids]
            self._json(200, {"object": "list", "data": data})
        else:
            self._json(404, _error_body(f"no route GET {self.path}", "not_found_error"))

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError as exc:
            owner._record(RecordedRequest("POST", self.path, self._headers(), raw.decode("utf-8", "replace")))
            self._json(400, _error_body(f"request body is not JSON: {exc}", "invalid_request_error"))
            return
        owner._record(RecordedRequest("POST", self.path, self._headers(), body))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, _error_body(f"no route POST {self.path}", "not_found_error"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._json(400, _error_body("'messages' is required", "invalid_request_error"))
            return
        try:
            reply = _normalise(owner.policy(body))
        except Exception as exc:  # noqa: BLE001 - a broken policy is a test bug: report it loudly
            owner.policy_errors.append(exc)
            self._json(500, _error_body(f"test policy failed: {type(exc).__name__}: {exc}", "server_error"))
            return
        if isinstance(reply, HTTPError):
            self._json(reply.status, _error_body(reply.message, "server_error"))
            return
        completion_id = f"chatcmpl-{next(owner._ids)}"
        if body.get("stream"):
            self._sse(completion_chunks(body, reply, completion_id, owner._ids))
        else:
            self._json(200, completion_body(body, reply, completion_id, owner._ids))

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, chunks: list[dict[str, Any]]) -> None:
        events = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
        data = "".join(events).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: OpenAITestServer

    def __init__(self, owner: OpenAITestServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request, client_address):  # type: ignore[override]
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # type: ignore[override]
        # A client that gave up (timeout, closed port) makes the reply fail to send: expected, stay quiet.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._conn_lock:
            open_now = list(self._connections)
        for conn in open_now:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@dataclass
class OpenAITestServer:
    """The server; start()/stop() or use it as a context manager. `policy` may be swapped at any time."""

    policy: Policy = default_policy
    model_ids: tuple[str, ...] = (MODEL_ID,)
    requests: list[RecordedRequest] = field(default_factory=list)
    policy_errors: list[Exception] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.rstrip("/") == "/v1/chat/completions"]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> OpenAITestServer:
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"openai-test-server:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()  # stops serve_forever
        self._httpd.close_connections()  # ends handler threads waiting on kept-alive connections
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def serve(policy: Policy = default_policy) -> Iterator[OpenAITestServer]:
    """`with serve(policy) as server:` a running server, stopped on exit."""
    with OpenAITestServer(policy=policy) as server:
        yield server


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once by us, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
