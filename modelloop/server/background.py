"""A uvicorn server in a background thread on a free loopback port.

Used by ``modelloop demo`` and the test suite: the real HTTP stack, in-process.
"""

from __future__ import annotations

import threading
import time
import types

import uvicorn
from starlette.types import ASGIApp

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """Serve ``app`` on ``127.0.0.1`` (a free port unless given) until :meth:`stop`.

    Use it as a context manager; ``url`` is the base URL once started. Stopping is
    graceful: in-flight requests finish before the thread ends.
    """

    def __init__(self, app: ASGIApp, port: int = 0, *, lifespan: str = "off") -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            interface="asgi3",
            lifespan=lifespan,  # type: ignore[arg-type]
            ws="none",
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="modelloop-http", daemon=True)
        self.url = ""

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.002)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Finish in-flight requests and stop."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()
