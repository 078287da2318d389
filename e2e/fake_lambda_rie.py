"""FAKE of the AWS Lambda Runtime Interface Emulator (aws-lambda-rie), for tests.

The real emulator is a Go binary published on GitHub, which this machine's registries do not
carry, so this stands in for it. It serves the same invoke API,

    POST /2015-03-31/functions/function/invocations      (body: the event JSON)

and runs `handler(event, context)` below in-process, as the emulator runs a function. As the
emulator does, it answers 200 with the handler's return value as JSON, 200 with Lambda's error
object {"errorMessage", "errorType", "stackTrace"} (and no header) when the handler raises, and
200 with the text "Task timed out after N.00 seconds" when the function runs out of time. Lambda's
own Invoke API marks a function error with `X-Amz-Function-Error: Unhandled` instead; the path
/fn/raise-aws answers that way. Unknown functions get 404 (ResourceNotFoundException), as
Lambda's API does. Each event is also appended to the file given as the second argument, one JSON
per line, so a test can see what the function received.

  fake_lambda_rie.py serve EVENTS_FILE    prints its port; serves until stdin closes.

The handler, by the request path:
  /fn/echo      200 JSON: the event it received
  /fn/binary    200 image/png, a base64 body of bytes 0..255
  /fn/multi     multi-value headers: two Set-Cookie values
  /fn/raise     raises (an unhandled function error, answered as the emulator does)
  /fn/raise-aws raises, answered as Lambda's Invoke API does (X-Amz-Function-Error)
  /fn/timeout   runs out of time, answered as the emulator does
  /fn/invalid   returns 42, which is not an ALB response
  /fn/huge      a body over 1 MB
  /fn/sleep     sleeps 3 s
"""

import base64
import json
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler(event, context):
    path = event.get("path", "")
    if path.endswith("/echo"):
        return {"statusCode": 200, "statusDescription": "200 OK", "isBase64Encoded": False,
                "headers": {"Content-Type": "application/json", "X-Handler": "echo"},
                "body": json.dumps(event)}
    if path.endswith("/binary"):
        return {"statusCode": 200, "isBase64Encoded": True, "headers": {"Content-Type": "image/png"},
                "body": base64.b64encode(bytes(range(256))).decode()}
    if path.endswith("/multi"):
        return {"statusCode": 201, "isBase64Encoded": False,
                "multiValueHeaders": {"Set-Cookie": ["a=1; Path=/", "b=2; Path=/"], "Content-Type": ["text/plain"]},
                "body": "made"}
    if path.endswith("/raise") or path.endswith("/raise-aws"):
        raise ValueError("the function broke")
    if path.endswith("/timeout"):
        raise TimeoutError("Task timed out after 3.00 seconds")
    if path.endswith("/invalid"):
        return 42
    if path.endswith("/huge"):
        return {"statusCode": 200, "isBase64Encoded": False, "headers": {}, "body": "x" * (1024 * 1024 + 10)}
    if path.endswith("/sleep"):
        time.sleep(3)
        return {"statusCode": 200, "isBase64Encoded": False, "headers": {}, "body": "late"}
    return {"statusCode": 404, "isBase64Encoded": False, "headers": {}, "body": "no such path"}


EVENTS = None
LOCK = threading.Lock()


class Invoke(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, extra=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path != "/2015-03-31/functions/function/invocations":
            self.reply(404, {"Type": "User", "message": "Function not found"},
                       [("X-Amzn-ErrorType", "ResourceNotFoundException")])
            return
        event = json.loads(raw)
        with LOCK, open(EVENTS, "a") as f:
            f.write(json.dumps(event) + "\n")
        try:
            result = handler(event, None)
        except TimeoutError as e:
            data = str(e).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        except Exception as e:
            aws = event.get("path", "").endswith("/raise-aws")
            self.reply(200, {"errorMessage": str(e), "errorType": type(e).__name__,
                             "stackTrace": traceback.format_tb(e.__traceback__)},
                       [("X-Amz-Function-Error", "Unhandled")] if aws else [])
            return
        self.reply(200, result)


if __name__ == "__main__":
    EVENTS = sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()
