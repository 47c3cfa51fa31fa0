#!/usr/bin/env python3
"""reloadload.py PORT MAX_SECONDS [KEEPALIVE_CONNS NEWCONN_LOOPS]: HTTP load on
127.0.0.1:PORT that counts every failure precisely, for the `reload` test.

Runs until stdin reaches EOF (the bench has finished reloading) or MAX_SECONDS pass.
Two kinds of clients run side by side:
  * keep-alive: KEEPALIVE_CONNS connections each sending GET / back to back; a request
    that gets no complete response (EOF, reset, timeout) is a failure. When the server
    closes the connection *between* requests (nginx and HAProxy close idle keep-alive
    connections on reload) the next request on it fails: counted as `ka_failed_idle`
    (a browser would silently retry it) - still a failed request.
  * new-connection: NEWCONN_LOOPS loops each doing connect, GET / with
    Connection: close, read the response. connect() refused/reset is `refused`; any
    other failure after connecting is `new_failed`.
A response that is complete but not 200 is `bad_status`. Nothing is retried.
Prints one JSON line with the counters.
"""
import asyncio
import json
import os
import sys
import time

KA_REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
NEW_REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
TIMEOUT = 5.0


class Stats(dict):
    def bump(self, key, n=1):
        self[key] = self.get(key, 0) + n


async def read_response(reader):
    """(status, wants_close) of one complete response, or raises."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and b"close" in value.lower():
            close = True
    await reader.readexactly(length)
    return status, close


async def connect(port, stats, prefix):
    try:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    except ConnectionRefusedError:
        stats.bump("refused")
    except (ConnectionResetError, asyncio.TimeoutError, OSError) as e:
        stats.bump(prefix + "connect_failed")
        stats.bump("error:" + type(e).__name__)
    return None


async def keepalive_client(port, deadline, stats):
    reader = writer = None
    used = 0  # requests answered on the current connection
    while time.monotonic() < deadline[0]:
        if writer is None:
            pair = await connect(port, stats, "ka_")
            if pair is None:
                await asyncio.sleep(0.01)
                continue
            reader, writer = pair
            used = 0
        try:
            writer.write(KA_REQUEST)
            status, close = await asyncio.wait_for(read_response(reader), TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError,
                OSError, ValueError, IndexError) as e:
            stats.bump("ka_failed_idle" if used and isinstance(
                e, (asyncio.IncompleteReadError, ConnectionResetError)) and not getattr(
                e, "partial", b"") else "ka_failed_other")
            stats.bump("error:" + type(e).__name__)
            writer.transport.abort()
            writer = None
            continue
        used += 1
        stats.bump("ok" if status == 200 else "bad_status")
        if close:
            stats.bump("ka_closed_cleanly")
            writer.close()
            writer = None
    if writer is not None:
        writer.transport.abort()


async def newconn_client(port, deadline, stats):
    while time.monotonic() < deadline[0]:
        pair = await connect(port, stats, "new_")
        if pair is None:
            await asyncio.sleep(0.01)
            continue
        reader, writer = pair
        try:
            writer.write(NEW_REQUEST)
            status, _ = await asyncio.wait_for(read_response(reader), TIMEOUT)
            stats.bump("ok" if status == 200 else "bad_status")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError,
                OSError, ValueError, IndexError) as e:
            stats.bump("new_failed")
            stats.bump("error:" + type(e).__name__)
        writer.transport.abort()


async def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    ka = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    new = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    stats = Stats(ok=0, bad_status=0, ka_failed_idle=0, ka_failed_other=0,
                  ka_connect_failed=0, ka_closed_cleanly=0, new_failed=0,
                  new_connect_failed=0, refused=0)
    deadline = [time.monotonic() + seconds]
    loop = asyncio.get_running_loop()
    stdin_done = loop.run_in_executor(None, sys.stdin.read)
    stdin_done.add_done_callback(lambda _: deadline.__setitem__(0, time.monotonic()))
    await asyncio.gather(*([keepalive_client(port, deadline, stats) for _ in range(ka)] +
                           [newconn_client(port, deadline, stats) for _ in range(new)]))
    stats["failed"] = (stats["ka_failed_idle"] + stats["ka_failed_other"] +
                       stats["new_failed"] + stats["bad_status"])
    stats["refused_total"] = (stats["refused"] + stats["ka_connect_failed"] +
                              stats["new_connect_failed"])
    print(json.dumps(stats), flush=True)
    os._exit(0)  # the stdin reader thread may still be blocked


if __name__ == "__main__":
    asyncio.run(main())
