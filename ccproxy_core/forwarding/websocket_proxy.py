"""WebSocket upgrades of OpenAI's Responses and Realtime endpoints, forwarded and recorded.

The client's upgrade is forwarded with its headers (keys and session headers unchanged);
when the provider accepts, ccproxy accepts with the provider's subprotocol and passes
every message both ways unchanged until either side closes. When the provider refuses,
the client gets the provider's status and body (through the ASGI WebSocket denial
response), so a client that falls back to HTTPS after failed attempts (Codex CLI) sees
what it would see direct.

Records: one per answer on the socket, as for an HTTP request. An answer starts with the client's
``response.create`` (or the provider's own ``response.created``: on the Realtime API, and a steered
response's successor, see :mod:`.steered_successors`) and ends with its terminal event
(``response.completed``/``failed``/``incomplete`` or ``error``; Realtime ``response.done``, see
:mod:`.websocket_answers`), whose usage is read. Its method is ``WEBSOCKET``, its endpoint the socket's
path (``/v1/responses``). A refused upgrade is one record with the provider's status.

Plugins are asked (``admit_request``) before each ``response.create`` is forwarded. One they refuse
is not: the client gets an ``error`` event, as the provider would send, and the answer is recorded
with the plugin's status. An answer open when the socket closes is recorded as cut off
(``client_disconnected`` with 499, or ``upstream_stream_aborted``), as is one still being admitted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import aiohttp
from multidict import CIMultiDict
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.realtime_transcriptions import (
    SESSION_EVENTS,
    TRANSCRIBED,
    read_transcription,
    transcription_model,
)
from ccproxy_core.forwarding.route_table import api_path
from ccproxy_core.forwarding.steered_successors import SteeredSuccessors, provider_create
from ccproxy_core.forwarding.upstream import (
    PoolTimeout,
    UnsendableHeader,
    UpstreamPool,
    forwarded_headers,
    unanswered_request,
)
from ccproxy_core.forwarding.websocket_answers import (
    MOST_PROVIDER_BEGUN,
    REALTIME_ENDS,
    OpenAnswers,
    said_too_many_open,
)
from ccproxy_core.forwarding.websocket_close import (
    CLIENT_LEFT,
    describe,
    error_text_before_close,
    sendable_code,
    sendable_reason,
)
from ccproxy_core.forwarding.websocket_exchange import answer_exchange
from ccproxy_core.forwarding.websocket_messages import decoded, examined, off_the_loop_if_large, to_the_end
from ccproxy_core.forwarding.websocket_refusals import left_before_answer, pass_refusal, refuse, unless_client_leaves
from ccproxy_core.forwarding.websocket_upgrade import UpgradeRefused
from ccproxy_core.providers import OPENAI
from ccproxy_core.providers.openai import REALTIME, WEBSOCKET_READERS
from ccproxy_core.providers.openai_responses import read_response_event
from ccproxy_core.safe_values import safe_error_text

if TYPE_CHECKING:
    from ccproxy_core.forwarding.proxy import Proxy
    from ccproxy_core.plugin_host.admission import Admission

log = logging.getLogger("ccproxy.websocket")

_HANDSHAKE_HEADERS = (
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
)
_CREATE_MARKER = '"response.create"'
_ESCAPE_MARKER = "\\u"
"""A JSON string may spell ``response.create`` with \\u escapes: such an event is decoded to be sure."""


_CLOSED_BY_CCPROXY = "ccproxy closed it: "
"""How the client's close reason says the provider's message broke the protocol (too large, not UTF-8)."""


class WebSocketProxy:
    """Forwards WebSocket connections over the proxy's pooled session and records each answer."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one WebSocket connection from upgrade to close."""
        if (await receive())["type"] != "websocket.connect":
            return
        path = api_path(scope["path"]) or scope["path"]  # only /v1/ (or /api/v1/) paths are routed here
        headers = Headers(scope=scope)
        query = scope.get("query_string", b"").decode("latin-1")
        pool = self.proxy.pools[OPENAI]
        url = pool.base_url + path + (f"?{query}" if query else "")
        socket = _Socket(self.proxy, scope, path, WEBSOCKET_READERS[path])
        started = time.perf_counter()
        try:
            forwarded = forwarded_headers(headers, pool.provider, self.proxy.settings)
        except UnsendableHeader as exc:
            await refuse(socket, send, 400, "invalid_request", str(exc), started)
            return
        for name in _HANDSHAKE_HEADERS:
            forwarded.popall(name, None)
        protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        # The subprotocols are sent too, and one may carry the client's key: masked wherever echoed.
        socket.sent_headers = forwarded.copy()
        socket.sent_headers["sec-websocket-protocol"] = ", ".join(protocols)
        try:
            # A socket holds one of the provider's pooled connections for as long as it is open.
            await pool.acquire()
        except PoolTimeout:
            message = f"no free connection to {OPENAI} within UPSTREAM__POOL_TIMEOUT_SECONDS={pool.wait_seconds:g}"
            await refuse(socket, send, 504, "upstream_pool_timeout", message, started)
            return
        try:
            await self._connect_and_relay(socket, pool, url, forwarded, protocols, receive, send, started)
        finally:
            pool.release()

    async def _connect_and_relay(
        self,
        socket: _Socket,
        pool: UpstreamPool,
        url: str,
        forwarded: CIMultiDict[str],
        protocols: list[str],
        receive: Receive,
        send: Send,
        started: float,
    ) -> None:
        connecting = pool.upgrades.ws_connect(
            url,
            headers=forwarded,
            protocols=protocols,
            autoping=True,
            # A provider's message is held whole to be passed on: bounded, as a whole answer is.
            max_msg_size=self.proxy.settings.upstream.max_websocket_message_bytes,
            compress=0,
        )
        try:
            upstream = await unless_client_leaves(connecting, receive)
            if upstream is None:  # it gave up on a slow handshake: the provider's connection is freed now
                await left_before_answer(socket, started)
                return
        except UpgradeRefused as refusal:
            await pass_refusal(socket, send, refusal, started)
            return
        except aiohttp.WSServerHandshakeError as exc:  # a 101 that is no WebSocket handshake (a wrong accept key)
            message = f"the provider's answer to the WebSocket upgrade is no handshake: {exc.message}"
            await refuse(socket, send, 502, "upstream_invalid_response", message, started, exc.status)
            return
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await refuse(socket, send, *unanswered_request(OPENAI, exc), started)
            return
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": upstream.protocol,
                "headers": [(b"x-ccproxy-websocket", b"forwarded")],
            }
        )
        await socket.relay(upstream, receive, send)


