"""A fault-injecting front for the real llama-server, used as the engine binary in tests.

Usage (as the `llama-server` on PATH): fault_server.py MODE AFTER REAL_BINARY -- <llama-server args>
It starts the real llama-server on an internal port (a free one the kernel picks; the front exits
with the real server's code if that dies), listens on --port itself and
forwards raw TCP. Completion requests (POST .../completions) are counted; modes:
  exit-at-start  exit 3 at once (the engine dies while starting)
  never-ready    listen but never answer anything (health never turns 200)
  crash          after AFTER completion requests: os._exit(1), leaving the real server behind
                 as a stray child in the process group (cleanup must kill it)
  hang           after AFTER completion requests: accept connections but never answer again
  endless-stream after AFTER completion requests: answer each with an SSE stream that never ends
                 (everything else, health included, still reaches the real server)
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


EVENT = b'data: {"choices":[{"index":0,"text":" tok","finish_reason":null}]}\n\n' * 64


async def _endless(writer: asyncio.StreamWriter) -> None:
    """A 200 event stream that never ends; returns when the client goes away."""
    piece = b"%x\r\n%s\r\n" % (len(EVENT), EVENT)
    try:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while True:
            writer.write(piece)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class Front:
    def __init__(self, mode: str, after: int, backend_port: int) -> None:
        self.mode, self.after, self.backend_port, self.count = mode, after, backend_port, 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "never-ready" or (self.mode == "hang" and self.count >= self.after):
            await asyncio.sleep(3600)
            return
        first = await reader.read(65536)
        if first.startswith(b"POST") and b"completions" in first.split(b"\r\n", 1)[0]:
            self.count += 1
            if self.count > self.after:
                if self.mode == "crash":
                    os._exit(1)
                if self.mode == "endless-stream":
                    await _endless(writer)
                    return
                await asyncio.sleep(3600)  # hang
                return
        try:
            br, bw = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            writer.close()
            return
        bw.write(first)
        await asyncio.gather(_pipe(reader, bw), _pipe(br, writer))


async def main(mode: str, after: int, real: str, args: list[str]) -> None:
    port = int(args[args.index("--port") + 1])
    if mode == "exit-at-start":
        print("fault_server: exiting at start", flush=True)
        sys.exit(3)
    backend_port = _free_port()  # not --port + 1: that one may be taken
    backend_args = list(args)
    backend_args[args.index("--port") + 1] = str(backend_port)
    front = Front(mode, after, backend_port)
    server = await asyncio.start_server(front.handle, "127.0.0.1", port)
    async with server:
        if mode == "never-ready":
            await server.serve_forever()
        backend = subprocess.Popen([real, *backend_args])
        while (rc := backend.poll()) is None:  # a real server that dies takes the front with it
            await asyncio.sleep(0.1)
        print(f"fault_server: the real server exited ({rc})", flush=True)
        os._exit(rc if rc > 0 else 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sep = sys.argv.index("--")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[sep + 1 :]))
