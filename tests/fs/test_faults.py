"""Fault injection on a live mount: damage in every region of a container,
backing read errors (an LD_PRELOAD shim), a backing file deleted mid-read,
and kill -9 of the daemon followed by a remount.  The daemon never returns a
wrong byte, never crashes, and keeps serving the other models."""
import errno
import os
import shutil
import signal
import struct
import subprocess
import time

import pytest
from qsmount import BUILD, Mount, files_under, sha256

SHIM = os.path.join(BUILD, "libfailshim.so")


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def wait_for(cond, timeout=5):
    deadline = time.time() + timeout
    while not cond() and time.time() < deadline:
        time.sleep(0.05)
    return cond()


def regions(path):
    """(name, offset) pairs covering every region of a container."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(size - 128)
        t = f.read(128)
    moff, mlen = struct.unpack("<QQ", t[24:40])
    coff, = struct.unpack("<Q", t[48:56])
    eoff, = struct.unpack("<Q", t[64:72])
    out = [("header", 3), ("header hash", 60)]
    for k in range(12):   # chunk data, spread over it
        out.append((f"chunk data {k}", 64 + (moff - 64) * (2 * k + 1) // 24))
    out += [("manifest", moff + mlen // 2), ("chunk table", coff + 5), ("extent table", eoff + 9),
            ("trailer", size - 100), ("trailer hash", size - 3)]
    return out


def test_damage_every_region(models, mount_factory, tmp_path):
    back = tmp_path / "back"
    back.mkdir()
    shutil.copy(os.path.join(models["_back"], "sharded.qst"), back / "fine.qst")
    m = mount_factory(str(back))
    src = models["single"][0]
    good = os.path.join(models["_back"], "single.qst")
    want = {rel: read_all(os.path.join(src, rel)) for rel in files_under(src)}
    outcomes = {}
    for name, off in regions(good):
        data = bytearray(read_all(good))
        data[off] ^= 0x40
        tmp = back / ".d.qst.tmp"
        tmp.write_bytes(bytes(data))
        os.rename(tmp, back / "d.qst")
        os.utime(back / "d.qst")
        subprocess.run(["kill", "-HUP", str(m.proc.pid)])
        time.sleep(0.3)
        if "d" not in os.listdir(m.dir):
            outcomes[name] = "hidden"
        else:
            eio = 0
            for rel, content in want.items():
                try:
                    got = read_all(m.path("d", "bf16", rel))
                    assert got == content, f"{name}: wrong bytes in {rel}"
                except OSError as e:
                    assert e.errno == errno.EIO, (name, rel, e)
                    eio += 1
            outcomes[name] = f"EIO on {eio} file(s)" if eio else "unaffected"
        # the other model keeps working
        assert read_all(m.path("fine", "bf16", "config.json"))
        os.unlink(back / "d.qst")
        assert wait_for(lambda: "d" not in os.listdir(m.dir))
    print("\n" + "\n".join(f"  {k}: {v}" for k, v in outcomes.items()))
    for k in ("header", "manifest", "chunk table", "extent table", "trailer", "trailer hash"):
        assert outcomes[k] == "hidden", (k, outcomes[k])
    assert any(v.startswith("EIO") for k, v in outcomes.items() if k.startswith("chunk data"))
    assert m.proc.poll() is None
    # qstore verify names what is wrong for the same damage
    data = bytearray(read_all(good))
    data[regions(good)[5][1]] ^= 0x40
    (tmp_path / "v.qst").write_bytes(bytes(data))
    r = subprocess.run([os.path.join(BUILD, "qstore"), "verify", "-q", str(tmp_path / "v.qst")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "chunk" in r.stderr and "tensor '" in r.stderr


def test_backing_read_errors(models, mount_factory):
    good = os.path.join(models["_back"], "single.qst")
    size = os.path.getsize(good)
    env = dict(os.environ, LD_PRELOAD=SHIM, QS_FAIL_FILE="/single.qst", QS_FAIL_FROM=str(size // 3),
               QS_FAIL_TO=str(size // 3 + 1000), ASAN_OPTIONS="verify_asan_link_order=0")
    m = mount_factory(models["_back"], [], env)
    with pytest.raises(OSError) as e:
        read_all(m.path("single", "bf16", "model.safetensors"))
    assert e.value.errno == errno.EIO
    log = m.log_text()
    assert "backing read error" in log and "tensor '" in log and "chunk" in log, log
    # the same file's other chunks, and the other models, still read
    with open(m.path("single", "bf16", "model.safetensors"), "rb") as f:
        assert len(f.read(4096)) == 4096
    src = models["sharded"][0]
    for rel in files_under(src):
        assert sha256(os.path.join(src, rel)) == sha256(m.path("sharded", "bf16", rel))


def test_backing_deleted_mid_read(models, mount_factory, tmp_path):
    back = tmp_path / "back"
    back.mkdir()
    shutil.copy(os.path.join(models["_back"], "single.qst"), back / "s.qst")
    m = mount_factory(str(back))
    src = os.path.join(models["single"][0], "model.safetensors")
    with open(m.path("s", "bf16", "model.safetensors"), "rb") as f:
        head = f.read(1 << 20)
        os.unlink(back / "s.qst")
        assert wait_for(lambda: "s" not in os.listdir(m.dir))
        rest = f.read()            # the open handle keeps its version
    assert head + rest == read_all(src)


def test_kill_9_then_remount(models):
    m = Mount(models["_back"])
    try:
        f = open(m.path("single", "bf16", "model.safetensors"), "rb")
        f.read(1 << 20)
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait()
        # the connection is gone: what is not in the kernel's caches fails
        # (the open file may still read pages its readahead already fetched)
        with pytest.raises(OSError) as e:
            os.listdir(m.dir)
        assert e.value.errno == errno.ENOTCONN
        f.close()
        subprocess.run(["fusermount3", "-u", "-z", m.dir], check=True)
        m2 = Mount(models["_back"])
        try:
            src = models["single"][0]
            assert sha256(os.path.join(src, "model.safetensors")) == sha256(m2.path("single", "bf16", "model.safetensors"))
        finally:
            m2.close()
    finally:
        m.close()
