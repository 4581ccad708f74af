#!/usr/bin/env python3
"""Connects once with paho-mqtt (no automatic reconnect) and reports what the broker said.

Events (stdout, JSON lines):
  {"event": "connack", "reason": int, "raw_rc": int|null, "session_present": bool, "props": {...}}
      "reason" is paho's reason code value (for 3.1.1 paho maps the return code to a v5
      reason code); "raw_rc" is the 3.1.1 CONNACK return code byte as it was on the wire.
  {"event": "disconnected", "reason": int, "from_server": bool, "props": {...}}
      "from_server" is true when the broker sent a DISCONNECT packet (v5).

Without --wait-disconnect the script disconnects and exits right after the CONNACK.
With --wait-disconnect it stays connected until the broker ends the connection.
Exit codes: 0 the CONNACK (and, if asked, the disconnect) were observed, 3 deadline,
4 the TCP connection itself failed.
"""

import re
import threading

import mqttutil
from mqttutil import emit

CONNACK_LOG = re.compile(r"Received CONNACK \((\d+), (\d+)\)")


def main():
    p = mqttutil.parser(__doc__.splitlines()[0])
    p.add_argument("--wait-disconnect", action="store_true")
    p.add_argument("--auth-method", default=None, help="v5 Authentication Method property")
    p.add_argument("--session-expiry", type=int, default=None)
    args = p.parse_args()

    connacked = threading.Event()
    disconnected = threading.Event()
    state = {"raw_rc": None, "connack": False}
    mqttutil.start_deadline(args.timeout, lambda: dict(state))

    client = mqttutil.make_client(args, reconnect_on_failure=False)

    def on_log(client, userdata, level, buf):
        m = CONNACK_LOG.search(buf)
        if m:
            state["raw_rc"] = int(m.group(2))

    def on_connect(client, userdata, flags, reason_code, properties):
        state["connack"] = True
        emit("connack", reason=mqttutil.reason_value(reason_code), raw_rc=state["raw_rc"],
             reason_name=str(reason_code), session_present=bool(flags.session_present),
             props=mqttutil.props_to_dict(properties))
        connacked.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        emit("disconnected", reason=mqttutil.reason_value(reason_code),
             reason_name=str(reason_code),
             from_server=bool(flags.is_disconnect_packet_from_server),
             props=mqttutil.props_to_dict(properties))
        disconnected.set()

    client.on_log = on_log
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    props = None
    if args.protocol == "5":
        props = mqttutil.connect_properties(session_expiry=args.session_expiry,
                                            auth_method=args.auth_method)
    options = {"properties": props} if args.protocol == "5" else {}
    if not mqttutil.connect(client, args, **options):
        return mqttutil.EXIT_CONNECT
    client.loop_start()
    # Either a CONNACK arrives or the broker closes the connection without one.
    while not connacked.is_set() and not disconnected.is_set():
        connacked.wait(0.05)
    if args.wait_disconnect:
        disconnected.wait()
    else:
        client.disconnect()
        disconnected.wait(5.0)
    client.loop_stop()
    emit("done", connack=state["connack"])
    return mqttutil.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
