"""Local clouds side by side. Each runs in a network namespace of its own (a "world": its
bridge, gateway, IMDS address and loopback), so two need no other addresses; the names it
leaves on the machine (host namespaces, host directories) carry the world's name, so one
cloud's clean-up never touches another's. No world (the default): the machine's own network.
"""

from __future__ import annotations

import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000
ENV = "LOCALCLOUD_WORLD"


def current() -> str:
    return os.environ.get(ENV, "")


def netns_prefix() -> str:
    """Of the hosts' network namespaces."""
    return f"lc{current()}-"


def hosts_root_prefix() -> str:
    """Of the hosts' directories under /tmp."""
    return f"lch{current()}-"


def _netns(world: str) -> str:
    return f"lcw{world}"


def enter(world: str) -> None:
    """Moves the calling thread, and every process and thread it starts from now on, into the
    world's network namespace (made if missing, its loopback up)."""
    ns = _netns(world)
    if ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
        subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)
    os.environ[ENV] = world


def remove(world: str) -> None:
    """Drops the world's namespace name (it goes when its last process does)."""
    subprocess.run(["ip", "netns", "del", _netns(world)], capture_output=True)
