"""Helpers shared by the FUSE tests, the loader tests and the benchmark:
paths to the binaries, model generation and packing, and Mount, a real
qstorefs mount under a temporary directory that always unmounts."""

import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time


BUILD = os.path.abspath(os.environ.get("QS_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build")))
QSTORE = os.environ.get("QSTORE", os.path.join(BUILD, "qstore"))
QSTOREFS = os.environ.get("QSTOREFS", os.path.join(BUILD, "qstorefs"))
GENMODEL = os.path.join(BUILD, "genmodel")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_under(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def run_threads(target, n):
    """Run target(i) for i in range(n) on n threads; return when all are done."""
    import threading
    ts = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def gen(path, *args):
    subprocess.run([GENMODEL, path, *args], check=True, stderr=subprocess.DEVNULL)


def pack(src, out, *args):
    subprocess.run([QSTORE, "pack", src, "-o", out, *args], check=True, stdout=subprocess.DEVNULL)


def format_written():
    """The container format version this build writes (`qstore --version`)."""
    v = subprocess.run([QSTORE, "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"container format (\d+)", v).group(1))


def pack_once(src, out):
    """Pack unless out is a container this build writes (the benchmarks keep
    theirs between runs; one of an older format version, even one this build
    still reads, is replaced: it would measure the old coding)."""
    if os.path.exists(out):
        with open(out, "rb") as f:
            head = f.read(12)
        if len(head) == 12 and struct.unpack_from("<I", head, 8)[0] == format_written() and \
                subprocess.run([QSTORE, "info", out], capture_output=True).returncode == 0:
            return
        os.unlink(out)
    pack(src, out)


class Mount:
    def __init__(self, back, opts=(), env=None):
        self.back = back
        self.dir = tempfile.mkdtemp(prefix="qstorefs-mnt.")
        self.log = tempfile.NamedTemporaryFile(prefix="qstorefs-log.", delete=False)
        args = [QSTOREFS, back, self.dir, "-f"]
        for o in opts:
            args += ["-o", o]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 20
        while not os.path.ismount(self.dir):
            if self.proc.poll() is not None or time.time() > deadline:
                text = self.log_text()
                self.close()
                raise RuntimeError("qstorefs did not mount: " + text)
            time.sleep(0.02)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop the daemon with SIG; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        self.stop()
        if os.path.ismount(self.dir):
            subprocess.run(["fusermount3", "-u", "-z", self.dir], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.unlink(self.log.name)


