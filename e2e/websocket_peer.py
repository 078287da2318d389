"""WebSocket peers for tests, from the `websockets` library (not ours).

  websocket_peer.py serve            an echo server on 127.0.0.1; prints its port; serves until stdin closes.
                                     It answers "headers" with the JSON of the upgrade request's headers.
  websocket_peer.py client URL [COOKIE]
                                     connects (certificate not checked: the test's is self-signed), sends
                                     "hello" and "headers", prints both answers as JSON; on a refused
                                     handshake prints {"status": <code>}.
"""

import asyncio
import json
import ssl
import sys

import websockets


async def serve():
    async def echo(ws):
        async for msg in ws:
            if msg == "headers":
                await ws.send(json.dumps({k.lower(): v for k, v in ws.request.headers.raw_items()}))
            else:
                await ws.send(msg)

    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def client(url, cookie):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    headers = {"Cookie": cookie} if cookie else {}
    try:
        tls = ctx if url.startswith("wss:") else None
        async with websockets.connect(url, ssl=tls, additional_headers=headers, open_timeout=10) as ws:
            await ws.send("hello")
            echoed = await ws.recv()
            await ws.send("headers")
            seen = json.loads(await ws.recv())
            print(json.dumps({"echo": echoed, "headers": seen}))
    except websockets.exceptions.InvalidStatus as e:
        print(json.dumps({"status": e.response.status_code}))


if sys.argv[1] == "serve":
    asyncio.run(serve())
else:
    asyncio.run(client(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""))
