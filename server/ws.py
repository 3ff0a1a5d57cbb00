"""`GET /ws`: the thin adapter between a WebSocket and the hearing protocol.

It reads frames, lets `signaling` parse and judge them, hands SDP and candidates to the participant's
`Peer`, and writes the replies. Every refusal is an `error` message; only fatal ones (a bad token,
abuse) close the socket. Nothing a client sends can end the hearing for anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from aiohttp import WSCloseCode, WSMsgType, web

from server import state
from server.live import Connection
from signaling import messages
from signaling.errors import ProtocolError
from signaling.hearing import CONSULTATION_ROLES, HearingKind
from signaling.messages import (
    Answer,
    Candidate,
    Consult,
    Control,
    End,
    Floor,
    Join,
    Leave,
    Mute,
    Note,
    Pause,
    Resume,
    Share,
    Silence,
    Spotlight,
)
from signaling.ratelimit import TokenBucket
from signaling.roles import grants

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 10.0
HEARTBEAT = 15.0
RATE = 20.0
BURST = 50.0
MAX_REFUSED_IN_A_ROW = 200
MAX_FRAME_BYTES = 1024 * 1024


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    services = app[state.SERVICES]
    # Frames up to 1 MiB reach the parser, which answers "too-large" and keeps the socket; a
    # larger frame is cut off by aiohttp with close code 1009 (message too big).
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_FRAME_BYTES)
    await ws.prepare(request)
    services.sockets.add(ws)
    send_lock = asyncio.Lock()

    async def send(text: str) -> None:
        if ws.closed:
            raise ConnectionError("socket closed")
        async with send_lock:
            await ws.send_str(text)

    async def send_error(error: ProtocolError) -> None:
        try:
            await send(messages.encode_error(error))
        except ConnectionError:
            pass

    closing_reason: list[str] = []

    async def close(reason: str) -> None:
        closing_reason.append(reason)
        if not ws.closed:
            await ws.close(code=WSCloseCode.OK, message=reason.encode()[:100])

    bucket = TokenBucket(RATE, BURST)
    refused = 0
    connection: Connection | None = None
    live = None
    try:
        while True:
            timeout = JOIN_TIMEOUT if connection is None else None
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                await send_error(ProtocolError("not-joined", "no join within 10 s", fatal=True))
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
            if msg.type == WSMsgType.ERROR:
                logger.info("websocket error: %s", ws.exception())
                break
            data: str | bytes = msg.data if msg.type == WSMsgType.TEXT else bytes(msg.data)
            if not bucket.allow(time.monotonic()):
                refused += 1
                if refused >= MAX_REFUSED_IN_A_ROW:
                    await send_error(ProtocolError("rate-limited", "too many messages", fatal=True))
                    break
                if refused == 1 or refused % 50 == 0:
                    await send_error(ProtocolError("rate-limited", "slow down"))
                continue
            refused = 0
            try:
                message = messages.parse_client_message(data)
                if isinstance(message, Join):
                    if connection is not None:
                        raise ProtocolError("already-joined", "this socket has joined already")
                    live, connection = await _join(request, message, send, close)
                    continue
                if connection is None or live is None:
                    raise ProtocolError("not-joined", "send join first")
                if isinstance(message, Leave):
                    closing_reason.append("left")
                    break
                if isinstance(message, Answer):
                    if connection.peer is None:
                        raise ProtocolError("forbidden", "this role has no media")
                    await connection.peer.handle_answer(message.sdp, message.offer_id)
                elif isinstance(message, Candidate):
                    if connection.peer is not None:
                        await connection.peer.add_candidate(
                            message.candidate, message.sdp_mid, message.sdp_mline_index
                        )
                elif isinstance(message, Mute):
                    events = live.hearing.set_muted(
                        connection.participant_id, message.kind, message.muted, time.time()
                    )
                    await live.broadcast(events)
                elif isinstance(message, Pause):
                    await live.pause(connection.participant_id, message.reason)
                elif isinstance(message, Resume):
                    await live.resume(connection.participant_id)
                elif isinstance(message, Control):
                    await live.control(
                        connection.participant_id, message.type, message.participant_id
                    )
                elif isinstance(message, Note):
                    await live.note(connection.participant_id, message.text)
                elif isinstance(message, Silence | Floor):
                    await live.floor(connection.participant_id, message)
                elif isinstance(message, Spotlight):
                    await live.spotlight(connection.participant_id, message.participant_id)
                elif isinstance(message, Share):
                    live.request_share(connection.participant_id, message.on)
                elif isinstance(message, Consult):
                    asker = live.hearing.participants[connection.participant_id]
                    if (
                        asker.role not in CONSULTATION_ROLES
                        or live.hearing.kind is HearingKind.consultation
                    ):
                        raise ProtocolError("forbidden", "only defence and defendant consult")
                    court = asker.court.code if asker.court is not None else None
                    url = services.consultation_url(
                        live.id, asker.role, asker.name, asker.key, court
                    )
                    if live.recorder is not None:
                        live.recorder.event(
                            "consultation", {"participant": asker.id, "role": asker.role}
                        )
                    await send(messages.encode_consultation(url))
                elif isinstance(message, End):
                    me = live.hearing.participants.get(connection.participant_id)
                    if me is None or not grants(me.role).control:
                        raise ProtocolError("forbidden", "only the presiding judge ends a hearing")
                    await services.end_hearing(live.id)
                    break
            except ProtocolError as error:
                await send_error(error)
                if error.fatal:
                    break
            except ConnectionError:
                break
            except Exception:
                logger.exception("unexpected error handling a message")
                await send_error(ProtocolError("internal", "internal error"))
    finally:
        if connection is not None and live is not None:
            reason = closing_reason[0] if closing_reason else "disconnected"
            reason = (
                reason if reason in ("left", "replaced", "ended", "ejected") else "disconnected"
            )
            if (
                reason != "replaced"
                and live.connections.get(connection.participant_id) is connection
            ):
                if live.hearing.kind is HearingKind.consultation:
                    leaving = live.hearing.participants.get(connection.participant_id)
                    if leaving is not None:
                        services.consultation_event(
                            live.id, "consultation-leave", leaving.name, leaving.role
                        )
                if reason == "disconnected":
                    # A dropped link is not a departure: keep the place for the grace period.
                    live.disconnected(connection.participant_id)
                else:
                    await live.leave(connection.participant_id, reason)
        services.sockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


async def _join(
    request: web.Request, message: Join, send: state.Sender, close: state.Closer
) -> tuple[state.LiveHearingT, Connection]:
    services = request.app[state.SERVICES]
    now = time.time()
    claims = services.tokens.verify_join(message.token, now)
    if await services.is_revoked(claims.participant_key):
        raise ProtocolError("bad-token", "this invitation was revoked", fatal=True)
    live = await services.live_hearing(claims.hearing_id)
    participant_id = uuid.uuid4().hex[:12]
    events = live.hearing.join(participant_id, claims, now)
    connection = Connection(participant_id, send, close)
    await live.join(connection, events)
    if live.hearing.kind is HearingKind.consultation:
        services.consultation_event(live.id, "consultation-join", claims.name, claims.role)
    logger.info(
        "hearing %s: %s (%s) joined as %s", live.id, claims.name, claims.role, participant_id
    )
    return live, connection
