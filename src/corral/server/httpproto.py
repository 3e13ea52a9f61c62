"""The HTTP/1.1 protocol of a Corral server: uvicorn's httptools protocol, keeping the bytes that follow an
upgrade request.

uvicorn hands a WebSocket upgrade to the WebSocket protocol with the request alone, and drops whatever the
client sent after it in the same read. RFC 6455 asks a client to wait for the 101, but one that sends its
first frame with the upgrade request, in one write, would lose that frame and wait for its reply forever.
:class:`CorralHttpProtocol` passes those bytes on, so the frame is answered right after the 101.
"""

from __future__ import annotations

import asyncio

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CorralHttpProtocol(HttpToolsProtocol):
    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
        except httptools.HttpParserUpgrade as upgrade:
            if not self._should_upgrade():
                self._unsupported_upgrade_warning()
                return
            self.handle_websocket_upgrade()
            # The request ended at this offset of ``data``; the rest belongs to the upgraded protocol.
            rest = data[upgrade.args[0]:] if upgrade.args else b""
            upgraded = self.transport.get_protocol()
            if rest and isinstance(upgraded, asyncio.Protocol):
                upgraded.data_received(rest)
