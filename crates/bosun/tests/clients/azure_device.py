#!/usr/bin/env python3
"""A device using Microsoft's own `azure-iot-device` SDK (IoTHubDeviceClient), unmodified.

The SDK always dials port 8883 with TLS, so the hub under test listens on
--host:8883 (or the connection string's HostName) and --ca is the PEM of the CA that
signed its server certificate. The SDK signs a SAS token with the key and sends it as
the MQTT password.
Prints JSON lines:
  {"event": "connected"}
  {"event": "twin", "twin": {...}}                       get_twin() after connecting
  {"event": "reported"}                                  patch_twin_reported_properties(--report) done
  {"event": "telemetry_sent"}                            send_message(--telemetry) done (PUBACK)
  {"event": "ready"}                                     handlers installed (subscribed)
  {"event": "desired", "patch": {...}}                   every desired-property patch
  {"event": "method", "name": str, "payload": ...}       every method; answered --method-status, {"echo": payload}
  {"event": "c2d", "data": str, "message_id": str, "properties": {...}}
Exits 0 after --exit-after-c2d messages (if set), 3 at --timeout, 4 if it cannot connect.
"""

import argparse
import json
import os
import threading

from azure_common import emit, exit_at, read_ca
from azure.iot.device import IoTHubDeviceClient, Message, MethodResponse



def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=None)
    p.add_argument("--ca", required=True)
    p.add_argument("--device", default=None)
    p.add_argument("--key", default="c2VjcmV0LWtleS1mb3ItdGVzdHM=")
    p.add_argument("--connection-string", default=None,
                   help="HostName=…;DeviceId=…;SharedAccessKey=… (instead of --host/--device/--key)")
    p.add_argument("--report", default=None)
    p.add_argument("--telemetry", default=None)
    p.add_argument("--method-status", type=int, default=200)
    p.add_argument("--exit-after-c2d", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()

    exit_at(args.timeout)
    ca = read_ca(args.ca)
    cs = args.connection_string
    if cs is None:
        if args.host is None or args.device is None:
            p.error("give --connection-string, or --host and --device")
        cs = f"HostName={args.host};DeviceId={args.device};SharedAccessKey={args.key}"
    client = IoTHubDeviceClient.create_from_connection_string(
        cs, server_verification_cert=ca, connection_retry=False, keep_alive=30
    )
    done = threading.Event()
    state = {"c2d": 0}

    def on_desired(patch):
        emit("desired", patch=patch)

    def on_method(request):
        emit("method", name=request.name, payload=request.payload)
        response = MethodResponse.create_from_method_request(
            request, args.method_status, {"echo": request.payload}
        )
        client.send_method_response(response)

    def on_message(message):
        data = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
        emit("c2d", data=data, message_id=message.message_id, properties=message.custom_properties)
        state["c2d"] += 1
        if args.exit_after_c2d and state["c2d"] >= args.exit_after_c2d:
            done.set()

    try:
        client.connect()
    except Exception as err:  # the SDK raises its own exception types
        emit("connect_failed", error=repr(err))
        os._exit(4)
    emit("connected")
    client.on_twin_desired_properties_patch_received = on_desired
    client.on_method_request_received = on_method
    client.on_message_received = on_message
    emit("ready")
    emit("twin", twin=client.get_twin())
    if args.report is not None:
        client.patch_twin_reported_properties(json.loads(args.report))
        emit("reported")
    if args.telemetry is not None:
        msg = Message(args.telemetry, content_encoding="utf-8", content_type="application/json")
        msg.custom_properties["kind"] = "features"
        client.send_message(msg)
        emit("telemetry_sent")
    done.wait()
    client.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
