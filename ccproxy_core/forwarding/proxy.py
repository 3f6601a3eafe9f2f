"""The proxy routes: forward the request unchanged, send the answer back unchanged, record it.

Each proxied request runs inside :class:`ExchangeResponse`: the body is read, the exchange
starts (``on_request_start``), the provider is asked and answered, and in one ``finally``
the record is built and ``on_request_end`` fires, once, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import aiohttp
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ccproxy_core.accounting.attribution import Attributor
from ccproxy_core.accounting.batch_results import results_url_through_proxy
from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.price_corrections import load_corrections
from ccproxy_core.error_lines import library_reason
from ccproxy_core.forwarding.answer_reading import (
    AnswerBudget,
    account_whole_answer,
    read_answer_chunks,
    streamed_body_parser,
)
from ccproxy_core.forwarding.billed_once import BilledOnce
from ccproxy_core.forwarding.credentials import (
    client_credential_values,
    configured_keys,
    credential_values,
    operator_keys_by_provider,
)
from ccproxy_core.forwarding.decoding import DecodingFailed, decoder_for, joined_codings
from ccproxy_core.forwarding.exchange import UPSTREAM_COST_HEADER, Arrival, Exchange
from ccproxy_core.forwarding.exchange_response import ExchangeResponse
from ccproxy_core.forwarding.hang_up_watch import HangUpWatch
from ccproxy_core.forwarding.large_bodies import BodyTimeout, read_body, request_fields
from ccproxy_core.forwarding.other_methods import answer_other_method
from ccproxy_core.forwarding.receive_probe import left_while_waiting
from ccproxy_core.forwarding.request_edits import prepared_body
from ccproxy_core.forwarding.request_parts import (
    has_dot_segment,
    off_path_setting,
    proxy_base_url,
    unproxied_message,
    upstream_path,
    upstream_url,
)
from ccproxy_core.forwarding.response_headers import (
    CCPROXY_REQUEST_ID_HEADER,
    id_of_local_error,
    read_response_headers,
    returned_headers,
)
from ccproxy_core.forwarding.responses import (
    PASS_THROUGH,
    answer_cut_request,
    client_gone,
    describe_exception,
    relay_stream,
    send_whole,
)
from ccproxy_core.forwarding.route_table import OUTSIDE_API_PREFIX, UNMATCHED, RouteTable, api_path, fallback_route
from ccproxy_core.forwarding.send_watch import SendWatch
from ccproxy_core.forwarding.unforwarded import UnforwardedRequests
from ccproxy_core.forwarding.upstream import (
    PoolTimeout,
    UnsendableHeader,
    UpstreamPool,
    forwarded_headers,
    never_connected,
    regional_providers,
    unanswered_request,
    unsendable_request,
)
from ccproxy_core.plugin_host.dispatch import RequestHooks
from ccproxy_core.providers import PROXY_ROUTES, ProxyRoute
from ccproxy_core.runtime.access_log import AccessLogger
from ccproxy_core.runtime.body_budget import body_budget
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.safe_values import ValueCaps, safe_error_text, safe_record, safe_text
from ccproxy_core.security.browser_guard import is_browsers_own_request, is_own_path

log = logging.getLogger("ccproxy.proxy")

_UNMATCHED_ROUTE = ProxyRoute(UNMATCHED, "", None)
_MESSAGE_BATCHES = "/v1/messages/batches"


class Proxy(UnforwardedRequests):
    """Forwards requests to the providers, one connection pool each, and records each one."""

    def __init__(self, settings: Settings, hooks: RequestHooks, access_log: AccessLogger) -> None:
        self.settings, self.hooks, self.access_log = settings, hooks, access_log
        self.pools: dict[str, UpstreamPool] = {}
        corrections = load_corrections(settings.upstream.price_corrections_file)
        self.prices = PriceBook(corrections=corrections, regional=regional_providers(settings))
        self.billed_once = BilledOnce()
        self.routes = RouteTable(PROXY_ROUTES)
        self.caps = ValueCaps.from_settings(settings.server)
        self.body_budget = body_budget(settings.server)
        self.answer_budget = AnswerBudget(settings.upstream.max_held_answer_bytes, settings.upstream.max_decoded_bytes)
        self.off_paths: tuple[tuple[str, str], ...] = ()
        """``(URL prefix, setting that turns it on)`` of plugins' paths that are off (see ``PluginSpec``)."""
        self.configured_keys = configured_keys(settings.upstream)
        self.attributor = Attributor(settings.attribution, self.configured_keys, operator_keys_by_provider(settings))
        self.hang_ups, self.sends = HangUpWatch(), SendWatch(settings.server.send_timeout_seconds)
        self.requests_in_flight = 0  # proxied HTTP requests begun and not yet recorded (ExchangeResponse counts)
        self.running: set[asyncio.Task] = set()  # their tasks, for the shutdown to cut in time (cut_running_requests)

    def route_for(self, method: str, path: str) -> ProxyRoute | None:
        """The route serving ``method path``: a named one, or the bounded fallback of any other
        path under a provider's ``/v1/``; ``None`` for paths outside the provider APIs."""
        api = api_path(path)
        if api is None:
            return self.routes.match(method, path) if path in OUTSIDE_API_PREFIX else None
        return self.routes.match(method, api) or fallback_route(method, api)

    async def handle(self, request: Request) -> Response:
        """Any request FastAPI did not route elsewhere: forwarded when under a provider's ``/v1/``.

        A path served with other methods gets 405 (``HEAD`` is served as ``GET``); other paths a
        provider-shaped 404, recorded under the endpoint ``unmatched``; ccproxy's own endpoints, when
        their plugin is off, a 404 naming the setting that turns them on. Paths under ccproxy's own
        and those a browser asks for itself (``/favicon.ico``) are never counted as proxied requests.
        """
        route = self.route_for(request.scope["method"], request.scope["path"])
        if route is not None:
            return ExchangeResponse(self, route)
        if (setting := off_path_setting(self.off_paths, request.url.path)) is not None:
            return JSONResponse({"detail": f"{request.url.path} is off: set {setting}=true to serve it"}, 404)
        if (answer := answer_other_method(request.scope)) is not None:
            return answer
        if is_own_path(request.url.path) or is_browsers_own_request(request.url.path):  # never an API client's
            return JSONResponse({"detail": f"ccproxy has no {safe_text(request.url.path, 200)}"}, 404)
        return ExchangeResponse(self, _UNMATCHED_ROUTE)

    async def serve(self, route: ProxyRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """One whole exchange; ``on_request_end`` fires exactly once, from the ``finally``."""
        request = Request(scope, receive)
        arrived = Arrival(datetime.now(UTC), time.perf_counter())
        # Bodies held in memory by all requests together are bounded (SERVER__MAX_BUFFERED_BODY_BYTES).
        server = self.settings.server
        headers = request.headers
        async with self.body_budget.hold(headers.get("content-length"), "transfer-encoding" in headers) as room:
            if room.cut or room.refused:
                return await self._no_room(scope, route, send, receive, arrived, room.cut)
            try:
                body = (
                    b"" if route is _UNMATCHED_ROUTE else await read_body(request, server, self.body_budget.contended)
                )
                if room.size:  # else nothing is held to give back
                    await self.body_budget.keep(room, len(body or b""))
                left = room.waited and await left_while_waiting(receive)
                # A compressed body is read as far as a plain one would be.
                encoding, kind = headers.get("content-encoding"), headers.get("content-type")
                fields = await request_fields(
                    b"" if left else body or b"",
                    kind,
                    encoding,
                    server.max_request_bytes,
                    scope.get("query_string", b""),
                )
            except BodyTimeout:
                return await self._refused_unread(scope, route, send, arrived, 408)
            except ClientDisconnect:
                return await self._left_while_sending(scope, route, arrived)
            except asyncio.CancelledError:  # the shutdown's time ran out before the request was sent on
                if not await self._cut_while_receiving(scope, route, send, arrived):
                    raise
                return
            if left:
                return await self._left_while_sending(scope, route, arrived)
            exchange = self._start_exchange(scope, route, body, fields, arrived)
            await self._run(request, exchange, body, send, receive)

    async def _run(
        self, request: Request, exchange: Exchange, body: bytes | bytearray | None, send: Send, receive: Receive
    ) -> None:
        try:
            await self.hooks.start(exchange.context)
            if not await self._refused(exchange, send):
                await self._exchange(request, exchange, body, send, receive)
        except BaseException as exc:
            # A bug or a server shutdown: the client gets an answer and the record says what happened.
            cancelled = isinstance(exc, asyncio.CancelledError)
            exchange.note_failure("proxy_cancelled" if cancelled else "proxy_error", describe_exception(exc))
            if exchange.response_started_at is None and await answer_cut_request(exchange, send, cancelled):
                return  # cancelled by a shutdown that waited long enough: the client has its 503
            raise
        finally:
            await self._finish(exchange)

    async def _exchange(
        self, request: Request, exchange: Exchange, body: bytes | bytearray | None, send: Send, receive: Receive
    ) -> None:
        ctx = exchange.context
        forwarded_path = upstream_path(request.scope)
        if ctx.endpoint == UNMATCHED or forwarded_path is None or has_dot_segment(forwarded_path):
            message = unproxied_message(ctx.method, request.scope)
            return await self._local_error(exchange, send, 404, "not_found", message)
        if body is None:
            message = f"request body is larger than SERVER__MAX_REQUEST_BYTES={self.settings.server.max_request_bytes}"
            # The rest of the body will not be read: left open, the server would drain it, as long as it came.
            exchange.extra_headers.append((b"connection", b"close"))
            return await self._local_error(exchange, send, 413, "request_too_large", message)
        pool = self.pools[ctx.service_type]
        upstream = None
        with self.hang_ups.waiting(receive, exchange):
            upstream = await self._connect(request, exchange, pool, body, send)
        if upstream is not None:
            try:
                with self.sends.watching(send, exchange) as watched_send:
                    await self._relay(exchange, upstream, watched_send, receive, request)
            finally:
                pool.release()

    async def _connect(
        self, request: Request, exchange: Exchange, pool: UpstreamPool, body: bytes | bytearray, send: Send
    ) -> aiohttp.ClientResponse | None:
        """A connection slot and the head of the provider's answer; ``None`` (the slot given back) when
        the client was answered here instead."""
        try:
            await pool.acquire()
        except PoolTimeout:
            message = (
                f"no free connection to {exchange.context.service_type} within "
                f"UPSTREAM__POOL_TIMEOUT_SECONDS={pool.wait_seconds:g} (all UPSTREAM__MAX_CONNECTIONS={pool.size} in use)"
            )
            await self._local_error(exchange, send, 504, "upstream_pool_timeout", message)
            return None
        upstream = None
        try:
            upstream = await self._send_upstream(request, exchange, pool, body, send)
        finally:
            if upstream is None:
                pool.release()
        return upstream

    async def _refused(self, exchange: Exchange, send: Send) -> bool:
        """Ask the plugins (``admit_request``); answer a refusal here. Their headers go on the response either way."""
        answers = await self.hooks.admit(exchange.context)
        if not answers:
            return False
        exchange.extra_headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for answer in answers for name, value in answer.headers
        ]
        refusal = next((answer for answer in answers if answer.refuse_status), None)
        if refusal is None:
            return False
        await self._local_error(exchange, send, refusal.refuse_status, refusal.error_type or "refused", refusal.message)
        return True

    async def _send_upstream(
        self, request: Request, exchange: Exchange, pool: UpstreamPool, body: bytes | bytearray, send: Send
    ) -> aiohttp.ClientResponse | None:
        ctx, provider = exchange.context, exchange.provider
        url = upstream_url(pool.base_url, request.scope)
        try:
            headers = forwarded_headers(request.headers, provider, self.settings)
        except UnsendableHeader as exc:
            await self._local_error(exchange, send, 400, "invalid_request", str(exc))
            return None
        exchange.sent_headers = headers
        if ctx.endpoint.startswith(_MESSAGE_BATCHES) and exchange.reader == "none":
            headers["accept-encoding"] = "identity"  # so results_url can be pointed at ccproxy (see _relay)
        if body and ctx.streaming:  # only a stream's request is ever changed
            limit = self.settings.server.max_request_bytes
            body = await prepared_body(provider, ctx.endpoint, body, self.settings.upstream, headers, limit)
        exchange.upstream_sent_at = exchange.handed_over_at = time.perf_counter()
        try:
            # HEAD is answered as GET without a body (the server drops it): providers serve GET.
            method = "GET" if ctx.method == "HEAD" else ctx.method
            return await pool.send(method, url, body, headers)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            exchange.upstream_sent_at = None if never_connected(exc, method) else exchange.upstream_sent_at
            await self._local_error(exchange, send, *unanswered_request(ctx.service_type, exc))
        except ValueError as exc:  # a URL or header value the upstream client refuses to send
            exchange.upstream_sent_at = None
            await self._local_error(exchange, send, *unsendable_request(exc, headers, provider, self.settings))
        return None

    async def _relay(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse, send: Send, receive: Receive, request: Request
    ) -> None:
        exchange.upstream_headers_at = time.perf_counter()
        exchange.upstream_status = exchange.client_status = upstream.status
        if not 200 <= upstream.status <= 599:  # no client could be sent it (and 1xx are not final answers)
            upstream.close()  # its connection is not reused
            message = f"the provider answered with status {upstream.status}, which is not a final HTTP status"
            return await self._local_error(exchange, send, 502, "upstream_invalid_status", message)
        raw = upstream.raw_headers
        exchange.rate_limits, exchange.upstream_request_id = read_response_headers(exchange.provider, raw)
        exchange.note_sdk_cost(upstream.headers.get(UPSTREAM_COST_HEADER))
        headers = returned_headers(raw, exchange.context.request_id)
        if exchange.extra_headers:
            headers += exchange.extra_headers
        try:
            codings = joined_codings(upstream.headers.getall("content-encoding", ()))
            decoder = decoder_for(codings, self.settings.upstream.max_decoded_bytes)
        except DecodingFailed:
            decoder, exchange.accounting_lost = None, True
        if upstream.status < 300 and exchange.context.method != "HEAD":  # errors and redirects are read whole
            parser = streamed_body_parser(exchange, upstream, self.prices, self.billed_once)
            if parser is not None:
                if exchange.accounting_lost:  # in a coding ccproxy cannot undo: passed on unread
                    decoder, parser = None, PASS_THROUGH
                return await relay_stream(exchange, upstream, headers, decoder, send, receive, parser)
        limit = self.settings.upstream.max_decoded_bytes
        try:  # a provider that sends its answer slowly must not hold it for a client that has gone
            with self.hang_ups.waiting(receive, exchange, "while the provider's answer arrived") as waiting:
                chunks, whole = await read_answer_chunks(exchange, upstream, limit, self.answer_budget)
            if waiting.cut:
                return upstream.close()  # half read: the connection cannot serve another request
        except TimeoutError:
            exchange.upstream_done_at = time.perf_counter()
            upstream.release()
            stopped = "the provider stopped sending its answer"
            return await self._local_error(exchange, send, 504, "upstream_timeout", stopped)
        except aiohttp.ClientError as exc:
            exchange.upstream_done_at = time.perf_counter()
            upstream.release()
            message = f"the provider broke off its answer: {library_reason(str(exc))}"
            return await self._local_error(exchange, send, 502, "upstream_stream_aborted", message)
        except BaseException:  # cancelled (shutdown, client gone): the connection is not left behind
            upstream.release()
            raise
        if not whole:  # larger than is held to read it (or no room): passed on as it comes, its usage unknown
            exchange.accounting_lost = True
            return await relay_stream(exchange, upstream, headers, None, send, receive, PASS_THROUGH, chunks)
        upstream.release()
        payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        exchange.upstream_done_at = time.perf_counter()
        await account_whole_answer(exchange, upstream, decoder, payload)
        if exchange.context.endpoint.startswith(_MESSAGE_BATCHES) and upstream.status < 400 and decoder is None:
            payload = results_url_through_proxy(
                payload, self.pools[exchange.context.service_type].base_url, proxy_base_url(request)
            )
        if not client_gone(exchange, receive):  # gone: the answer's usage is still recorded, as it is billed
            await send_whole(send, exchange, upstream.status, headers, payload)

    async def _local_error(self, exchange: Exchange, send: Send, status: int, error_type: str, message: str) -> None:
        message = safe_error_text(message, self.caps.error_message)
        exchange.note_failure(error_type, message, status)
        provider = exchange.provider
        body = provider.error_body(provider.local_error_type(status), message, exchange.context.request_id)
        headers = [(CCPROXY_REQUEST_ID_HEADER, exchange.context.request_id.encode())]
        if (shown := id_of_local_error(exchange.context.request_id, exchange)) is not None:
            headers.append((provider.request_id_header.encode(), shown))
        headers.append((b"content-type", b"application/json"))
        await send_whole(send, exchange, status, headers + exchange.extra_headers, body)

    async def _finish(self, exchange: Exchange) -> None:
        self.answer_budget.give_back(exchange)
        origin = self.billed_once.settle(exchange)
        record = origin.fill(exchange.to_record(self.prices))
        # A provider's answer can echo the key in any text it reports (about 1 µs to look them up); a client
        # may put its own or any configured one (sent or not) in its path, query or model name.
        if exchange.sent_headers:
            keys = credential_values(exchange.sent_headers) + exchange.other_keys
        else:
            keys = exchange.other_keys + client_credential_values(exchange.client_headers)
        record = safe_record(record, self.caps, keys)
        self.access_log.emit(record)
        await self.hooks.end(exchange.context, record)
