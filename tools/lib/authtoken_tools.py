"""How tools/bench, tools/soak and tools/run-demo start, wait for and stop
redis-server, authtokend, nginx, gunicorn and wrk, and talk to Redis: one
place, the Python twin of t/lib/AuthToken/Process.pm.

Processes: start() runs a command in a session of its own (so that stop()
reaches its whole process group: nginx and gunicorn workers) with stdout
and stderr appended to a log, and remembers it; stop() sends a signal to
the group, waits, then SIGKILLs what is left; stop_all() stops everything
start() started, newest first. wait_port() and wait_log() wait for a
process to be ready and raise ToolError, with the log's tail, when it
exits or the time is up. Process facts (children, CPU time, memory) come
from psutil (Debian's python3-psutil); Redis commands go through redis-py
(python3-redis). Mass insertion stays with `redis-cli --pipe`.

Needs Debian's interpreter: run the tools as /usr/bin/python3 (their
shebang), not a python3 from PATH that may not see Debian's packages.
"""

import base64
import os
import re
import signal
import socket
import subprocess
import time

import psutil
import redis

RedisError = redis.RedisError     # what a redis-py call raises, to catch

started = []        # every Popen start() made and stop() has not stopped


class ToolError(Exception):
    """A process did not start or a helper cannot go on: the message says
    what, with the log's tail where there is one."""


# ---------------------------------------------------------------- processes

def token_key(digest_hex):
    """The name of a token record (redis/SCHEMA.md, schema version 3):
    authtoken:token:<base64url of the digest's 32 bytes, no padding>."""
    raw = bytes.fromhex(digest_hex)
    return "authtoken:token:" + base64.urlsafe_b64encode(raw).rstrip(
        b"=").decode()


def start(cmd, logfile, env=None, cwd=None, keep=False):
    """Starts cmd in a new session, stdout+stderr appended to logfile.
    keep=True: not stopped by stop_all() (a server meant to outlive the
    tool, as `make run`'s)."""
    with open(logfile, "ab") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                             start_new_session=True)
    if not keep:
        started.append(p)
    return p


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop(p, sig=signal.SIGTERM, grace=5.0):
    """Stops a process start() started and its process group (its pid:
    start_new_session): sig, up to grace seconds, then SIGKILL for whatever
    of the group is left (workers of a master that died first)."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 5
    while _group_alive(p.pid) and time.monotonic() < deadline:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    if p.poll() is None:
        p.kill()
        p.wait()
    if p in started:
        started.remove(p)


def stop_all(grace=5.0):
    for p in reversed(list(started)):
        stop(p, grace=grace)


def stop_pid(pid, sig=signal.SIGTERM, grace=5.0):
    """Stops a process by pid (one this tool did not start, or started
    in an earlier run): sig, up to grace seconds, then SIGKILL. True if it
    was running."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return False
    try:
        proc.wait(grace)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    return True


def pid_file(path):
    """The pid written in path, or None."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def log_tail(logfile, size=3000):
    try:
        with open(logfile, errors="replace") as f:
            return f.read()[-size:]
    except OSError:
        return ""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), 0.2):
            return True
    except OSError:
        return False


def _ready(check, what, p, logfile, timeout, wanted):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p is not None and p.poll() is not None:
            raise ToolError("%s exited (status %s) before %s; its log:\n%s"
                            % (what, p.returncode, wanted, log_tail(logfile)))
        if check():
            return
        time.sleep(0.05)
    raise ToolError("%s did not come up (%s) within %gs; its log:\n%s"
                    % (what, wanted, timeout, log_tail(logfile)))


def wait_port(port, what, p=None, logfile=None, timeout=15.0):
    """Until 127.0.0.1:port accepts a connection."""
    _ready(lambda: port_open(port), what, p, logfile, timeout,
           "listening on 127.0.0.1:%d" % port)


def wait_log(logfile, pattern, what, p=None, timeout=15.0):
    """Until a line of logfile matches the compiled regex pattern."""
    def seen():
        try:
            with open(logfile, errors="replace") as f:
                return any(pattern.search(line) for line in f)
        except OSError:
            return False
    _ready(seen, what, p, logfile, timeout, "logging %r" % pattern.pattern)


# ---------------------------------------------------------------- process facts

def children(pid):
    """The pids of pid's direct children, sorted (nginx's workers)."""
    try:
        return sorted(c.pid for c in psutil.Process(pid).children())
    except psutil.NoSuchProcess:
        return []


def descendants(pid):
    """pid and all its descendants."""
    try:
        return [pid] + [c.pid for c in
                        psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return [pid]


def cpu_seconds(pid):
    """user + system CPU time of one process (all its threads), or None
    when it is gone."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return None
    return t.user + t.system


def cpu_busy():
    """{cpu: (busy seconds, total seconds)} since boot, per CPU; busy is
    all but idle and iowait (guest time is inside user)."""
    out = {}
    for n, t in enumerate(psutil.cpu_times(percpu=True)):
        total = (t.user + t.nice + t.system + t.idle + t.iowait + t.irq
                 + t.softirq + t.steal)
        out[n] = (total - t.idle - t.iowait, total)
    return out


def memory_kb(pid):
    """{VmRSS, RssAnon, RssShmem} in kB from /proc/PID/status (psutil
    has no RssAnon/RssShmem split), or None when it is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssShmem"):
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    return out


# ---------------------------------------------------------------- Redis

def redis_client(port, **kw):
    """A redis-py client for 127.0.0.1:port, replies as str."""
    kw.setdefault("socket_timeout", 10)
    kw.setdefault("socket_connect_timeout", 10)
    return redis.Redis(host="127.0.0.1", port=port, decode_responses=True,
                       **kw)


def redis_pipe(port, resp_file):
    """Mass insertion: `redis-cli --pipe` from a file of RESP commands;
    (errors, replies) as redis-cli counts them, ToolError if it fails."""
    with open(resp_file, "rb") as f:
        r = subprocess.run([os.environ.get("REDIS_CLI", "redis-cli"),
                            "-h", "127.0.0.1", "-p", str(port), "--pipe"],
                           stdin=f, capture_output=True, text=True)
    m = re.search(r"errors: (\d+), replies: (\d+)", r.stdout)
    if r.returncode != 0 or not m:
        raise ToolError("redis-cli --pipe: %s %s" % (r.stdout, r.stderr))
    return int(m.group(1)), int(m.group(2))


_packer = redis.connection.Connection()     # never connects: packs only


def resp(*args):
    """One command in RESP (redis-py's encoding), for a redis-cli --pipe
    file."""
    return b"".join(_packer.pack_command(*args))
