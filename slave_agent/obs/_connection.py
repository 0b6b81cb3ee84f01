"""One obs-websocket v5 connection pair through obsws-python: a request socket and an event socket.

obsws-python connects and authenticates; the rest is ours because its own classes leak the
socket when authentication fails, log every refused request with a traceback, and run an
event thread that dies silently on the first exception in a callback. Here the event
reader is our thread: it hands raw events to one callback that cannot kill it, and says
why it stopped. Everything in this module blocks: the supervisor calls it from its worker.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from obsws_python.baseclient import ObsClient
from obsws_python.error import OBSSDKError, OBSSDKTimeoutError
from obsws_python.subs import Subs
from websocket import WebSocketConnectionClosedException, WebSocketException, WebSocketTimeoutException

__all__ = [
    "AuthenticationFailed",
    "Connection",
    "ConnectionLost",
    "ObsError",
    "RequestFailed",
    "RequestTimeout",
]

logger = logging.getLogger(__name__)

# obsws-python logs the password at INFO and every failed connection attempt with a traceback:
# we log what matters ourselves, once.
logging.getLogger("obsws_python").setLevel(logging.CRITICAL)


class ObsError(Exception):
    """An OBS request or connection that did not work; the message is fit for an operator."""


class AuthenticationFailed(ObsError):
    """OBS refused the password (or wants one): retrying with the same settings cannot help."""


class ConnectionLost(ObsError):
    """The websocket is gone or out of step; the supervisor rebuilds the pair."""


class RequestTimeout(ConnectionLost):
    """No answer in time: a late answer would be read as the next one's, so the pair is rebuilt."""


class RequestFailed(ObsError):
    """OBS answered and refused the request (a missing scene, an output not running, ...)."""

    def __init__(self, request: str, code: int, comment: str | None):
        self.request, self.code, self.comment = request, code, comment
        super().__init__(f"OBS refused {request} (code {code}{': ' + comment if comment else ''})")


EventCallback = Callable[[str, dict[str, Any]], None]
LostCallback = Callable[[str], None]


def _open(host: str, port: int, password: str, timeout: float, subs: int) -> tuple[ObsClient, dict[str, Any]]:
    """A connected, identified client; the socket is closed whatever fails."""
    try:
        client = ObsClient(host=host, port=port, password=password, timeout=timeout, subs=subs)
    except (OSError, WebSocketException, ValueError) as exc:
        raise ConnectionLost(f"cannot reach OBS at {host}:{port}: {exc or type(exc).__name__}") from None
    try:
        identified = client.authenticate()
    except OBSSDKError as exc:
        client.ws.shutdown()
        if "authentication" in client.server_hello.get("d", {}):
            raise AuthenticationFailed(
                f"OBS at {host}:{port} refused the password ({'none given' if not password else 'wrong password'})"
            ) from None
        raise ConnectionLost(f"OBS at {host}:{port} did not accept the connection: {exc}") from None
    except (OSError, WebSocketException, ValueError) as exc:
        client.ws.shutdown()
        raise ConnectionLost(f"OBS at {host}:{port} closed the connection while identifying: {exc}") from None
    return client, identified


class Connection:
    """A request socket and an event socket to one OBS, with our own event reader thread."""

    def __init__(self, host: str, port: int, password: str, *, timeout: float, name: str):
        self.name = name
        self._requests, _ = _open(host, port, password, timeout, subs=0)
        try:
            self._events, _ = _open(host, port, password, timeout, subs=Subs.LOW_VOLUME)
        except ObsError:
            self._requests.ws.shutdown()
            raise
        self._events.ws.settimeout(None)
        self._reader: threading.Thread | None = None
        self._closing = False

    def start_events(self, on_event: EventCallback, on_lost: LostCallback) -> None:
        """Read events on a thread of ours; ``on_lost`` is called once, with the reason, when it ends."""
        self._reader = threading.Thread(
            target=self._read_events, args=(on_event, on_lost), name=f"obs-{self.name}-events", daemon=True
        )
        self._reader.start()

    def events_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def _read_events(self, on_event: EventCallback, on_lost: LostCallback) -> None:
        reason = "event connection closed"
        try:
            while True:
                text = self._events.ws.recv()
                if not text:  # a close frame
                    reason = "OBS closed the connection"
                    break
                try:
                    message = json.loads(text)
                    data = message["d"]
                    kind, payload = data.get("eventType"), data.get("eventData") or {}
                except (ValueError, KeyError, TypeError, AttributeError):
                    logger.warning("OBS %s sent something that is not an event; ignored: %.200r", self.name, text)
                    continue
                if kind is None:
                    continue
                try:
                    on_event(kind, payload)
                except Exception:  # a handler's bug must not end the reader
                    logger.exception("Handling OBS %s event %s failed; events keep flowing", self.name, kind)
        except (WebSocketConnectionClosedException, OSError, WebSocketException) as exc:
            reason = "connection lost" if self._closing else f"connection lost ({exc or type(exc).__name__})"
        finally:
            if not self._closing:
                on_lost(reason)

    def request(self, request_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request and return its response data; raises :class:`ObsError` subclasses."""
        try:
            response = self._requests.req(request_type, data)
        except OBSSDKTimeoutError:
            raise RequestTimeout(f"OBS {self.name} did not answer {request_type} in time") from None
        except WebSocketTimeoutException:
            raise RequestTimeout(f"OBS {self.name} did not answer {request_type} in time") from None
        except (OSError, WebSocketException, ValueError) as exc:
            raise ConnectionLost(f"OBS {self.name} connection lost during {request_type}: {exc}") from None
        try:
            status = response["requestStatus"]
            if response.get("requestType") != request_type:
                raise ConnectionLost(f"OBS {self.name} answered {response.get('requestType')} to {request_type}")
        except (KeyError, TypeError):
            raise ConnectionLost(f"OBS {self.name} sent a malformed answer to {request_type}") from None
        if not status.get("result"):
            raise RequestFailed(request_type, int(status.get("code", 0)), status.get("comment"))
        result: dict[str, Any] = response.get("responseData") or {}
        return result

    def abort(self) -> None:
        """Wake whoever waits on either socket (any thread); the pair is unusable afterwards."""
        self._closing = True
        for client in (self._requests, self._events):
            client.ws.abort()

    def close(self) -> None:
        """Close both sockets at once (no closing handshake: OBS must never wait for us)."""
        self.abort()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(2)
        for client in (self._requests, self._events):
            client.ws.shutdown()
