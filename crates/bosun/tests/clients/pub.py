#!/usr/bin/env python3
"""Publishes --count messages with paho-mqtt and waits until every one is acknowledged.

Payloads are --payload formatted with {i} = 0..count-1 (default "msg-{i}").
With --topic-alias A (v5) the first message carries the topic and Topic Alias A, every later
one an empty topic name and Topic Alias A only.

Events (stdout, JSON lines):
  {"event": "connected", "reason": int, "props": {...}}     props: the CONNACK properties
  {"event": "acked", "mid": int, "i": int, "reason": int}   once per message (QoS 0: once sent)
  {"event": "done", "acked": int}
Exit codes: 0 all acknowledged, 3 deadline, 4 connection refused, 5 a PUBACK/PUBREC with a
failure reason code (>= 0x80).
"""

import threading

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqttutil
from mqttutil import emit


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--qos", type=int, default=1)
    p.add_argument("--payload", default="msg-{i}")
    p.add_argument("--retain", action="store_true")
    p.add_argument("--response-topic", default=None)
    p.add_argument("--correlation-data", default=None)
    p.add_argument("--user-prop", action="append", default=[], help="key=value, repeatable")
    p.add_argument("--content-type", default=None)
    p.add_argument("--payload-format-indicator", type=int, default=None)
    p.add_argument("--message-expiry", type=int, default=None)
    p.add_argument("--topic-alias", type=int, default=None)
    args = p.parse_args()

    state = {"acked": 0, "failed": []}
    mid_to_i = {}
    all_acked = threading.Event()
    connected = threading.Event()
    refused = threading.Event()

    mqttutil.start_deadline(args.timeout, lambda: {"acked": state["acked"]})

    client = mqttutil.make_client(args)
    lock = threading.Lock()  # guards mid_to_i and early_acks; never held across paho calls
    early_acks = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        rc = mqttutil.reason_value(reason_code)
        emit("connected", reason=rc, props=mqttutil.props_to_dict(properties))
        if rc == 0:
            connected.set()
        else:
            refused.set()

    def record(mid, i, rc):
        state["acked"] += 1
        if rc is not None and rc >= 0x80:
            state["failed"].append(i)
        emit("acked", mid=mid, i=i, reason=rc)
        if state["acked"] >= args.count:
            all_acked.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        # Runs with paho's internal locks held: never wait here for a lock that the main
        # thread may hold while it calls into paho. An acknowledgement that arrives before
        # publish() returned its mid is parked in early_acks.
        rc = mqttutil.reason_value(reason_code)
        with lock:
            if mid in mid_to_i:
                record(mid, mid_to_i.pop(mid), rc)
            else:
                early_acks[mid] = rc

    client.on_connect = on_connect
    client.on_publish = on_publish
    if not mqttutil.connect(client, args):
        return mqttutil.EXIT_CONNECT
    client.loop_start()
    while not connected.wait(0.05):
        if refused.is_set():
            client.loop_stop()
            return mqttutil.EXIT_CONNECT

    for i in range(args.count):
        props = None
        topic = args.topic
        if args.protocol == "5":
            props = Properties(PacketTypes.PUBLISH)
            if args.response_topic is not None:
                props.ResponseTopic = args.response_topic
            if args.correlation_data is not None:
                props.CorrelationData = args.correlation_data.encode("utf-8")
            for kv in args.user_prop:
                key, _, value = kv.partition("=")
                props.UserProperty = (key, value)
            if args.content_type is not None:
                props.ContentType = args.content_type
            if args.payload_format_indicator is not None:
                props.PayloadFormatIndicator = args.payload_format_indicator
            if args.message_expiry is not None:
                props.MessageExpiryInterval = args.message_expiry
            if args.topic_alias is not None:
                props.TopicAlias = args.topic_alias
                if i > 0:
                    topic = ""
        info = client.publish(topic, args.payload.format(i=i), qos=args.qos,
                              retain=args.retain, properties=props)
        with lock:
            if info.mid in early_acks:
                record(info.mid, i, early_acks.pop(info.mid))
            else:
                mid_to_i[info.mid] = i

    all_acked.wait()
    client.disconnect()
    client.loop_stop()
    emit("done", acked=state["acked"], failed=state["failed"])
    return mqttutil.EXIT_WRONG if state["failed"] else mqttutil.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
