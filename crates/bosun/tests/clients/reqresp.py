#!/usr/bin/env python3
"""MQTT 5 request/response with paho-mqtt: --role responder or --role requester.

responder: subscribes to --request-topic; for each request prints
  {"event": "request", "payload": str, "props": {...}}
and publishes to the request's Response Topic the payload "echo:<payload>" with the same
Correlation Data, the same User Properties, Content Type and Payload Format Indicator.
Exits 0 after --count requests.

requester: subscribes to --response-topic, then publishes one request to --request-topic
with Response Topic, Correlation Data (--correlation-data), User Properties (--user-prop k=v,
repeatable, order kept), Content Type (--content-type) and Payload Format Indicator 1, and
prints {"event": "response", "topic": str, "payload": str, "props": {...}}; exits 0 once the
response arrived.

Both print {"event": "ready"} once subscribed. Exit 3 on the deadline, 4 if refused.
"""

import threading

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import mqttutil
from mqttutil import emit


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--role", choices=["responder", "requester"], required=True)
    p.add_argument("--request-topic", required=True)
    p.add_argument("--response-topic", default=None)
    p.add_argument("--correlation-data", default="corr-1")
    p.add_argument("--user-prop", action="append", default=[])
    p.add_argument("--content-type", default="text/plain")
    p.add_argument("--payload", default="ping")
    p.add_argument("--count", type=int, default=1)
    args = p.parse_args()
    args.protocol = "5"

    state = {"handled": 0}
    done = threading.Event()
    ready = threading.Event()
    refused = threading.Event()
    mqttutil.start_deadline(args.timeout, lambda: dict(state))

    client = mqttutil.make_client(args)
    subscribe_to = args.request_topic if args.role == "responder" else args.response_topic

    def on_connect(client, userdata, flags, reason_code, properties):
        rc = mqttutil.reason_value(reason_code)
        emit("connected", reason=rc)
        if rc != 0:
            refused.set()
            return
        client.subscribe(subscribe_to, qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        emit("ready", granted=[mqttutil.reason_value(r) for r in reason_codes])
        ready.set()

    def on_message(client, userdata, msg):
        props = mqttutil.props_to_dict(msg.properties)
        payload = msg.payload.decode("utf-8", errors="replace")
        if args.role == "responder":
            emit("request", topic=msg.topic, payload=payload, props=props)
            reply = Properties(PacketTypes.PUBLISH)
            if hasattr(msg.properties, "CorrelationData"):
                reply.CorrelationData = msg.properties.CorrelationData
            for key, value in getattr(msg.properties, "UserProperty", []):
                reply.UserProperty = (key, value)
            if hasattr(msg.properties, "ContentType"):
                reply.ContentType = msg.properties.ContentType
            if hasattr(msg.properties, "PayloadFormatIndicator"):
                reply.PayloadFormatIndicator = msg.properties.PayloadFormatIndicator
            response_topic = getattr(msg.properties, "ResponseTopic", None)
            if response_topic is None:
                emit("error", what="request without Response Topic")
                return
            client.publish(response_topic, "echo:" + payload, qos=1, properties=reply)
            state["handled"] += 1
            if state["handled"] >= args.count:
                done.set()
        else:
            emit("response", topic=msg.topic, payload=payload, props=props)
            done.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        emit("acked", mid=mid, reason=mqttutil.reason_value(reason_code))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_publish = on_publish
    if not mqttutil.connect(client, args):
        return mqttutil.EXIT_CONNECT
    client.loop_start()
    while not ready.wait(0.05):
        if refused.is_set():
            return mqttutil.EXIT_CONNECT

    if args.role == "requester":
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = args.response_topic
        props.CorrelationData = args.correlation_data.encode("utf-8")
        for kv in args.user_prop:
            key, _, value = kv.partition("=")
            props.UserProperty = (key, value)
        props.ContentType = args.content_type
        props.PayloadFormatIndicator = 1
        client.publish(args.request_topic, args.payload, qos=1, properties=props)

    done.wait()
    # Let the reply's PUBACK come back before leaving (bounded by the overall deadline).
    mqttutil.wait_for(lambda: not client.want_write() and not client._out_messages, 5.0)
    client.disconnect()
    client.loop_stop()
    emit("done", handled=state["handled"])
    return mqttutil.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
