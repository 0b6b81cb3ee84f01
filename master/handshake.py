"""Says loudly when a court takes the connection but never completes the CURVE handshake.

A CURVE client learns nothing from a server that cannot decrypt its greeting: the server
just drops the connection at once and libzmq reconnects, forever, in silence. That is what a
court looks like that does not hold the key the director approved for its node (a replaced
laptop, new keys, an impostor at a configured address) or that runs without CURVE. This watch
counts connections dropped within moments and without a handshake on a link's DEALER, and says
so once, as an ERROR. A court that is merely frozen or overloaded keeps the connection open
without answering: that is the heartbeats' business (offline), not counted here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

__all__ = ["HANDSHAKE_ATTEMPTS", "REFUSED_WITHIN_SECONDS", "async_watch_handshakes"]

logger = logging.getLogger(__name__)

#: Connections in a row dropped without a handshake before the problem is said.
HANDSHAKE_ATTEMPTS = 3
#: A drop this soon after connecting is a refusal, not a court that is slow or frozen.
REFUSED_WITHIN_SECONDS = 2.0
_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_DISCONNECTED
           | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


async def async_watch_handshakes(sock: zmq.asyncio.Socket, describe: Callable[[], str]) -> None:
    """Watch ``sock`` until cancelled; ``describe()`` names the court and its address for the log."""
    monitor = sock.get_monitor_socket(_EVENTS)
    loop = asyncio.get_running_loop()
    failures, said, connected_at = 0, False, None
    try:
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                if said:
                    logger.warning("The CURVE handshake with %s succeeds again", describe())
                failures, said, connected_at = 0, False, None
            elif event == zmq.EVENT_CONNECTED:
                connected_at = loop.time()
            elif connected_at is not None:  # dropped, or failed, before any handshake
                quick = loop.time() - connected_at < REFUSED_WITHIN_SECONDS
                connected_at = None
                failures = failures + 1 if quick else 0
                if failures >= HANDSHAKE_ATTEMPTS and not said:
                    said = True
                    logger.error(
                        "%s accepts connections but never completes the CURVE handshake: it does not hold the key "
                        "approved for that node (a replaced laptop, new keys, or an impostor), or it runs without "
                        "CURVE. Nothing is read from it. If its keys were replaced on purpose: "
                        "restrike master approve NODE --key KEY --replace", describe(),
                    )
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)
