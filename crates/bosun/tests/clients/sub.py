#!/usr/bin/env python3
"""Subscribes with paho-mqtt and prints every received message as a JSON line.

Events (stdout, JSON lines):
  {"event": "connected", "reason": int, "session_present": bool, "props": {...}}
  {"event": "ready", "granted": [int, ...]}        all SUBACKs received
  {"event": "message", "topic": str, "wire_topic": str, "alias": int|null, "payload": str,
   "qos": int, "retain": bool, "dup": bool, "props": {...}}
  {"event": "disconnected", "reason": int, "from_server": bool}
  {"event": "done", "received": int}

Topic aliases sent by the broker (only allowed when --topic-alias-max > 0) are resolved here,
because paho 2.x reports the wire topic as is: "topic" is the resolved topic, "wire_topic" the
topic name as it was on the wire, "alias" the Topic Alias property if any. An alias that was
never defined on this connection is reported as {"event": "error", "what": "unknown alias"}.

The script exits 0 after --count messages (0: never), or after the message whose payload is
--until-payload, or right after the SUBACKs with --exit-after-subscribe; 3 on the deadline;
4 when the connection is refused.
"""

import threading

import paho.mqtt.client as mqtt

import mqttutil
from mqttutil import emit


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--topic", action="append", required=True, help="topic filter, repeatable")
    p.add_argument("--qos", type=int, default=1)
    p.add_argument("--count", type=int, default=0, help="exit after this many messages; 0: never")
    p.add_argument("--until-payload", default=None, help="exit after a message with this payload")
    p.add_argument("--no-clean", action="store_true", help="clean session / clean start off")
    p.add_argument("--session-expiry", type=int, default=None, help="v5 session expiry interval")
    p.add_argument("--topic-alias-max", type=int, default=None, help="v5 topic alias maximum")
    p.add_argument("--exit-after-subscribe", action="store_true")
    args = p.parse_args()

    state = {"received": 0, "connects": 0}
    aliases = {}
    finished = threading.Event()
    subscribed = threading.Event()
    refused = threading.Event()
    pending_subacks = set()

    mqttutil.start_deadline(args.timeout, lambda: {"received": state["received"]})

    client = mqttutil.make_client(args, clean=not args.no_clean)
    client.manual_ack_set(True)

    def on_connect(client, userdata, flags, reason_code, properties):
        state["connects"] += 1
        rc = mqttutil.reason_value(reason_code)
        emit("connected", reason=rc, session_present=bool(flags.session_present),
             props=mqttutil.props_to_dict(properties), connects=state["connects"])
        if rc != 0:
            refused.set()
            return
        aliases.clear()
        pending_subacks.clear()
        for topic in args.topic:
            _, mid = client.subscribe(topic, qos=args.qos)
            pending_subacks.add(mid)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        pending_subacks.discard(mid)
        granted = [mqttutil.reason_value(rc) for rc in reason_codes]
        emit("suback", mid=mid, granted=granted)
        if not pending_subacks:
            emit("ready", granted=granted)
            subscribed.set()

    def on_message(client, userdata, msg):
        if msg.qos > 0:
            client.ack(msg.mid, msg.qos)
        wire_topic = msg.topic
        props = mqttutil.props_to_dict(getattr(msg, "properties", None))
        alias = props.get("TopicAlias")
        topic = wire_topic
        if alias is not None:
            if wire_topic:
                aliases[alias] = wire_topic
            elif alias in aliases:
                topic = aliases[alias]
            else:
                emit("error", what="unknown alias", alias=alias)
        state["received"] += 1
        emit("message", topic=topic, wire_topic=wire_topic, alias=alias,
             payload=msg.payload.decode("utf-8", errors="replace"), qos=msg.qos,
             retain=bool(msg.retain), dup=bool(msg.dup), props=props, n=state["received"])
        if args.count and state["received"] >= args.count:
            finished.set()
        if args.until_payload is not None and msg.payload.decode("utf-8", "replace") == args.until_payload:
            finished.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        emit("disconnected", reason=mqttutil.reason_value(reason_code),
             from_server=bool(flags.is_disconnect_packet_from_server),
             props=mqttutil.props_to_dict(properties))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect

    props = None
    if args.protocol == "5":
        props = mqttutil.connect_properties(session_expiry=args.session_expiry,
                                            topic_alias_maximum=args.topic_alias_max)
    options = {}
    if args.protocol == "5":
        options = {"clean_start": not args.no_clean, "properties": props}
    if not mqttutil.connect(client, args, **options):
        return mqttutil.EXIT_CONNECT
    client.loop_start()

    if args.exit_after_subscribe:
        while not subscribed.wait(0.05):
            if refused.is_set():
                client.loop_stop()
                return mqttutil.EXIT_CONNECT
        client.disconnect()
        client.loop_stop()
        emit("done", received=state["received"])
        return mqttutil.EXIT_OK

    while not finished.wait(0.05):
        if refused.is_set():
            client.loop_stop()
            return mqttutil.EXIT_CONNECT
    client.disconnect()
    client.loop_stop()
    emit("done", received=state["received"])
    return mqttutil.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
