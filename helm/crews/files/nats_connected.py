"""Probe: exit 0 while this pod holds an established TCP connection to the NATS client port.

Usage: python3 -I -S nats_connected.py <port>. Reads /proc/net/tcp and /proc/net/tcp6 (the
pod's network namespace), so it needs nothing from the process it checks: the coordinator
and the role workers are not HTTP servers. The NATS server closes a client that stops
answering its PINGs, so a worker whose event loop is stuck loses the connection and fails.
"""

import sys

REMOTE_PORT = f":{int(sys.argv[1]):04X}"
ESTABLISHED = "01"

for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if len(fields) > 3 and fields[2].endswith(REMOTE_PORT) and fields[3] == ESTABLISHED:
                    sys.exit(0)
    except OSError:
        continue
sys.exit(1)
