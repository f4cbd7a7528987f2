"""EC2 instances as Linux hosts: one network namespace, hostname and dockerd each.

Every host lives in its own PID and mount namespace (``unshare --pid --mount``), with
dockerd as the namespace's init: killing it kills every process of the host (containerd,
shims, containers) and its mounts vanish with the namespace. Nothing leaks into the
machine, also when the cloud process itself is killed (``clean`` removes the rest).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import world

VETH_PREFIX = "lcv"
BUSYBOX = "/bin/busybox"
IMAGE = "busybox:local"
IMDS_ADDRESS = "169.254.169.254"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


@dataclass
class Host:
    instance_id: str
    ip: str
    netns: str
    veth: str
    root: Path
    hostname: str
    proc: subprocess.Popen | None = None
    init_pid: int | None = None  # dockerd, PID 1 of the host's namespace
    ready_at: float | None = None
    dead: bool = False
    log: list[str] = field(default_factory=list)
    shared: Path | None = None  # the cluster's shared storage, mounted at /cluster at boot

    @property
    def sock(self) -> str:
        return str(self.root / "run" / "docker.sock")

    @property
    def alive(self) -> bool:
        return not self.dead and self.init_pid is not None and Path(f"/proc/{self.init_pid}").exists()

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["/usr/bin/docker", "-H", f"unix://{self.sock}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


class Hosts:
    def __init__(self, state_dir: Path, bridge: str, cidr_prefix: int, gateway: str):
        self.state_dir = state_dir
        self.bridge = bridge
        self.prefix = cidr_prefix
        self.gateway = gateway
        self.hosts: dict[str, Host] = {}
        self.lock = threading.Lock()
        self.closing = False  # set by destroy_all: a host still starting then destroys itself
        self.counter = 0
        self.image_tar = state_dir / "busybox.tar"
        # Hosts live under a short path: containerd's sockets must fit in 108 bytes.
        self.hosts_root = Path(tempfile.mkdtemp(prefix=world.hosts_root_prefix(), dir="/tmp"))
        self.logs = state_dir / "hosts"
        self.logs.mkdir(parents=True, exist_ok=True)

    # -- the shared network -------------------------------------------------
    def setup_network(self) -> None:
        if sh("ip", "link", "show", self.bridge, check=False).returncode != 0:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "replace", f"{self.gateway}/{self.prefix}", "dev", self.bridge)
        sh("ip", "addr", "replace", f"{IMDS_ADDRESS}/32", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        self._build_image()

    def _build_image(self) -> None:
        """A busybox root filesystem: /bin/busybox plus one link per applet."""
        applets = sh(BUSYBOX, "--list").stdout.split()
        with tarfile.open(self.image_tar, "w") as tar:
            tar.add(BUSYBOX, arcname="bin/busybox")
            for a in applets:
                if a == "busybox":
                    continue
                info = tarfile.TarInfo(f"bin/{a}")
                info.type = tarfile.SYMTYPE
                info.linkname = "busybox"
                tar.addfile(info)
            for d in ("tmp", "etc", "proc", "sys", "dev"):
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o1777 if d == "tmp" else 0o755
                tar.addfile(info)

    # -- lifecycle of one host ----------------------------------------------
    def create(self, instance_id: str, ip: str, shared: Path | None = None) -> Host:
        with self.lock:
            self.counter += 1
            n = self.counter
        hostname = "ip-" + ip.replace(".", "-")
        host = Host(
            instance_id=instance_id,
            ip=ip,
            netns=f"{world.netns_prefix()}{instance_id}",
            veth=f"{VETH_PREFIX}{n:x}",
            root=self.hosts_root / f"{n:x}",
            hostname=hostname,
            shared=shared,
        )
        with self.lock:
            if self.closing:
                raise RuntimeError("the cloud is shutting down")
            self.hosts[instance_id] = host
        for d in ("data", "exec", "run", "home", "ssm"):
            (host.root / d).mkdir(parents=True, exist_ok=True)
        sh("ip", "netns", "add", host.netns)
        sh("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        sh("ip", "link", "set", host.veth, "master", self.bridge, "up")
        sh("ip", "-n", host.netns, "addr", "add", f"{ip}/{self.prefix}", "dev", "eth0")
        sh("ip", "-n", host.netns, "link", "set", "eth0", "up")
        sh("ip", "-n", host.netns, "link", "set", "lo", "up")
        # The instance metadata service answers at its link-local address through the gateway.
        sh("ip", "-n", host.netns, "route", "add", f"{IMDS_ADDRESS}/32", "via", self.gateway)
        self._boot(host)
        if self.closing:  # the cloud stopped while this host was starting
            self.destroy(instance_id)
            raise RuntimeError("the cloud is shutting down")
        return host

    def _boot(self, host: Host) -> None:
        """Starts the host's OS: its dockerd (PID 1 of the host) on its data root, a fresh
        /run/lock (tmpfs: a reboot forgets it), the busybox image if the volume lacks it, and
        the cluster's shared storage at /cluster when it has one (as the boot's EFS mount)."""
        instance_id = host.instance_id
        # The mount point is a directory of this machine's root (empty; the mount itself stays
        # in the host's namespace): the hosts share the machine's file system.
        shared = f"mkdir -p /cluster; mount --bind {host.shared} /cluster; " if host.shared else ""
        # `ip netns exec` would remount /sys and hide the cgroups: enter with nsenter.
        inner = (
            # No AWS configuration of this machine's leaks into the instance (a fresh image has none).
            f"hostname {host.hostname}; if [ -d /root/.aws ]; then mount -t tmpfs -o mode=0700 tmpfs /root/.aws; fi; "
            f"mount -t tmpfs -o mode=0755 tmpfs /run/lock; {shared}exec nsenter --net=/var/run/netns/{host.netns} "
            f"dockerd --data-root {host.root}/data --exec-root {host.root}/exec "
            f"-H unix://{host.sock} --pidfile {host.root}/run/docker.pid "
            f"--bridge=none --iptables=false --ip-masq=false --userland-proxy=false"
        )
        logf = open(host.root / "dockerd.log", "a")
        host.proc = subprocess.Popen(
            ["unshare", "--uts", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "sh", "-c", inner],
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logf.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            if host.init_pid is None:
                host.init_pid = _child_of(host.proc.pid)
            if host.proc.poll() is not None:
                # The host's directory goes with the cloud: its log's last lines go in the error
                # (recorded as host-failed in the timeline, kept with the scenario's artefacts).
                tail = (Path(host.root) / "dockerd.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"dockerd of {instance_id} exited: " + " | ".join(tail))
            try:
                # A daemon that was in a swarm answers only once its swarm component has
                # started (measured: ~20 s when its managers have removed its node).
                if Path(host.sock).exists() and host.docker("info", "--format", "{{.ID}}", timeout=10).returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                continue
            time.sleep(0.1)
        else:
            raise RuntimeError(f"dockerd of {instance_id} did not start in 60s")
        if host.docker("image", "inspect", IMAGE).returncode != 0:
            r = host.docker("import", "--change", 'CMD ["/bin/sh"]', str(self.image_tar), IMAGE)
            if r.returncode != 0:
                raise RuntimeError(f"image import on {instance_id} failed: {r.stderr}")
        host.ready_at = time.time()

    def stop(self, instance_id: str) -> bool:
        """The OS shuts down: dockerd (PID 1) gets SIGTERM and stops its containers; the data
        root stays, as an EBS root volume does."""
        host = self.hosts.get(instance_id)
        if not host or not host.init_pid:
            return False
        host.dead = True
        if not self._signal(host, signal.SIGTERM, wait=30):
            self.kill_hard_host(host)
        return True

    def start(self, instance_id: str) -> bool:
        """The stopped host boots again from its volume."""
        host = self.hosts.get(instance_id)
        if not host:
            return False
        # A start boots afresh: nothing of the previous run survives but the volume. A killed
        # host's containerd can outlive its PID 1 for a moment, holding its database's lock
        # (the new daemon then fails: "timeout waiting for containerd to start").
        _wait_gone(host.root)
        host.init_pid, host.ready_at, host.proc = None, None, None
        # /run is a tmpfs: a boot starts without the last run's pid files. The exec root
        # (/var/run/docker) kept containerd's pid from the old PID namespace, and when that
        # number was alive in the new one (a thread of the new dockerd) the daemon took it
        # for its containerd and timed out waiting on its socket (1 start in 3 failed).
        for d in ("exec", "run"):
            shutil.rmtree(host.root / d, ignore_errors=True)
            (host.root / d).mkdir()
        self._boot(host)
        host.dead = False
        return True

    def kill_hard(self, instance_id: str) -> bool:
        """The instance dies at once: every process of the host gets SIGKILL."""
        host = self.hosts.get(instance_id)
        if not host or not host.init_pid:
            return False
        host.dead = True
        self._signal(host, signal.SIGKILL, wait=10)
        return True

    def partition(self, instance_id: str, cut: bool) -> list[str]:
        """Cuts (`cut`) or restores the links between one host and every other host: a blackhole
        route on each side. Its way to the cloud (the gateway: SSM, Route 53, IMDS) stays, as
        on AWS, where the agent talks to the SSM endpoint and not to the other hosts. Returns
        the peers it was cut from."""
        with self.lock:
            me = self.hosts.get(instance_id)
            peers = [h for h in self.hosts.values() if h is not me and not h.dead]
        if not me:
            return []
        verb = "add" if cut else "del"
        for h in peers:
            sh("ip", "-n", me.netns, "route", verb, "blackhole", f"{h.ip}/32", check=False)
            sh("ip", "-n", h.netns, "route", verb, "blackhole", f"{me.ip}/32", check=False)
        return [h.instance_id for h in peers]

    @staticmethod
    def _signal(host: Host, sig: int, wait: float) -> bool:
        """Sends `sig` to the host's PID 1 and waits up to `wait` s for the host to end.
        False: it still runs."""
        try:
            os.kill(host.init_pid, sig)
        except ProcessLookupError:
            pass
        if host.proc:
            try:
                host.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                return False
        return True

    @staticmethod
    def run_lock(host: Host) -> list[str]:
        """The files in the host's /run/lock (a tmpfs of its own mount namespace), read through
        its dockerd's /proc/PID/root; [] while it is down."""
        try:
            return sorted(p.name for p in Path(f"/proc/{host.init_pid}/root/run/lock").iterdir()) if host.alive else []
        except OSError:
            return []

    def destroy(self, instance_id: str) -> None:
        with self.lock:
            host = self.hosts.pop(instance_id, None)
        if not host:
            return
        self.kill_hard_host(host)
        sh("ip", "link", "del", host.veth, check=False)
        sh("ip", "netns", "del", host.netns, check=False)
        _unmount_below(host.root)
        if (host.root / "dockerd.log").exists():
            shutil.copy(host.root / "dockerd.log", self.logs / f"{instance_id}.dockerd.log")
        shutil.rmtree(host.root, ignore_errors=True)

    def kill_hard_host(self, host: Host) -> None:
        if host.init_pid:
            try:
                os.kill(host.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if host.proc:
            try:
                host.proc.kill()
                host.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        host.dead = True

    def destroy_all(self) -> None:
        with self.lock:
            self.closing = True
        for iid in list(self.hosts):
            self.destroy(iid)
        _kill_processes_under(self.hosts_root)
        sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.hosts_root, ignore_errors=True)


