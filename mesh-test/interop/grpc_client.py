#!/usr/bin/env python3
"""Interop peer: the stock Python gRPC client (grpcio) calling mesh.test.echo.v1.Echo/Echo.

Point it at `xds:///<name>` (with GRPC_XDS_BOOTSTRAP set) to prove that a stock gRPC xDS client
accepts what our control plane serves, or at `host:port` to call a backend directly.

Output on stdout, one JSON object per line:
  {"event": "start"}                                  before the first call; t counts from here
  {"t": 0.012, "backend": "echo-v1", "error": null}   one per call; t = seconds at call start
  {"summary": {"calls": 5, "ok": 5, "errors": 0, "backends": {"echo-v1": 5}}}

Messages are encoded by hand (EchoRequest.message is field 1, EchoReply.backend is field 2),
so no protobuf package or generated code is needed: only grpcio.
"""

import argparse
import json
import sys
import time

import grpc
import grpc.experimental

METHOD = "/mesh.test.echo.v1.Echo/Echo"
CALL_TIMEOUT_SECS = 5.0


def encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def encode_echo_request(message):
    data = message.encode("utf-8")
    return b"\x0a" + encode_varint(len(data)) + data


def decode_echo_reply(buf):
    """Returns (EchoReply.backend, EchoReply.message): fields 2 and 1."""
    pos = 0
    backend = ""
    message = ""
    while pos < len(buf):
        key, pos = decode_varint(buf, pos)
        field, wire_type = key >> 3, key & 0x7
        if wire_type == 0:
            _, pos = decode_varint(buf, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 2:
            length, pos = decode_varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
            if field == 2:
                backend = value.decode("utf-8")
            elif field == 1:
                message = value.decode("utf-8")
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return backend, message


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="xds:///name or host:port")
    parser.add_argument("--calls", type=int, help="stop after this many calls")
    parser.add_argument("--duration-secs", type=float, help="stop after this many seconds")
    parser.add_argument("--interval-ms", type=float, default=0.0, help="pause between calls")
    parser.add_argument("--message", default="hello", help="EchoRequest.message")
    parser.add_argument(
        "--xds-creds",
        action="store_true",
        help="use xDS channel credentials (mTLS as the cluster's transport_socket says)",
    )
    args = parser.parse_args()
    if (args.calls is None) == (args.duration_secs is None):
        parser.error("give exactly one of --calls and --duration-secs")

    request = encode_echo_request(args.message)
    counts = {}
    calls = ok = errors = 0
    if args.xds_creds:
        creds = grpc.xds_channel_credentials(grpc.experimental.insecure_channel_credentials())
        channel = grpc.secure_channel(args.target, creds)
    else:
        channel = grpc.insecure_channel(args.target)
    with channel:
        echo = channel.unary_unary(
            METHOD, request_serializer=None, response_deserializer=None
        )
        emit({"event": "start"})
        start = time.monotonic()
        while True:
            if args.calls is not None and calls >= args.calls:
                break
            t = time.monotonic() - start
            if args.duration_secs is not None and t >= args.duration_secs:
                break
            try:
                # Only the first call waits for the channel (xDS resolution, connection);
                # later calls must fail fast when the mesh has no usable backend.
                reply = echo(request, timeout=CALL_TIMEOUT_SECS, wait_for_ready=(calls == 0))
                backend, message = decode_echo_reply(reply)
                counts[backend] = counts.get(backend, 0) + 1
                ok += 1
                emit({"t": round(t, 4), "backend": backend, "message": message, "error": None})
            except grpc.RpcError as err:
                errors += 1
                emit({"t": round(t, 4), "backend": None, "error": f"{err.code().name}: {err.details()}"})
            calls += 1
            if args.interval_ms > 0:
                time.sleep(args.interval_ms / 1000.0)
    emit({"summary": {"calls": calls, "ok": ok, "errors": errors, "backends": counts}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
