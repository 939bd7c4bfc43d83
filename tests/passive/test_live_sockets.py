"""The live listener's packet sockets, in a throwaway network namespace (``unshare --net``): they
see only their own interface's frames, from the first frame on, however busy the namespace is
while they are being set up."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.root

# Runs inside the new namespace: loopback busy with UDP, a silent veth pair, and a filter
# compile made slow (as scapy's first import is on a loaded machine).
SCRIPT = textwrap.dedent("""
    import json, socket, subprocess, threading, time
    from scanner.passive import live

    for cmd in (["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],  # no neighbour discovery on quiet0
                ["ip", "link", "set", "lo", "up"],
                ["ip", "link", "add", "quiet0", "type", "veth", "peer", "name", "quiet1"],
                ["ip", "link", "set", "quiet0", "up"], ["ip", "link", "set", "quiet1", "up"]):
        subprocess.run(cmd, check=True)
    stop = threading.Event()

    def blast():
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not stop.is_set():
            out.sendto(b"x" * 1200, ("127.0.0.1", 9))

    compile_filter = live._filter
    def slow_filter(expression, keep):
        time.sleep(0.3)
        return compile_filter(expression, keep)
    live._filter = slow_filter

    threading.Thread(target=blast, daemon=True).start()
    time.sleep(0.2)
    counts = {}
    for iface in ("quiet0", "lo"):
        stats = live.LiveStats()
        frames = list(live.capture(iface, 0.5, stats, sockets=live.open_sockets(iface)))
        counts[iface] = {"received": stats.received, "drops": stats.kernel_drops,
                         "udp": sum(1 for _, _, f in frames if f[23] == 17)}
    stop.set()
    print(json.dumps(counts))
""")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_listener_sockets_see_only_their_interface_even_while_the_namespace_is_busy():
    proc = subprocess.run(["unshare", "--net", sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout)
    # quiet0 is silent: nothing from the busy loopback may leak in while the sockets are set up
    assert counts["quiet0"] == {"received": 0, "drops": 0, "udp": 0}
    # and the same sockets on lo do see the traffic (the protocol given at bind is right)
    assert counts["lo"]["udp"] > 100
