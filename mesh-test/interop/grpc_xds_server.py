#!/usr/bin/env python3
"""Interop peer: the stock Python gRPC server (grpcio) as an xDS-enabled server (gRFC A36).

It listens on --address with xDS server credentials: its inbound listener, named by the
bootstrap's `server_listener_resource_name_template`, comes from the control plane named in
GRPC_XDS_BOOTSTRAP, and decides whether connections must be mTLS (certificates from the
bootstrap's `certificate_providers`) and which callers the RBAC filters allow.

mesh.test.echo.v1.Echo/Echo answers EchoReply{message: the caller's URI SANs joined by ",",
or "plaintext", backend: --backend}. Messages are encoded by hand (EchoReply.message is field 1,
EchoReply.backend field 2): only grpcio is needed.

Output on stdout, one JSON object per line:
  {"event": "serving", "address": "127.0.0.1:50051"}   once the server has started
"""

import argparse
import json
import sys
import threading
from concurrent import futures

import grpc


def encode_string(field, value):
    data = value.encode("utf-8")
    out = bytearray([(field << 3) | 2])
    n = len(data)
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    return bytes(out) + data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="ip:port to listen on")
    parser.add_argument("--backend", required=True, help="EchoReply.backend")
    parser.add_argument(
        "--plain", action="store_true", help="a plain (not xDS-enabled) plaintext server"
    )
    args = parser.parse_args()

    def echo(_request, context):
        sans = context.auth_context().get("x509_subject_alternative_name", [])
        peer = ",".join(s.decode("utf-8") for s in sans) or "plaintext"
        return encode_string(1, peer) + encode_string(2, args.backend)

    handler = grpc.method_handlers_generic_handler(
        "mesh.test.echo.v1.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(echo)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), xds=not args.plain)
    server.add_generic_rpc_handlers((handler,))
    if args.plain:
        server.add_insecure_port(args.address)
    else:
        creds = grpc.xds_server_credentials(grpc.insecure_server_credentials())
        server.add_secure_port(args.address, creds)
    server.start()
    print(json.dumps({"event": "serving", "address": args.address}), flush=True)
    # Until killed (or stdin closes).
    stop = threading.Event()
    try:
        sys.stdin.read()
    finally:
        stop.set()
        server.stop(grace=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
