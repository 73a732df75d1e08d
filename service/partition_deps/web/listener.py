"""The HTTP listener (`--http-listen`): Connect calls by POST, the status page by GET.

The standard library's ThreadingHTTPServer is enough: a thread per connection only waits on the
gRPC call or renders a page, and the work itself runs in the gRPC server's own workers.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

from partition_deps.web.connect import Answer, ConnectGateway
from partition_deps.web.pages import StatusPages, parse_request, signed_in

logger = logging.getLogger(__name__)

# JSON spells a message out at several times its binary size.
JSON_SIZE_FACTOR = 8


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        gateway: ConnectGateway,
        pages: StatusPages,
        body_limit: int,
        reuse_port: bool,
    ) -> None:
        self.gateway = gateway
        self.pages = pages
        self.body_limit = body_limit
        self.reuse_port = reuse_port
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self.reuse_port:  # several serving processes share the port, as they do gRPC's
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive: every answer carries its Content-Length.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format, *args)

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    def _headers(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}

    def do_GET(self) -> None:
        self._send(self.server.pages.answer(parse_request(self.path, self._headers())))

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(Answer(HTTPStatus.LENGTH_REQUIRED, "text/plain", b"Content-Length\n"))
            return
        if int(length) > self.server.body_limit:
            self.close_connection = True  # the body is left unread
            too_large = f"the body is over {self.server.body_limit} bytes\n".encode()
            self._send(Answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "text/plain", too_large))
            return
        body = self.rfile.read(int(length))
        if self.path == "/ui/login":
            self._send(signed_in(body))
            return
        headers = self._headers()
        self._send(
            self.server.gateway.call(self.path, headers.get("content-type", ""), body, headers)
        )


class HttpListener:
    """Serves HTTP on `address` in a thread of its own, calling `grpc_server` over a socket.

    Built before `grpc_server` starts: it adds the server a port on a Unix socket in a folder
    only this user can open, so the calls it forwards skip TLS but nobody else can make them.
    """

    def __init__(
        self,
        grpc_server: grpc.Server,
        address: tuple[str, int],
        max_message_bytes: int,
        reuse_port: bool = False,
    ) -> None:
        self._folder = tempfile.mkdtemp(prefix="partition-deps-http-")
        target = f"unix:{self._folder}/grpc.sock"
        grpc_server.add_insecure_port(target)
        channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", max_message_bytes)]
        )
        self._channel = channel
        self._http = _Server(
            address,
            ConnectGateway(channel),
            StatusPages(channel),
            max_message_bytes * JSON_SIZE_FACTOR,
            reuse_port,
        )
        self.port: int = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._channel.close()
        shutil.rmtree(self._folder, ignore_errors=True)
