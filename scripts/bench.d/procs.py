"""Process plumbing for scripts/bench: spawn (optionally pinned), track every PID we
started, read CPU/RSS from /proc, and clean everything up by PID.

Nothing here knows about proxies or tests; servers.py and tests.py build on it.
"""
import os
import shlex
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Servers are started through `setpriv --pdeathsig TERM` (util-linux): they get SIGTERM
# if the bench dies, even by SIGKILL, so a crashed bench never leaves proxies holding
# ports. (A Python preexec_fn would do the same but makes every spawn fork the whole
# interpreter, ~0.1 s on a busy machine.) Load tools end by themselves: their duration
# or EOF on stdin.
DEATHSIG = ["setpriv", "--pdeathsig", "TERM"]


class Pinning:
    """PIN=1: proxies on the first allowed CPU, everything else on the second."""

    def __init__(self, enabled):
        cpus = sorted(os.sched_getaffinity(0))
        self.enabled = enabled and len(cpus) >= 2
        self.proxy_cpu = cpus[0]
        self.other_cpu = cpus[1] if len(cpus) >= 2 else cpus[0]
        self.requested = enabled

    def prefix(self, role):
        """Command prefix for a process of ROLE ('proxy' or anything else)."""
        if not self.enabled:
            return []
        cpu = self.proxy_cpu if role == "proxy" else self.other_cpu
        return ["taskset", "-c", str(cpu)]


def quote(arg):
    """Shell-quote ARG; control characters (s_time's smuggled header) as bash $'..'."""
    if any(c in arg for c in "\r\n\t"):
        body = arg.replace("\\", "\\\\").replace("'", "\\'")
        return "$'%s'" % body.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return shlex.quote(arg)


class CommandLog:
    """Every command the bench runs, in order, for printing and for the commands file."""

    def __init__(self):
        self.lines = []

    def add(self, argv, note=""):
        line = " ".join(quote(a) for a in argv)
        if note:
            line = "%s   # %s" % (line, note)
        self.lines.append(line)
        return line


class Registry:
    """Every long-running process the bench started, so cleanup can stop them by PID."""

    def __init__(self, cmdlog):
        self.cmdlog = cmdlog
        self.procs = []  # (Popen, name)
        self.extra = []  # (pid, starttime) of grandchildren seen (nginx/haproxy workers)

    def spawn(self, argv, name, log_path, cwd=None, env=None, stdin=None, stdout=None):
        """Start ARGV in its own session (Ctrl-C in the terminal reaches only the bench,
        which then stops everything in order). stdout/stderr go to LOG_PATH unless
        STDOUT is given."""
        self.cmdlog.add(argv, name)
        log = open(log_path, "ab")
        try:
            proc = subprocess.Popen(
                DEATHSIG + argv, cwd=cwd, env=env,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=stdout if stdout is not None else log, stderr=log,
                start_new_session=True)
        finally:
            log.close()
        self.procs.append((proc, name))
        return proc

    def remember(self, pid):
        """Record a grandchild (e.g. an nginx worker) so cleanup can check it is gone."""
        st = proc_starttime(pid)
        if st is not None and (pid, st) not in self.extra:
            self.extra.append((pid, st))

    def stop(self, proc, timeout=5.0):
        """SIGTERM, wait, SIGKILL: one process we started."""
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs = [(p, n) for (p, n) in self.procs if p is not proc]

    def stop_all(self):
        for proc, _ in reversed(list(self.procs)):
            self.stop(proc, timeout=3.0)
        # Workers die with their master; anything left (same PID *and* start time, so
        # never a recycled PID) is killed explicitly.
        deadline = time.time() + 2.0
        for pid, st in self.extra:
            while proc_starttime(pid) == st and time.time() < deadline:
                time.sleep(0.05)
            if proc_starttime(pid) == st:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.extra = []


# ---------------------------------------------------------------- /proc readers

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return data[data.rindex(")") + 2:].split()


def proc_starttime(pid):
    f = _stat_fields(pid)
    return int(f[19]) if f else None


def proc_cpu_seconds(pid):
    """utime+stime of the whole thread group, in seconds (None if gone)."""
    f = _stat_fields(pid)
    if not f:
        return None
    return (int(f[11]) + int(f[12])) / CLK_TCK


def children(pid):
    """PIDs whose parent is PID (scans /proc; no CONFIG_PROC_CHILDREN needed)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(int(name))
        if f and int(f[1]) == pid and f[0] != "Z":
            out.append(int(name))
    return sorted(out)


def rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def uss_bytes(pid):
    """Memory private to PID (Private_Clean + Private_Dirty): unlike RSS or PSS it does
    not depend on which other processes map the same libraries."""
    total, seen = 0, False
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1]) * 1024
                    seen = True
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return total if seen else None


def system_cpu():
    """{'all': (busy, total), 'cpuN': (busy, total)} in ticks from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            parts = line.split()
            vals = [int(v) for v in parts[1:9]]  # user nice system idle iowait irq softirq steal
            idle = vals[3] + vals[4]
            total = sum(vals)
            out["all" if parts[0] == "cpu" else parts[0]] = (total - idle, total)
    return out


def busy_percent(before, after, key):
    b0, t0 = before.get(key, (0, 0))
    b1, t1 = after.get(key, (0, 0))
    return 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


# ---------------------------------------------------------------- ports and running

def free_ports(count):
    """COUNT distinct free TCP ports on 127.0.0.1 (held open together while choosing,
    so they differ; a tiny race with other users of the machine remains)."""
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_port(port, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def run_client(argv, cmdlog, timeout, stdin_data=None):
    """Run a load tool to completion: (returncode, stdout, stderr). Its CPU time shows
    up in ChildCpu once it is reaped."""
    cmdlog.add(argv)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_data else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


class ChildCpu:
    """CPU used by reaped children (the load tools) between start() and stop()."""

    def start(self):
        r = os.times()
        self.t0 = r.children_user + r.children_system
        return self

    def stop(self):
        r = os.times()
        return r.children_user + r.children_system - self.t0
