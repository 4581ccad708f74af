#!/usr/bin/env python3
"""Publishes --count numbered QoS 1 messages across broker restarts (for the kill -9 tests).

Payloads are the decimal numbers 0..count-1. At most --inflight messages are unacknowledged
at any time. The client reconnects on its own (reconnect delay 0.1 s to 1 s) and paho
re-sends every message that was not acknowledged when the connection dropped (with DUP set),
so each number is eventually acknowledged. Each acknowledgement is printed as it arrives:
  {"event": "a", "i": <number>, "reason": <PUBACK reason code>}
A PUBACK with a failure reason code (>= 0x80) is printed but not counted as acknowledged.
Other events: "connected", "disconnected", "done" {acked, seconds}.
Exit 0 once every number was acknowledged, 3 on the deadline.
"""

import threading
import time

import paho.mqtt.client as mqtt

import mqttutil
from mqttutil import emit


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--inflight", type=int, default=100)
    args = p.parse_args()
    if not args.client_id:
        p.error("--client-id is required: unacknowledged messages are re-sent in the same session")

    state = {"acked": 0, "sent": 0, "connects": 0}
    lock = threading.Lock()  # guards mid_to_i and early_acks; never held across paho calls
    early_acks = {}
    window = threading.Semaphore(args.inflight)
    mid_to_i = {}
    acked = set()
    all_acked = threading.Event()
    mqttutil.start_deadline(args.timeout, lambda: dict(state))

    client = mqttutil.make_client(args, clean=False)
    client.reconnect_delay_set(0.1, 1)
    client.max_inflight_messages_set(args.inflight)

    def on_connect(client, userdata, flags, reason_code, properties):
        state["connects"] += 1
        emit("connected", reason=mqttutil.reason_value(reason_code),
             session_present=bool(flags.session_present), connects=state["connects"])

    def on_disconnect(client, userdata, flags, reason_code, properties):
        emit("disconnected", reason=mqttutil.reason_value(reason_code))

    def record(i, rc):
        emit("a", i=i, reason=rc)
        if (rc is None or rc < 0x80) and i not in acked:
            acked.add(i)
            state["acked"] += 1
            if state["acked"] >= args.count:
                all_acked.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        # Runs with paho's internal locks held: never wait here for a lock that the main
        # thread may hold while it calls into paho. An acknowledgement that arrives before
        # publish() returned its mid is parked in early_acks.
        rc = mqttutil.reason_value(reason_code)
        with lock:
            if mid in mid_to_i:
                record(mid_to_i.pop(mid), rc)
            else:
                early_acks[mid] = rc
        window.release()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = on_publish
    props = None
    if args.protocol == "5":
        props = mqttutil.connect_properties(session_expiry=3600)
        client.connect_async(args.host, args.port, keepalive=args.keepalive,
                             clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
    else:
        client.connect_async(args.host, args.port, keepalive=args.keepalive)
    started = time.monotonic()
    client.loop_start()

    for i in range(args.count):
        window.acquire()
        # While disconnected paho keeps the message and sends it after the reconnect.
        info = client.publish(args.topic, str(i), qos=1)
        with lock:
            state["sent"] += 1
            if info.mid in early_acks:
                record(i, early_acks.pop(info.mid))
            else:
                mid_to_i[info.mid] = i

    all_acked.wait()
    client.disconnect()
    client.loop_stop()
    emit("done", acked=state["acked"], seconds=round(time.monotonic() - started, 3))
    return mqttutil.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
