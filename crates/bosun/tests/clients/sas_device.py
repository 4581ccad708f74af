#!/usr/bin/env python3
"""A device that authenticates with an Azure IoT Hub SAS token, then runs scripted steps.

The token is computed here with Python's own hmac, hashlib, base64 and urllib (not with
bosun's code), the way the Azure SDKs do: sr = quote("{host}/devices/{device}", safe=""),
sig = quote(base64(HMAC-SHA256(b64decode(key), sr + "\\n" + se)), safe="").

Options beyond the common ones (mqttutil):
  --device ID            client id; also the device in the token and the user name
  --key BASE64           the device key to sign with
  --password TEXT        send this password instead of a token (with neither, the
                         CONNECT carries no user name and no password)
  --expires-in S         token lifetime in seconds from now (negative: already expired)
  --resource-device ID   the device the token's sr names (default: --device)
  --username TEXT        instead of "{host}/{device}/?api-version=2021-04-12"
  --step STEP            repeatable, run in order after CONNACK:
                           sub:FILTER       SUBSCRIBE (QoS 1), waits for SUBACK
                           pub:TOPIC        PUBLISH QoS 1, waits for PUBACK
                           pub0:TOPIC       PUBLISH QoS 0
                           alias:N:TOPIC    PUBLISH QoS 1 with topic alias N (v5; an empty
                                            TOPIC sends the alias alone), waits for PUBACK
  --hold                 after the steps, stay connected until the broker disconnects
Events (stdout, JSON lines):
  {"event": "connack", "reason": int, "raw_rc": int|null}
  {"event": "suback", "filter": str, "code": int}       granted QoS, or the failure code
  {"event": "puback", "topic": str, "code": int}        v5 reason code (3.1.1: 0)
  {"event": "published", "topic": str}                  a QoS 0 publish was written
  {"event": "message", "topic": str, "payload": str}    anything received
  {"event": "steps_done"}
  {"event": "disconnected", "reason": int, "from_server": bool, "reason_string": str|null,
   "after_connack_s": float}
Exit codes: 0 done, 3 deadline, 4 no TCP connection or CONNACK refused.
"""

import base64
import hashlib
import hmac
import re
import threading
import time
import urllib.parse

import mqttutil
from mqttutil import emit
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CONNACK_LOG = re.compile(r"Received CONNACK \((\d+), (\d+)\)")


def sas_token(host, device, key_b64, expiry):
    """An IoT Hub device token, as the Azure SDKs make it."""
    sr = urllib.parse.quote(f"{host}/devices/{device}", safe="")
    message = f"{sr}\n{expiry}".encode()
    digest = hmac.new(base64.b64decode(key_b64), message, hashlib.sha256).digest()
    sig = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={expiry}"


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--device", required=True)
    p.add_argument("--key", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--expires-in", type=int, default=3600)
    p.add_argument("--resource-device", default=None)
    p.add_argument("--username", default=None)
    p.add_argument("--step", action="append", default=[])
    p.add_argument("--hold", action="store_true")
    args = p.parse_args()
    args.client_id = args.device

    state = {"raw_rc": None, "connack_at": None}
    mqttutil.start_deadline(args.timeout, lambda: dict(state))
    connacked = threading.Event()
    disconnected = threading.Event()
    acked = {}  # mid -> (event, code)
    acked_cv = threading.Condition()

    client = mqttutil.make_client(args, reconnect_on_failure=False)
    username = args.username or f"{args.host}/{args.device}/?api-version=2021-04-12"
    if args.password is not None:
        client.username_pw_set(username, args.password)
    elif args.key is not None:
        expiry = int(time.time()) + args.expires_in
        token = sas_token(args.host, args.resource_device or args.device, args.key, expiry)
        client.username_pw_set(username, token)
    # Neither: no user name and no password at all.

    def on_log(client, userdata, level, buf):
        m = CONNACK_LOG.search(buf)
        if m:
            state["raw_rc"] = int(m.group(2))

    def on_connect(client, userdata, flags, reason_code, properties):
        state["connack_at"] = time.monotonic()
        state["reason"] = mqttutil.reason_value(reason_code)
        emit("connack", reason=state["reason"], raw_rc=state["raw_rc"])
        connacked.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        since = state["connack_at"]
        after = None if since is None else round(time.monotonic() - since, 3)
        reason_string = getattr(properties, "ReasonString", None) if properties else None
        emit("disconnected", reason=mqttutil.reason_value(reason_code),
             from_server=bool(flags.is_disconnect_packet_from_server),
             reason_string=reason_string, after_connack_s=after)
        disconnected.set()
        with acked_cv:
            acked_cv.notify_all()

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        with acked_cv:
            acked[mid] = [mqttutil.reason_value(rc) for rc in reason_codes]
            acked_cv.notify_all()

    def on_publish(client, userdata, mid, reason_code, properties):
        with acked_cv:
            acked[mid] = mqttutil.reason_value(reason_code)
            acked_cv.notify_all()

    def on_message(client, userdata, message):
        emit("message", topic=message.topic, payload=message.payload.decode("utf-8", "replace"))

    client.on_log = on_log
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message

    if not mqttutil.connect(client, args):
        return mqttutil.EXIT_CONNECT
    client.loop_start()
    while not connacked.is_set() and not disconnected.is_set():
        connacked.wait(0.05)
    if state.get("reason") != 0:
        disconnected.wait(5.0)
        client.loop_stop()
        return mqttutil.EXIT_CONNECT

    def wait_ack(mid):
        with acked_cv:
            acked_cv.wait_for(lambda: mid in acked or disconnected.is_set())
            return acked.get(mid)

    for step in args.step:
        if disconnected.is_set():
            break
        kind, _, rest = step.partition(":")
        if kind == "sub":
            _, mid = client.subscribe(rest, qos=1)
            codes = wait_ack(mid)
            if codes is not None:
                emit("suback", filter=rest, code=codes[0])
        elif kind in ("pub", "pub0", "alias"):
            props = None
            topic = rest
            if kind == "alias":
                number, _, topic = rest.partition(":")
                props = Properties(PacketTypes.PUBLISH)
                props.TopicAlias = int(number)
            qos = 0 if kind == "pub0" else 1
            info = client.publish(topic, f"from {args.device}", qos=qos, properties=props)
            if qos == 0:
                info.wait_for_publish(5.0)
                emit("published", topic=topic)
            else:
                code = wait_ack(info.mid)
                if code is not None:
                    emit("puback", topic=topic, code=code)
        else:
            emit("bad_step", step=step)
            return mqttutil.EXIT_WRONG
    emit("steps_done")
    if args.hold:
        disconnected.wait()
    else:
        client.disconnect()
        disconnected.wait(5.0)
    client.loop_stop()
    return mqttutil.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
