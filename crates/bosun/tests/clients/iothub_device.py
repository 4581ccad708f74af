#!/usr/bin/env python3
"""A device speaking Azure IoT Hub's MQTT topics with plain paho-mqtt (no Azure SDK).

Connects as --device (client id = device id; 3.1.1, persistent session unless --clean),
subscribes to its twin responses, desired-property updates, direct methods and C2D topic,
then prints JSON lines:
  {"event": "ready"}                                  all subscriptions acknowledged
  {"event": "twin", "status": 200, "twin": {...}}      answer to the GET sent after ready
  {"event": "reported", "status": 204, "version": n}   answer to --report (if given)
  {"event": "desired", "version": n, "patch": {...}}   every desired-property update
  {"event": "method", "name": str, "payload": ...}     every method call; answered with
                                                       status --method-status and
                                                       {"echo": payload}
  {"event": "c2d", "payload": str, "properties": {...}} every cloud-to-device message
  {"event": "answer", "topic": str, "status": n, ...}  any other twin response
Runs until --timeout (exit 3, which tests treat as "killed") or until --exit-after-c2d
messages arrived (exit 0). Exit 4 if the connection is refused.
"""

import json
import threading
import urllib.parse

import mqttutil
from mqttutil import emit


def query_of(topic):
    """The `?…` part of a topic as a dict."""
    _, _, query = topic.partition("?")
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--device", required=True)
    p.add_argument("--clean", action="store_true")
    p.add_argument("--report", default=None, help="reported-properties patch (JSON)")
    p.add_argument("--method-status", type=int, default=200)
    p.add_argument("--exit-after-c2d", type=int, default=0)
    args = p.parse_args()
    args.protocol = "311"
    mqttutil.start_deadline(args.timeout)
    state = {"c2d": 0}
    done = threading.Event()

    client = mqttutil.make_client(args, client_id=args.device, clean=args.clean)
    filters = [
        ("$iothub/twin/res/#", 0),
        ("$iothub/twin/PATCH/properties/desired/#", 1),
        ("$iothub/methods/POST/#", 0),
        (f"devices/{args.device}/messages/devicebound/#", 1),
    ]

    def on_connect(client, userdata, flags, reason_code, properties):
        rc = mqttutil.reason_value(reason_code)
        emit("connected", reason=rc, session_present=bool(flags.session_present))
        if rc != 0:
            emit("refused", reason=rc)
            state["refused"] = True
            done.set()
            return
        client.subscribe(filters)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        emit("ready", granted=[mqttutil.reason_value(r) for r in reason_codes])
        client.publish("$iothub/twin/GET/?$rid=get-1", b"", qos=0)
        if args.report is not None:
            topic = "$iothub/twin/PATCH/properties/reported/?$rid=report-1"
            client.publish(topic, args.report.encode(), qos=0)

    def on_message(client, userdata, msg):
        topic = msg.topic
        text = msg.payload.decode("utf-8", "replace")
        if topic.startswith("$iothub/twin/res/"):
            status = int(topic.split("/")[3])
            q = query_of(topic)
            rid = q.get("$rid")
            body = json.loads(text) if text else None
            if rid == "get-1":
                emit("twin", status=status, twin=body)
            elif rid == "report-1":
                emit("reported", status=status, version=int(q.get("$version", "0") or 0), body=body)
            else:
                emit("answer", topic=topic, status=status, body=body)
        elif topic.startswith("$iothub/twin/PATCH/properties/desired/"):
            patch = json.loads(text)
            emit("desired", version=patch.get("$version"), patch=patch)
        elif topic.startswith("$iothub/methods/POST/"):
            name = topic.split("/")[3]
            rid = query_of(topic).get("$rid")
            payload = json.loads(text) if text else None
            emit("method", name=name, payload=payload, rid=rid)
            answer = json.dumps({"echo": payload}).encode()
            client.publish(f"$iothub/methods/res/{args.method_status}/?$rid={rid}", answer, qos=0)
        elif topic.startswith(f"devices/{args.device}/messages/devicebound/"):
            bag = topic[len(f"devices/{args.device}/messages/devicebound/"):]
            props = dict(urllib.parse.parse_qsl(bag, keep_blank_values=True))
            state["c2d"] += 1
            emit("c2d", payload=text, properties=props, dup=bool(msg.dup))
            if args.exit_after_c2d and state["c2d"] >= args.exit_after_c2d:
                done.set()
        else:
            emit("other", topic=topic, payload=text)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    if not mqttutil.connect(client, args):
        raise SystemExit(mqttutil.EXIT_CONNECT)
    client.loop_start()
    done.wait()
    client.disconnect()
    client.loop_stop()
    raise SystemExit(mqttutil.EXIT_CONNECT if state.get("refused") else mqttutil.EXIT_OK)


if __name__ == "__main__":
    main()
