"""A MongoDB wire server for tests and benchmarks: mongoeco's proxy on 127.0.0.1:PORT, in memory.
Prints `ready` once it accepts connections; runs until killed. (mongoeco needs Python 3.13.)"""
import asyncio
import sys

from mongoeco.wire.proxy import AsyncMongoEcoProxyServer


async def main(port):
    server = AsyncMongoEcoProxyServer(host="127.0.0.1", port=port)
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


asyncio.run(main(int(sys.argv[1])))
