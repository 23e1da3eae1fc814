"""bench/latency_proxy.py: a bucket on loopback answered as across a network, for bench/media_storage.py."""

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import latency_proxy  # noqa: E402

DELAY = 0.05  # one way


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def round_trips(message: bytes) -> list[tuple[bytes, float]]:
    """(what came back, seconds) for a connection's first request and its second, through the proxy to an echo."""
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = await latency_proxy.serve("127.0.0.1", server.sockets[0].getsockname()[1], DELAY)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.sockets[0].getsockname()[1])
    answers = []
    for _ in range(2):
        started = time.perf_counter()
        writer.write(message)
        answers.append((await reader.readexactly(len(message)), time.perf_counter() - started))
    writer.close()
    proxy.close()
    server.close()
    return answers


def test_it_delays_each_way_and_the_first_request_by_a_handshake_more():
    message = bytes(range(256)) * 4096  # 1 MiB: several chunks, in order
    (first, first_s), (second, second_s) = asyncio.run(round_trips(message))
    assert first == second == message
    assert first_s >= 4 * DELAY and 2 * DELAY <= second_s < first_s
