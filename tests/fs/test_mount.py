"""qstorefs on real FUSE mounts: the tree, byte-exact views, concurrent
random reads, mmap, merged single-file views, errors, read-only, the cache
bound, live replacement and clean shutdown."""
import errno
import json
import mmap
import os
import random
import shutil
import signal
import struct
import subprocess
import threading
import time

import pytest
from qsmount import QSTORE, Mount, files_under, gen, pack, run_threads, sha256


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def test_tree(mount):
    assert sorted(os.listdir(mount.dir)) == [".qstorefs", "half", "sharded", "single"]
    # the default lower_views: int4 beside the stored views
    assert sorted(os.listdir(mount.path("single"))) == ["bf16", "int4", "int8", "model-bf16.safetensors",
                                                        "model-int4.safetensors", "model-int8.safetensors"]
    assert sorted(os.listdir(mount.path("half"))) == ["fp16", "int4", "int8", "model-fp16.safetensors",
                                                      "model-int4.safetensors", "model-int8.safetensors"]
    assert sorted(os.listdir(mount.path("half", "int4"))) == sorted(os.listdir(mount.path("half", "int8")))
    st = os.stat(mount.path("single", "bf16", "model.safetensors"))
    assert st.st_mode & 0o777 == 0o444
    assert st.st_ino == os.stat(mount.path("single", "bf16", "model.safetensors")).st_ino


def test_every_file_byte_exact(mount, models):
    for name, (src, int8) in ((k, v) for k, v in models.items() if not k.startswith("_")):
        d = "fp16" if name == "half" else "bf16"
        assert files_under(mount.path(name, d)) == files_under(src)
        for rel in files_under(src):
            assert sha256(os.path.join(src, rel)) == sha256(mount.path(name, d, rel)), (name, rel)
        assert files_under(mount.path(name, "int8")) == files_under(int8)
        for rel in files_under(int8):
            assert read_all(os.path.join(int8, rel)) == read_all(mount.path(name, "int8", rel)), (name, rel)
    # a single-file source is its own single-file view
    assert sha256(mount.path("single", "model-bf16.safetensors")) == sha256(
        os.path.join(models["single"][0], "model.safetensors"))
    assert read_all(mount.path("single", "model-int8.safetensors")) == read_all(
        os.path.join(models["single"][1], "model.safetensors"))


def test_random_preads_from_8_threads(mount, models):
    src, int8 = models["sharded"]
    targets = []
    for rel in files_under(src):
        targets.append((mount.path("sharded", "bf16", rel), read_all(os.path.join(src, rel))))
    for rel in files_under(int8):
        targets.append((mount.path("sharded", "int8", rel), read_all(os.path.join(int8, rel))))
    failures = []

    def worker(seed):
        rnd = random.Random(seed)
        fds = {p: os.open(p, os.O_RDONLY) for p, _ in targets}
        try:
            for _ in range(400):
                path, want = targets[rnd.randrange(len(targets))]
                off = rnd.randrange(len(want) + 10)
                n = rnd.choice([1, 7, 4096, 65536, 1 << 20, 3 << 20])
                got = os.pread(fds[path], n, off)
                if got != want[off:off + n]:
                    failures.append((path, off, n))
        finally:
            for fd in fds.values():
                os.close(fd)
    run_threads(worker, 8)
    assert not failures, failures[:5]


