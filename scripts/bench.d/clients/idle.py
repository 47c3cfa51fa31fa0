#!/usr/bin/env python3
"""idle.py PORT COUNT [--tls CAFILE]: open COUNT keep-alive connections to 127.0.0.1:PORT,
send one GET / on each and read its whole response, then hold them all open and idle.

Prints one line `READY {"open": n, "failed": f, "errors": {...}}` when every connection
is either open-and-answered or failed, then waits until stdin reaches EOF (the bench
has measured the proxy), closes everything and exits. Used by the `mem` test.
"""
import asyncio
import json
import resource
import ssl
import sys

CONCURRENT_OPENS = 100  # connection attempts in flight; the listen backlog is >= 511
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need + 100))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def open_one(port, ctx, sem, held, errors):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="localhost" if ctx else None), 20)
            writer.write(REQUEST)
            status = await asyncio.wait_for(read_response(reader), 20)
            if status != 200:
                raise ValueError("status %d" % status)
            held.append(writer)
        except Exception as e:  # any failure is counted, by kind
            kind = type(e).__name__
            errors[kind] = errors.get(kind, 0) + 1


async def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    ctx = None
    if len(sys.argv) > 4 and sys.argv[3] == "--tls":
        ctx = ssl.create_default_context(cafile=sys.argv[4])
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    limit = raise_fd_limit(count)
    if limit < count + 50:
        print("idle.py: fd limit %d too low for %d connections" % (limit, count), file=sys.stderr)
    sem = asyncio.Semaphore(CONCURRENT_OPENS)
    held, errors = [], {}
    await asyncio.gather(*(open_one(port, ctx, sem, held, errors) for _ in range(count)))
    print("READY " + json.dumps({"open": len(held), "failed": count - len(held),
                                 "errors": errors}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for writer in held:
        writer.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())
