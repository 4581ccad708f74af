"""What the scripts driving Microsoft's `azure-iot-device` SDK share: JSON-line
events on stdout, a hard deadline, and the hub's CA certificate."""

import json
import os
import sys
import threading

_lock = threading.Lock()


def emit(event, **fields):
    """One JSON line; the SDK calls handlers from its own threads, hence the lock."""
    with _lock:
        sys.stdout.write(json.dumps({"event": event, **fields}, sort_keys=True, default=str) + "\n")
        sys.stdout.flush()


def exit_at(timeout):
    """Prints a `timeout` event and exits 3 after `timeout` seconds, whatever the SDK is doing."""

    def deadline():
        emit("timeout", after_s=timeout)
        os._exit(3)

    timer = threading.Timer(timeout, deadline)
    timer.daemon = True
    timer.start()


def read_ca(path):
    """The PEM text the SDK wants as `server_verification_cert`."""
    with open(path) as f:
        return f.read()
