#!/usr/bin/env python3
"""A TCP round-robin load balancer for the cluster tests: what a Service's kube-proxy does.

    round_robin_proxy.py LISTEN_PORT BACKEND_PORT... (127.0.0.1 only; 0 picks a free port)

Each accepted connection goes to the next backend in turn and bytes are copied both ways
unchanged (TLS passes through: the API server verifies the replicas' own certificate). Prints
"listening PORT" on stdout once bound, and one line per connection on stderr
("conn N -> BACKEND"), so the test can check that every replica got connections."""
import asyncio
import itertools
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    listen = int(sys.argv[1])
    backends = itertools.cycle(int(p) for p in sys.argv[2:])
    counter = itertools.count(1)

    async def handle(client_reader, client_writer):
        backend = next(backends)
        n = next(counter)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
        except OSError as e:
            print(f"conn {n} -> {backend} failed: {e}", file=sys.stderr, flush=True)
            client_writer.close()
            return
        print(f"conn {n} -> {backend}", file=sys.stderr, flush=True)
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    asyncio.run(main())