def test_mmap_and_safe_open(mount, models):
    from safetensors import safe_open
    src = os.path.join(models["single"][0], "model.safetensors")
    want = read_all(src)
    with open(mount.path("single", "model-bf16.safetensors"), "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        rnd = random.Random(3)
        for _ in range(200):
            off = rnd.randrange(len(want))
            assert m[off:off + 5000] == want[off:off + 5000]
        m.close()
    # the reference reader, with its mmap backend, on the INT8 single file
    with safe_open(mount.path("single", "model-int8.safetensors"), framework="numpy") as f:
        keys = list(f.keys())
        q = [k for k in keys if k.endswith("q_proj.weight")]
        assert q and f.get_tensor(q[0]).dtype.name == "int8"


def raw_tensors(path):
    data = read_all(path)
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    hdr.pop("__metadata__", None)
    return {k: data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in hdr.items()}


def test_sharded_single_file_views_are_merged(mount):
    for view, single in (("bf16", "model-bf16.safetensors"), ("int8", "model-int8.safetensors")):
        merged = raw_tensors(mount.path("sharded", single))
        parts = {}
        for shard in sorted(os.listdir(mount.path("sharded", view))):
            if shard.startswith("model-0"):
                parts.update(raw_tensors(mount.path("sharded", view, shard)))
        assert merged == parts


def test_read_only(mount):
    p = mount.path("single", "bf16", "config.json")
    for attempt in (lambda: os.open(p, os.O_WRONLY), lambda: os.open(p, os.O_RDWR),
                    lambda: os.mkdir(mount.path("single", "x")), lambda: os.unlink(p),
                    lambda: os.open(mount.path("single", "new"), os.O_CREAT | os.O_WRONLY),
                    lambda: os.rename(p, p + ".2"), lambda: os.truncate(p, 0)):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS


def test_stats(mount):
    read_all(mount.path("single", "bf16", "model.safetensors"))
    read_all(mount.path("single", "int8", "model.safetensors"))
    s = json.loads(read_all(mount.path(".qstorefs", "stats")))
    assert s["cache"]["misses"] > 0 and s["decoded"]["bytes"] > 0 and s["errors"] == 0
    assert set(s["models"]) == {"single", "sharded", "half"}
    for k in ("size", "used", "hits", "evictions"):
        assert k in s["cache"]
    assert "issued" in s["prefetch"] and "used" in s["prefetch"]
    # the second file's backing reads land in buffers the first one's used
    sb = s["span_buffers"]
    assert sb["reused"] > 0 and 0 < sb["kept_bytes"] <= 32 << 20, sb


def test_damaged_chunk_gives_eio_others_fine(models, mount_factory, tmp_path):
    back = tmp_path / "back"
    back.mkdir()
    good = os.path.join(models["_back"], "single.qst")
    bad = str(back / "broken.qst")
    shutil.copy(good, bad)
    shutil.copy(os.path.join(models["_back"], "sharded.qst"), back / "fine.qst")
    size = os.path.getsize(bad)
    with open(bad, "r+b") as f:   # a byte in the middle of the chunk data
        f.seek(size // 3)
        b = f.read(1)
        f.seek(size // 3)
        f.write(bytes([b[0] ^ 0xFF]))
    m = mount_factory(str(back))
    with pytest.raises(OSError) as e:
        read_all(m.path("broken", "bf16", "model.safetensors"))
    assert e.value.errno == errno.EIO
    # everything else still reads, byte for byte
    src = models["sharded"][0]
    for rel in files_under(src):
        assert sha256(os.path.join(src, rel)) == sha256(m.path("fine", "bf16", rel))
    assert read_all(m.path("broken", "bf16", "config.json"))
    log = m.log_text()
    line = [l for l in log.splitlines() if l.startswith("qstorefs: error: ") and "broken.qst" in l]
    assert line and "file 'model.safetensors'" in line[0] and "tensor '" in line[0], log


def test_release_racing_reads(mount):
    """Files opened, read and closed on many threads at once: the kernel may
    send RELEASE the moment it has a READ's reply, while the daemon's thread
    is still returning from writing it (under ASan that freed the stats text
    under the writev: the daemon died).  Every read gets whole bytes."""
    stats = mount.path(".qstorefs", "stats")
    small = mount.path("single", "int8", "config.json")
    want = read_all(small)
    bad = []

    def worker(i):
        for _ in range(150):
            for p in (stats, small):
                fd = os.open(p, os.O_RDONLY)
                try:
                    got = os.read(fd, 1 << 20)
                finally:
                    os.close(fd)
                if (p == small and got != want) or (p == stats and not got.rstrip().endswith(b"}")):
                    bad.append(p)
    run_threads(worker, 8)
    assert not bad, bad[:3]
    assert mount.proc.poll() is None, mount.log_text()


def test_cache_bound(models, mount_factory):
    m = mount_factory(models["_back"], ["cache_size=32M", "prefetch_max=16M"])
    peak = 0
    for name in ("single", "sharded", "half"):
        for d in os.listdir(m.path(name)):
            p = m.path(name, d)
            paths = [os.path.join(p, r) for r in files_under(p)] if os.path.isdir(p) else [p]
            for q in paths:
                read_all(q)
                peak = max(peak, m.rss_kib())
    s = json.loads(read_all(m.path(".qstorefs", "stats")))
    assert s["cache"]["used"] <= 32 << 20
    assert s["cache"]["evictions"] > 0
    if not os.environ.get("QS_ASAN"):   # ASan's shadow memory and quarantine are not ours
        assert peak < (32 + 64) * 1024, f"daemon RSS {peak} KiB with a 32 MiB cache"


def test_live_directory(models, mount_factory, tmp_path):
    back = tmp_path / "back"
    back.mkdir()
    m = mount_factory(str(back))
    assert os.listdir(m.dir) == [".qstorefs"]
    # rsync-style temporaries and damaged files are not shown
    shutil.copy(os.path.join(models["_back"], "half.qst"), back / ".half.qst.Xy12Ab")
    with open(back / "junk.qst", "wb") as f:
        f.write(b"not a container" * 100)
    os.rename(back / ".half.qst.Xy12Ab", back / "half.qst")
    deadline = time.time() + 5
    while "half" not in os.listdir(m.dir) and time.time() < deadline:
        time.sleep(0.05)
    assert sorted(os.listdir(m.dir)) == [".qstorefs", "half"]
    os.unlink(back / "half.qst")
    deadline = time.time() + 5
    while "half" in os.listdir(m.dir) and time.time() < deadline:
        time.sleep(0.05)
    assert sorted(os.listdir(m.dir)) == [".qstorefs"]


def test_format_version_1_container_not_shown_and_named(mount_factory, tmp_path):
    """A container from qstore 0.1 (format 1) is left out of the mount with one
    log line naming the file, the version and what to do; the others serve."""
    golden = os.path.join(os.path.dirname(__file__), "..", "golden")
    back = tmp_path / "back"
    back.mkdir()
    shutil.copy(os.path.join(golden, "golden-v1.qst"), back / "old.qst")
    shutil.copy(os.path.join(golden, "golden.qst"), back / "new.qst")
    m = mount_factory(str(back))
    assert sorted(os.listdir(m.dir)) == [".qstorefs", "new"]
    log = m.log_text()
    assert "old.qst" in log and "format version 1 is not supported" in log and "unpack it with qstore 0.1" in log, log


def test_background_daemon_prefetches(models, tmp_path):
    """Started without -f (mount -t, fstab), the daemon forks into the
    background: its prefetch workers must run there.  They used to be
    started before the fork, so a backgrounded daemon queued prefetch jobs
    that no thread ran (stats: issued 0 after a whole sequential read)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    from qsmount import QSTOREFS
    r = subprocess.run([QSTOREFS, models["_back"], str(mnt), "-o", "cache_size=64M"],
                       capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0 and os.path.ismount(mnt), r.stderr
        with open(mnt / "single" / "model-bf16.safetensors", "rb", buffering=0) as f:
            while f.read(1 << 20):
                pass
        with open(mnt / ".qstorefs" / "stats") as f:
            st = json.load(f)
        assert st["prefetch"]["issued"] > 0, st
    finally:
        pids = daemons_serving(str(mnt))
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
    # and it exits once unmounted (it used to hang in pthread_join on
    # workers that existed only in the parent it forked from)
    deadline = time.time() + 20
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    left = [p for p in pids if os.path.exists(f"/proc/{p}")]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert pids and not left, f"daemon {left} still running 20 s after unmount"


def daemons_serving(mnt):
    """PIDs of qstorefs processes whose command line names MNT."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if args and os.path.basename(args[0]) == b"qstorefs" and mnt.encode() in args:
                out.append(int(d))
    return out


def test_replace_by_rename_under_readers(models, mount_factory, tmp_path):
    """Readers stream a model while its container is replaced by rename: every
    handle reads one version whole, new opens see the new version."""
    back = tmp_path / "back"
    back.mkdir()
    a, b = tmp_path / "a.qst", tmp_path / "b.qst"
    gen(str(tmp_path / "va"), "--mb", "6", "--hidden", "256", "--seed", "11")
    gen(str(tmp_path / "vb"), "--mb", "6", "--hidden", "256", "--seed", "22")
    pack(str(tmp_path / "va"), str(a))
    pack(str(tmp_path / "vb"), str(b))
    ha = sha256(str(tmp_path / "va" / "model.safetensors"))
    hb = sha256(str(tmp_path / "vb" / "model.safetensors"))
    shutil.copy(a, back / "m.qst")
    m = mount_factory(str(back))
    target = m.path("m", "bf16", "model.safetensors")
    held = open(target, "rb")          # opened on version A
    first = held.read(1 << 20)
    seen, bad, stop = set(), [], threading.Event()

    opens = [0]

    def reader():
        while not stop.is_set():
            try:   # a path present in both versions never fails to open
                h = sha256(target)
            except OSError as e:
                bad.append(repr(e))
                continue
            (seen.add(h) if h in (ha, hb) else bad.append(h))

    def opener(rel):   # many small opens: lookups racing the swap
        while not stop.is_set():
            try:
                with open(m.path("m", *rel), "rb") as f:
                    f.read(4096)
                opens[0] += 1
            except OSError as e:
                bad.append(f"{'/'.join(rel)}: {e!r}")
    rels = [("bf16", "config.json"), ("int8", "config.json"), ("model-bf16.safetensors",), ("bf16", "tokenizer.json")]
    ts = [threading.Thread(target=reader) for _ in range(4)]
    ts += [threading.Thread(target=opener, args=(rels[i % 4],)) for i in range(12)]
    for t in ts:
        t.start()
    t0 = time.time()
    for i in range(6):
        tmp = back / f".m.qst.tmp{i}"
        shutil.copy(b if i % 2 == 0 else a, tmp)
        os.rename(tmp, back / "m.qst")
        time.sleep(0.3)
    stop.set()
    for t in ts:
        t.join()
    assert not bad, (len(bad), bad[:3])
    assert seen == {ha, hb} and opens[0] > 100
    # the handle opened on A still reads A to the end
    rest = held.read()
    held.close()
    import hashlib
    assert hashlib.sha256(first + rest).hexdigest() == ha
    # after the last rename (to A), a new open sees A within a bounded time
    deadline = time.time() + 5
    while sha256(target) != ha and time.time() < deadline:
        time.sleep(0.05)
    assert sha256(target) == ha, "new opens did not see the new version"
    assert "replaced" in m.log_text()
    assert time.time() - t0 < 60


def test_sigterm_unmounts_cleanly(models):
    m = Mount(models["_back"])
    try:
        read_all(m.path("single", "bf16", "config.json"))
        assert m.stop(signal.SIGTERM) == 0
        assert not os.path.ismount(m.dir)
        assert "unmounted" in m.log_text()
    finally:
        m.close()


def test_bad_options(models, tmp_path):
    import subprocess
    from qsmount import QSTOREFS
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for opts, msg in ((["-o", "cache_size=lots"], "cache_size"), (["-o", "log_level=loud"], "log_level"),
                      (["-o", "cache_size=1M"], "at least 16M"), (["-o", "workers=0"], "workers"),
                      (["-o", "readahead_kb=-5"], "readahead_kb"), (["-o", "workers=0,readahead_kb=-5"], "workers"),
                      (["-o", "prefetch_max=99999999999999999999T"], "prefetch_max"),
                      (["-o", "cache_size=17592186044417M"], "cache_size")):
        r = subprocess.run([QSTOREFS, models["_back"], str(mnt), "-f", *opts], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode != 0 and msg in r.stderr and not os.path.ismount(mnt), (opts, r.stderr)
    r = subprocess.run([QSTOREFS, str(tmp_path / "nope"), str(mnt), "-f"], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "not a directory" in r.stderr
    assert not os.path.ismount(mnt)


def test_held_directory_of_a_replaced_version(models, mount_factory, tmp_path):
    """A directory of the old version held open across a replace still lists
    and resolves its files, including ones never looked up before the swap."""
    back = tmp_path / "back"
    back.mkdir()
    src = models["single"][0]
    pack(src, str(back / "m.qst"), "--chunk-size", "128K")
    m = mount_factory(str(back))
    names = sorted(os.listdir(src))
    fd = os.open(m.path("m", "bf16"), os.O_RDONLY | os.O_DIRECTORY)   # looks up m and bf16 only
    try:
        shutil.copy(back / "m.qst", back / ".m.qst.new")
        os.utime(back / ".m.qst.new", (1, 1))                          # a different identity
        os.rename(back / ".m.qst.new", back / "m.qst")
        deadline = time.time() + 10
        while "replaced" not in m.log_text() and time.time() < deadline:
            time.sleep(0.05)
        assert "replaced" in m.log_text()
        assert sorted(os.listdir(fd)) == names
        for n in (n for n in names if os.path.isfile(os.path.join(src, n))):
            st = os.stat(n, dir_fd=fd)
            assert st.st_size == os.path.getsize(os.path.join(src, n))
            f = os.open(n, os.O_RDONLY, dir_fd=fd)
            try:
                with open(os.path.join(src, n), "rb") as ref:
                    assert os.read(f, 1 << 16) == ref.read(1 << 16)
            finally:
                os.close(f)
    finally:
        os.close(fd)


def test_backing_directory_removed_and_recreated(models, mount_factory, tmp_path):
    back = tmp_path / "back"
    back.mkdir()
    shutil.copy(os.path.join(models["_back"], "half.qst"), back / "m.qst")
    m = mount_factory(str(back))
    assert "m" in os.listdir(m.dir)
    shutil.rmtree(back)
    deadline = time.time() + 10
    while "m" in os.listdir(m.dir) and time.time() < deadline:
        time.sleep(0.05)
    assert "m" not in os.listdir(m.dir), "models of a removed backing directory are still listed"
    back.mkdir()
    shutil.copy(os.path.join(models["_back"], "half.qst"), back / "n.qst")
    deadline = time.time() + 10
    while "n" not in os.listdir(m.dir) and time.time() < deadline:
        time.sleep(0.05)
    assert "n" in os.listdir(m.dir), "a recreated backing directory is not watched"