def _child_of(pid: int) -> int | None:
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            if kids:
                return int(kids[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _kill_processes_under(root: Path | str) -> list[int]:
    """SIGKILLs every process whose command line names a path under `root` (a host's
    unshare, dockerd, containerd, shims): what a crashed or interrupted cloud can leave."""
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmd:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    return killed


def _wait_gone(root: Path, timeout: float = 15) -> None:
    """Until no process names a path under `root` (each one found is killed)."""
    end = time.time() + timeout
    while _kill_processes_under(root) and time.time() < end:
        time.sleep(0.1)


def _unmount_below(root: Path) -> None:
    prefix = str(root)
    try:
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return
    for m in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        sh("umount", "-l", m, check=False)


def clean_leftovers(state_root: Path | None = None, bridge: str = "lcbr0") -> list[str]:
    """Removes every namespace, link, process and mount a local cloud may have left."""
    removed = []
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(world.netns_prefix()):
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", name, check=False)
            removed.append(f"netns {name}")
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(VETH_PREFIX) or name == bridge:
            sh("ip", "link", "del", name, check=False)
            removed.append(f"link {name}")
    for pid in _kill_processes_under(f"/tmp/{world.hosts_root_prefix()}"):
        removed.append(f"process {pid}")
    for root in Path("/tmp").glob(f"{world.hosts_root_prefix()}*"):
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
        removed.append(f"dir {root}")
    if state_root and state_root.exists():
        _unmount_below(state_root)
    return removed
