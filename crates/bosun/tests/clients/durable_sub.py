#!/usr/bin/env python3
"""A persistent QoS 1 subscriber that survives broker restarts (for the kill -9 tests).

Connects with a fixed --client-id and a persistent session (3.1.1: clean session off;
5.0: clean start on the first connect only and a large Session Expiry Interval), subscribes
to --topic at QoS 1 and reconnects on its own (reconnect delay 0.1 s to 1 s) whenever the
connection drops. Each message is printed before it is acknowledged, so a payload the broker
saw acknowledged has always been printed first:
  {"event": "m", "p": "<payload>", "dup": bool}
Other events: "connected" (reason, session_present), "ready" (SUBACK), "disconnected".
It runs until the deadline (exit 3) or until it receives the payload --until-payload (exit 0).
"""

import threading

import paho.mqtt.client as mqtt

import mqttutil
from mqttutil import emit


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--topic", required=True)
    p.add_argument("--session-expiry", type=int, default=3600)
    p.add_argument("--until-payload", default=None)
    args = p.parse_args()
    if not args.client_id:
        p.error("--client-id is required: the session must be found again after a restart")

    state = {"received": 0, "connects": 0}
    finished = threading.Event()
    mqttutil.start_deadline(args.timeout, lambda: dict(state))

    client = mqttutil.make_client(args, clean=False)
    client.manual_ack_set(True)
    client.reconnect_delay_set(0.1, 1)

    def on_connect(client, userdata, flags, reason_code, properties):
        state["connects"] += 1
        emit("connected", reason=mqttutil.reason_value(reason_code),
             session_present=bool(flags.session_present), connects=state["connects"])
        if mqttutil.reason_value(reason_code) == 0:
            client.subscribe(args.topic, qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        emit("ready", granted=[mqttutil.reason_value(r) for r in reason_codes])

    def on_message(client, userdata, msg):
        payload = msg.payload.decode("utf-8", errors="replace")
        emit("m", p=payload, dup=bool(msg.dup))
        state["received"] += 1
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)
        if args.until_payload is not None and payload == args.until_payload:
            finished.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        emit("disconnected", reason=mqttutil.reason_value(reason_code))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect

    props = None
    if args.protocol == "5":
        props = mqttutil.connect_properties(session_expiry=args.session_expiry)
    # connect_async + loop_start: the first connection attempt is retried like the others.
    if args.protocol == "5":
        client.connect_async(args.host, args.port, keepalive=args.keepalive,
                             clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
    else:
        client.connect_async(args.host, args.port, keepalive=args.keepalive)
    client.loop_start()
    finished.wait()
    mqttutil.wait_for(lambda: not client.want_write(), 5.0)
    client.disconnect()
    client.loop_stop()
    emit("done", **state)
    return mqttutil.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
