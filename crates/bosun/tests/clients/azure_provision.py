#!/usr/bin/env python3
"""Zero-touch provisioning with Microsoft's own `azure-iot-device` SDK, unmodified.

ProvisioningDeviceClient.create_from_symmetric_key registers --registration-id in
--id-scope at --host:8883 (TLS, --ca); for a group enrollment the device key is
derived from --group-key the Azure way (base64 HMAC-SHA256 of the registration id).
With --cert-file/--key-file, create_from_x509_certificate registers with that client
certificate instead (X.509 attestation).
Then IoTHubDeviceClient connects to the assigned hub with the same key or certificate,
sends --telemetry if given, and reads its twin.
Prints JSON lines:
  {"event": "registered", "status": str, "device_id": str, "assigned_hub": str, "substatus": str}
  {"event": "register_failed", "error": str}
  {"event": "telemetry_sent"}                       (with --telemetry)
  {"event": "twin", "twin": {...}}                  (unless --register-only)
Exits 0 when done, 5 if registration fails, 4 if the hub connection fails, 3 at --timeout.
"""

import argparse
import base64
import hashlib
import hmac
import os

from azure_common import emit, exit_at, read_ca
from azure.iot.device import IoTHubDeviceClient, Message, ProvisioningDeviceClient, X509



def derive_device_key(group_key, registration_id):
    """What `az iot dps enrollment-group compute-device-key` does."""
    digest = hmac.new(base64.b64decode(group_key), registration_id.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--id-scope", required=True)
    p.add_argument("--registration-id", required=True)
    p.add_argument("--group-key", default=None)
    p.add_argument("--key", default=None, help="the device key itself (individual enrollment)")
    p.add_argument("--cert-file", default=None, help="client certificate (X.509 attestation)")
    p.add_argument("--key-file", default=None, help="its private key")
    p.add_argument("--telemetry", default=None, help="a JSON message to send once connected")
    p.add_argument("--register-only", action="store_true")
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()

    exit_at(args.timeout)
    ca = read_ca(args.ca)
    x509 = None
    key = None
    if args.cert_file:
        x509 = X509(cert_file=args.cert_file, key_file=args.key_file)
        client = ProvisioningDeviceClient.create_from_x509_certificate(
            provisioning_host=args.host,
            registration_id=args.registration_id,
            id_scope=args.id_scope,
            x509=x509,
            server_verification_cert=ca,
        )
    else:
        key = args.key or derive_device_key(args.group_key, args.registration_id)
        client = ProvisioningDeviceClient.create_from_symmetric_key(
            provisioning_host=args.host,
            registration_id=args.registration_id,
            id_scope=args.id_scope,
            symmetric_key=key,
            server_verification_cert=ca,
        )
    try:
        result = client.register()
    except Exception as err:  # the SDK raises several kinds; all mean "refused"
        emit("register_failed", error=repr(err))
        os._exit(5)
    state = result.registration_state
    emit(
        "registered",
        status=result.status,
        device_id=state.device_id if state else None,
        assigned_hub=state.assigned_hub if state else None,
        substatus=state.sub_status if state else None,
    )
    if args.register_only or result.status != "assigned":
        os._exit(0)

    if x509 is not None:
        device = IoTHubDeviceClient.create_from_x509_certificate(
            x509=x509,
            hostname=state.assigned_hub,
            device_id=state.device_id,
            server_verification_cert=ca,
        )
    else:
        device = IoTHubDeviceClient.create_from_symmetric_key(
            symmetric_key=key,
            hostname=state.assigned_hub,
            device_id=state.device_id,
            server_verification_cert=ca,
        )
    try:
        device.connect()
    except Exception as err:
        emit("connect_failed", error=repr(err))
        os._exit(4)
    if args.telemetry is not None:
        message = Message(args.telemetry, content_encoding="utf-8", content_type="application/json")
        device.send_message(message)
        emit("telemetry_sent")
    emit("twin", twin=device.get_twin())
    device.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