class _Socket:
    """One forwarded connection: its messages both ways and the answers open on it."""

    def __init__(self, proxy: Proxy, scope: Scope, path: str, reader: str) -> None:
        self.proxy, self.scope, self.path = proxy, scope, path
        self.realtime = reader == REALTIME
        self.open_answers, self.successors = OpenAnswers(self.realtime), SteeredSuccessors()
        self.model_from_query = _query_model(scope) if self.realtime else None
        self.transcription_model: str | None = None
        self.sent_headers: CIMultiDict[str] | None = None
        self.client_close: tuple[int, str] = (1000, "")
        self.upstream_reason = ""
        self.client_left: bool | None = None
        """Once the relay has ended: whether the client closed the socket (else the provider did)."""
        self.upstream_close_code: int | None = None
        self.last_error = ""  # the provider's last error event no answer took (session_expired, then its close)
        self.too_many_open = False  # said once per socket
        # A message is held whole however large (the client's session must not break), but read only up to this.
        self.decode_limit = proxy.settings.upstream.max_decoded_bytes

    async def relay(self, upstream: aiohttp.ClientWebSocketResponse, receive: Receive, send: Send) -> None:
        """Pass messages both ways until one side closes, then close the other."""
        to_upstream = asyncio.ensure_future(self._client_to_upstream(upstream, receive, send))
        to_client = asyncio.ensure_future(self._upstream_to_client(upstream, send))
        try:
            done, _ = await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
            # Sending to a provider that already closed also ends the client-side task: not the client leaving.
            client_left = self.client_left = to_upstream in done and to_upstream.exception() is None
            # The code of the provider's close frame: aiohttp's own reply to it, failing on a connection the
            # provider closed at once, would leave 1006 (no close frame) in close_code.
            self.upstream_close_code = self.upstream_close_code or upstream.close_code
        finally:
            for task in (to_upstream, to_client):
                task.cancel()
            await asyncio.gather(to_upstream, to_client, return_exceptions=True)
            if not upstream.closed:  # the client's close, as it sent it
                code, reason = self.client_close
                await upstream.close(code=sendable_code(code, 1000), message=sendable_reason(reason).encode())
        if not client_left:
            try:
                code, reason = sendable_code(self.upstream_close_code, 1011), sendable_reason(self.upstream_reason)
                await send({"type": "websocket.close", "code": code, "reason": reason})
            except (OSError, RuntimeError):
                pass  # the client went away in the meantime
        await self._finish_open_answers(client_left, self.upstream_close_code)

    async def _client_to_upstream(
        self, upstream: aiohttp.ClientWebSocketResponse, receive: Receive, send: Send
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.client_close = (message.get("code", 1000), message.get("reason") or "")
                return
            text = message.get("text")
            if text is not None:
                asks = _CREATE_MARKER in text or _ESCAPE_MARKER in text
                if asks and not await self._start_answer(text, send):
                    continue  # refused by a plugin: answered and recorded, not forwarded
                await upstream.send_str(text)
            elif (data := message.get("bytes")) is not None:
                # A JSON event may come as a binary frame too: its answer is recorded and admitted the same.
                text = data.decode("utf-8", "replace") if b'"response.create"' in data or b"\\u" in data else ""
                if text and not await self._start_answer(text, send):
                    continue
                await upstream.send_bytes(data)

    async def _upstream_to_client(self, upstream: aiohttp.ClientWebSocketResponse, send: Send) -> None:
        while True:
            message = await upstream.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": message.data})
                await to_the_end(self._read_event(message.data))
            elif message.type == aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": message.data})
            else:  # closed (its reason kept for the client), closing or failed
                if message.type == aiohttp.WSMsgType.CLOSE:
                    self.upstream_reason = message.extra or ""
                    self.upstream_close_code = message.data if isinstance(message.data, int) and message.data else None
                elif message.type == aiohttp.WSMsgType.ERROR:  # a message over the limit, say: ccproxy closed it
                    self.upstream_reason = f"{_CLOSED_BY_CCPROXY}{message.data}"
                return

    async def _start_answer(self, text: str, send: Send | None) -> bool:
        """Start recording the answer ``text`` asks for; False when a plugin refused it (asked only with ``send``)."""
        # A request too large to read still starts its answer, whose usage the provider reports.
        event, _ = await off_the_loop_if_large(decoded, text, self.decode_limit)
        if not isinstance(event, dict) or event.get("type") != "response.create":
            return True
        request = event["response"] if self.realtime and isinstance(event.get("response"), dict) else event
        model = request.get("model", event.get("model"))
        model = model if isinstance(model, str) and model else self.model_from_query
        exchange = self._new_exchange(model, len(text), request)
        try:
            await self.proxy.hooks.start(exchange.context)
            answers = await self.proxy.hooks.admit(exchange.context) if send is not None else []
        except asyncio.CancelledError:  # the socket closed while the plugins had it: on_request_end still fires
            await self._finish_unsent(exchange, asked_by_client=send is not None)
            raise
        refusal = next((answer for answer in answers if answer.refuse_status), None)
        if refusal is not None and send is not None:
            await self._refuse_answer(exchange, refusal, send)
            return False
        self.open_answers.add(exchange, event)
        return True

    async def _finish_unsent(self, exchange: Exchange, asked_by_client: bool) -> None:
        """Record an answer the socket's close cut before it was forwarded (whose close, if the relay knows it):
        one the client asked for reached no provider; one the provider began itself may have been billed."""
        exchange.upstream_status, exchange.stream_state = None, None
        exchange.upstream_sent_at = None if asked_by_client else exchange.upstream_sent_at
        if self.client_left is None:
            exchange.note_failure("proxy_cancelled", "the server stopped before this answer was forwarded")
        elif self.client_left:
            message = "client closed the WebSocket before this answer was forwarded"
            exchange.note_failure("client_disconnected", message, 499)
        else:
            closed = describe(self.upstream_close_code, self.upstream_reason)
            exchange.note_failure(
                "upstream_stream_aborted", f"the provider closed the WebSocket before this answer was forwarded{closed}"
            )
        await self.proxy._finish(exchange)

    async def _refuse_answer(self, exchange: Exchange, refusal: Admission, send: Send) -> None:
        """Tell the client with an ``error`` event, as the provider would on this socket; record the refusal."""
        status, error_type = refusal.refuse_status or 400, refusal.error_type or "refused"
        message = safe_error_text(refusal.message, self.proxy.caps.error_message)
        exchange.upstream_status, exchange.stream_state, exchange.upstream_sent_at = None, None, None
        exchange.note_failure(error_type, message, status)
        error = {"type": error_type, "code": error_type, "message": message, "param": None}
        event: dict[str, object] = {"type": "error", "error": error}
        if not self.realtime:  # a protocol error of the Responses socket: its status, an HTTP refusal's error object
            body = exchange.provider.error_body(exchange.provider.local_error_type(status), message, None)
            event = {"type": "error", "status": status, "error": json.loads(body)["error"]}
        exchange.response_started_at = time.perf_counter()
        try:
            await send({"type": "websocket.send", "text": json.dumps(event)})
        finally:
            await self.proxy._finish(exchange)

    async def _read_event(self, text: str) -> None:
        now = time.perf_counter()
        owner = self.open_answers.owner(text)
        find_first_token = owner is None or owner.first_token_at is None
        first_token, event, unread = await off_the_loop_if_large(examined, text, find_first_token, self.decode_limit)
        if self.realtime and isinstance(event, dict) and event.get("type") in _TRANSCRIPTION_EVENTS:
            return await self._note_transcription(event, len(text), now)
        successor = not self.realtime and self.successors.begun(event)  # a steered response's, begun by the provider
        target = self.open_answers.target(event) if isinstance(event, dict) and not successor else None
        voice = self.realtime and target is None and isinstance(event, dict) and event.get("type") == "response.created"
        if isinstance(event, dict) and (successor or voice):
            if self.open_answers.provider_begun >= MOST_PROVIDER_BEGUN:
                self.too_many_open = self.too_many_open or said_too_many_open(self.path)
                return self.open_answers.pass_over(event)
            await self._start_answer(provider_create(event), None)  # begun by the provider (voice activity, a steer)
            target = self.open_answers.begin_newest(event)
        answer = target.exchange if target is not None else owner
        if answer is None:
            return  # events outside an answer (session updates) are not recorded
        if answer.first_byte_at is None:
            answer.first_byte_at = answer.upstream_headers_at = answer.response_started_at = now
        answer.response_bytes += len(text)
        if first_token and answer.first_token_at is None:
            answer.first_token_at = now
        if unread:  # too large to read: what it said is unknown, as for an HTTP answer past the limit
            answer.accounting_lost = True
        if target is None or not isinstance(event, dict):
            if isinstance(event, dict) and event.get("type") == "error":  # no answer's: kept for a close after it
                self.last_error = error_text_before_close(event.get("error"))
            return
        ended = read_response_event(answer.usage, event)
        if self.realtime:
            ended = event.get("type") in REALTIME_ENDS
        if ended:
            self.open_answers.remove(target)
            self.last_error = ""  # an error the provider sent before an answer that ended is no later close's
            answer.upstream_done_at = now
            if answer.stream_state is not None:
                answer.stream_state.terminal_seen = True
                answer.stream_state.error_seen = answer.usage.failed
            await self.proxy._finish(answer)

    async def _note_transcription(self, event: dict[str, Any], size: int, now: float) -> None:
        """The session's transcription model, or a transcription's own record (see ``realtime_transcriptions``)."""
        if event["type"] != TRANSCRIBED:
            self.transcription_model = transcription_model(event)
            return
        exchange = self._new_exchange(self.transcription_model, 0, {})
        try:
            await self.proxy.hooks.start(exchange.context)
            read_transcription(exchange, event, size, now)
        finally:
            await self.proxy._finish(exchange)

    async def _finish_open_answers(self, client_left: bool, upstream_code: int | None) -> None:
        for answer in self.open_answers.take_all():
            answer.upstream_done_at = answer.upstream_done_at or time.perf_counter()
            if client_left:  # with the provider's error no answer took, if one came (this answer's, perhaps)
                answer.note_failure("client_disconnected", CLIENT_LEFT + self.last_error, 499)
            elif self.upstream_reason.startswith(_CLOSED_BY_CCPROXY):  # what the provider sent broke the protocol
                said = self.upstream_reason.removeprefix(_CLOSED_BY_CCPROXY)
                message = f"ccproxy closed the provider's WebSocket mid-answer (code {upstream_code}): {said}"
                answer.note_failure("upstream_stream_aborted", message + self.last_error)
            else:
                closed = describe(upstream_code, self.upstream_reason) + self.last_error
                answer.note_failure("upstream_stream_aborted", f"the provider closed the WebSocket mid-answer{closed}")
            await self.proxy._finish(answer)

    def _new_exchange(self, model: str | None, request_bytes: int, request: dict[str, Any]) -> Exchange:
        return answer_exchange(self.proxy, self.scope, self.path, self.sent_headers, model, request_bytes, request)


_TRANSCRIPTION_EVENTS = SESSION_EVENTS | {TRANSCRIBED}


def _query_model(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("model")
    return values[0] if values else None
