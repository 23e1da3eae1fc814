"""A TCP proxy that adds a fixed delay each way, to time a bucket on loopback as if it were across a network.

    .venv/bin/python bench/latency_proxy.py HOST:PORT DELAY_MS   (prints the loopback port it listens on)

Every chunk read on one side is written to the other `DELAY_MS` milliseconds later, in order, without waiting for the
chunks before it to arrive: a round trip costs 2 x DELAY_MS and a stream's throughput is not limited (a link with
latency, not a slow link). A new connection's first bytes wait one more round trip, as a TCP handshake would. Run in
its own process (`bench/media_storage.py` starts one per delay): in the bench's process its work would hold the GIL
the timed threads need.
"""

from __future__ import annotations

import asyncio
import sys

CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy `reader` to `writer`, each chunk `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            await asyncio.sleep(due - loop.time())
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    delivering = asyncio.create_task(deliver())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((loop.time() + delay, b""))
    try:
        await delivering
    except ConnectionError:
        pass


async def serve(host: str, port: int, delay: float) -> asyncio.Server:
    """A server on a free loopback port that forwards each connection to `host:port` with `delay` seconds each way."""

    async def forward(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2 * delay)  # the handshake a remote server would cost
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer, delay), _pipe(upstream_reader, client_writer, delay))
        for writer in (client_writer, upstream_writer):
            writer.close()

    return await asyncio.start_server(forward, "127.0.0.1", 0)


async def main(target: str, delay_ms: float) -> None:
    host, port = target.rsplit(":", 1)
    server = await serve(host, int(port), delay_ms / 1000)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
