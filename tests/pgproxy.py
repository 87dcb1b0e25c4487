"""A TCP proxy in front of PostgreSQL that can lose a COMMIT's acknowledgement: the server commits,
the client sees its connection drop. For testing that retried batches are not stored twice."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class AckLosingProxy:
    def __init__(self, dsn: str) -> None:
        params: dict[str, Any] = conninfo_to_dict(dsn)
        host = str(params.get("host") or "/var/run/postgresql")
        port = int(params.get("port") or 5432)
        if host.startswith("/"):
            self._target: tuple[int, Any] = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
        else:
            self._target = (socket.AF_INET, (host, port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        params.update(
            host="127.0.0.1", port=str(self.port), sslmode="disable", gssencmode="disable"
        )
        self.dsn = make_conninfo(**params)
        self.drop_next_commit_ack = False
        self.dropped = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.socket(self._target[0], socket.SOCK_STREAM)
            server.connect(self._target[1])
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._from_server, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def _from_server(self, server: socket.socket, client: socket.socket) -> None:
        """Forward whole protocol messages; cut the connection instead of forwarding the
        CommandComplete of a COMMIT when asked to."""
        buf = b""
        try:
            while data := server.recv(65536):
                buf += data
                out = b""
                while len(buf) >= 5:
                    (length,) = struct.unpack("!I", buf[1:5])
                    if len(buf) < 1 + length:
                        break
                    msg, buf = buf[: 1 + length], buf[1 + length :]
                    if msg[:1] == b"C" and msg[5:].startswith(b"COMMIT"):
                        with self._lock:
                            drop = self.drop_next_commit_ack
                            self.drop_next_commit_ack = False
                        if drop:
                            self.dropped += 1
                            client.sendall(out)
                            raise ConnectionAbortedError("ack dropped")
                    out += msg
                client.sendall(out)
        except OSError:
            pass
        finally:
            _close(server, client)


def _close(*socks: socket.socket) -> None:
    # shutdown() first: close() alone does not wake the other thread blocked in recv(), and the
    # peer would never see the connection end.
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()
