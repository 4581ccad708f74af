"""Shared helpers for the paho-mqtt client scripts used by bosun's integration tests.

Every script prints JSON lines on stdout (one object per line, always with an "event" key),
has an overall deadline (--timeout) after which it prints {"event": "timeout", ...} and exits
with code 3, and never waits for anything without a bound.

Exit codes shared by all scripts:
  0  the scenario completed as asked
  2  bad arguments (argparse)
  3  the overall deadline passed
  4  the broker refused the connection or the connection failed
  5  the scenario ran but observed something wrong (details in the JSON output)
"""

import argparse
import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

EXIT_OK = 0
EXIT_TIMEOUT = 3
EXIT_CONNECT = 4
EXIT_WRONG = 5

_print_lock = threading.Lock()


def emit(event, **fields):
    """Prints one JSON line on stdout and flushes, so the test sees it at once."""
    fields = {"event": event, **fields}
    line = json.dumps(fields, sort_keys=True, default=str)
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def add_common_args(parser):
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=["311", "5"], default="5")
    parser.add_argument("--client-id", default="")
    parser.add_argument("--keepalive", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=30.0, help="overall deadline in seconds")
    parser.add_argument("--websocket", action="store_true", help="MQTT over WebSocket, path /mqtt")
    parser.add_argument("--cafile", default=None, help="TLS, trusting this CA certificate")


def start_deadline(seconds, status=None):
    """Arms the overall deadline: when it passes, prints a timeout line and exits with 3.

    `status` is an optional callable returning a dict merged into the timeout line, so a test
    failing on a timeout still says how far the script got.
    """

    def fire():
        extra = {}
        if status is not None:
            try:
                extra = status()
            except Exception as err:  # the deadline must fire whatever happens
                extra = {"status_error": repr(err)}
        try:
            emit("timeout", after_s=seconds, **extra)
        finally:
            os._exit(EXIT_TIMEOUT)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def protocol_of(args):
    return mqtt.MQTTv5 if args.protocol == "5" else mqtt.MQTTv311


def make_client(args, client_id=None, clean=True, reconnect_on_failure=True):
    """Creates a paho client for the requested protocol version.

    For 3.1.1 `clean` is the clean-session flag; for 5.0 it is passed to connect() as
    clean_start by `connect()` below.
    """
    cid = args.client_id if client_id is None else client_id
    proto = protocol_of(args)
    kwargs = {
        "callback_api_version": CallbackAPIVersion.VERSION2,
        "client_id": cid,
        "protocol": proto,
        "reconnect_on_failure": reconnect_on_failure,
    }
    if proto == mqtt.MQTTv311:
        kwargs["clean_session"] = clean
    if getattr(args, "websocket", False):
        kwargs["transport"] = "websockets"
    client = mqtt.Client(**kwargs)
    if getattr(args, "websocket", False):
        client.ws_set_options(path="/mqtt")
    if getattr(args, "cafile", None):
        client.tls_set(ca_certs=args.cafile)
    return client


def connect(client, args, **options):
    """Connects to the broker under test; on a socket error reports `connect_failed`
    and returns False, so a caller can exit with EXIT_CONNECT. `options` go to paho's
    `connect` (MQTT 5 callers pass `properties` and `clean_start`)."""
    try:
        client.connect(args.host, args.port, keepalive=args.keepalive, **options)
    except OSError as err:
        emit("connect_failed", error=repr(err))
        return False
    return True


def connect_properties(session_expiry=None, topic_alias_maximum=None, receive_maximum=None,
                       auth_method=None):
    props = Properties(PacketTypes.CONNECT)
    any_set = False
    if session_expiry is not None:
        props.SessionExpiryInterval = session_expiry
        any_set = True
    if topic_alias_maximum is not None:
        props.TopicAliasMaximum = topic_alias_maximum
        any_set = True
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
        any_set = True
    if auth_method is not None:
        props.AuthenticationMethod = auth_method
        any_set = True
    return props if any_set else None


def props_to_dict(props):
    """Turns paho Properties into a JSON-friendly dict (bytes become latin-1 strings)."""
    if props is None:
        return {}
    out = {}
    for spaced in props.names.keys():
        name = spaced.replace(" ", "")
        if hasattr(props, name):
            value = getattr(props, name)
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode("latin-1")
            if name == "UserProperty":
                value = [[k, v] for (k, v) in value]
            out[name] = value
    return out


def reason_value(reason_code):
    """The numeric value of a paho ReasonCode (or of an int)."""
    if reason_code is None:
        return None
    value = getattr(reason_code, "value", reason_code)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def wait_for(predicate, timeout, interval=0.01):
    """Polls `predicate` until it is true or `timeout` seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(interval)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    add_common_args(p)
    return p
