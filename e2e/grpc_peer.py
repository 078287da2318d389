"""gRPC peers for tests, from `grpcio` (not ours). Messages are raw bytes (no generated stubs).

  grpc_peer.py serve         a server on 127.0.0.1 (plaintext HTTP/2); prints its port; serves
                             until stdin closes. Methods of service `echo.Echo`:
                               Say     (unary)            answers b"said:" + request, and the
                                                          request's metadata as trailing metadata
                               Count   (server streaming) answers b"0" … b"<n-1>" for request b"<n>"
                               Sum     (client streaming) answers the total length of the requests
                               Fail    (unary)            fails with NOT_FOUND, "no such thing"
                             Any other method (ALB's /AWS.ALB/healthcheck too) is UNIMPLEMENTED (12).
  grpc_peer.py client HOST:PORT PREFIX
                             calls each method over TLS (the certificate HOST:PORT presents taken as
                             root, name `localhost`), with paths PREFIX + "echo.Echo/…", and prints the
                             results as JSON; when the first call fails, prints {"error": [code, details]}.
"""

import json
import ssl
import sys
from concurrent import futures

import grpc


def serve():
    def say(request, context):
        md = {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
        context.set_trailing_metadata((("echo-metadata", json.dumps(md)),))
        return b"said:" + request

    def count(request, context):
        for i in range(int(request.decode())):
            yield str(i).encode()

    def total(request_iterator, context):
        return str(sum(len(r) for r in request_iterator)).encode()

    def fail(request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

    handler = grpc.method_handlers_generic_handler(
        "echo.Echo",
        {
            "Say": grpc.unary_unary_rpc_method_handler(say),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Sum": grpc.stream_unary_rpc_method_handler(total),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


def client(target, prefix):
    host, port = target.rsplit(":", 1)
    root = ssl.get_server_certificate((host, int(port))).encode()
    creds = grpc.ssl_channel_credentials(root_certificates=root)
    out = {}
    with grpc.secure_channel(target, creds, options=(("grpc.ssl_target_name_override", "localhost"),)) as ch:
        say = ch.unary_unary(prefix + "echo.Echo/Say")
        try:
            answer, call = say.with_call(b"hello", metadata=(("x-caller", "test"),), timeout=10)
        except grpc.RpcError as e:
            # Refused by the load balancer: report how, and stop.
            print(json.dumps({"error": [e.code().name, e.details()]}))
            return
        out["say"] = answer.decode()
        out["say_trailers"] = {k: v for k, v in call.trailing_metadata()}
        out["count"] = [m.decode() for m in ch.unary_stream(prefix + "echo.Echo/Count")(b"5", timeout=10)]
        out["sum"] = ch.stream_unary(prefix + "echo.Echo/Sum")(iter([b"ab", b"cde", b"f" * 100_000]), timeout=10).decode()
        try:
            ch.unary_unary(prefix + "echo.Echo/Fail")(b"x", timeout=10)
            out["fail"] = "no error"
        except grpc.RpcError as e:
            out["fail"] = [e.code().name, e.details()]
        try:
            ch.unary_unary(prefix + "echo.Missing/Nope")(b"x", timeout=10)
            out["missing"] = "no error"
        except grpc.RpcError as e:
            out["missing"] = [e.code().name, e.details()]
    print(json.dumps(out))


if sys.argv[1] == "serve":
    serve()
else:
    client(sys.argv[2], sys.argv[3])
