"""qstorefs on model hosts: mount -t fuse.qstorefs and fstab through
mount.fuse3, the configuration file, allow_other for non-root users, SIGHUP,
the systemd unit, the .deb, and rsync of the backing store under readers."""
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest
from qsmount import BUILD, QSTOREFS, Mount, gen, pack, sha256

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def wait_mounted(d, timeout=20):
    deadline = time.time() + timeout
    while not os.path.ismount(d) and time.time() < deadline:
        time.sleep(0.05)
    return os.path.ismount(d)


def umount(d):
    subprocess.run(["umount", d], check=False)
    deadline = time.time() + 10
    while os.path.ismount(d) and time.time() < deadline:
        time.sleep(0.05)


@pytest.fixture
def env_path():
    """mount(8) runs helpers with a fixed PATH, and mount.fuse3 looks the
    type's program up there: put the built qstorefs in /usr/local/sbin for the
    test (unless one is installed)."""
    link = "/usr/local/sbin/qstorefs"
    made = False
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.abspath(QSTOREFS), link)
        made = True
    try:
        yield dict(os.environ)
    finally:
        if made:
            os.unlink(link)


@needs_root
def test_mount_t_fuse_qstorefs(models, tmp_path, env_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "fuse.qstorefs", models["_back"], str(mnt), "-o", "ro,cache_size=64M"],
                       env=env_path, capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert wait_mounted(str(mnt))
        src = models["single"][0]
        assert sha256(os.path.join(src, "model.safetensors")) == sha256(str(mnt / "single" / "bf16" / "model.safetensors"))
        stats = json.load(open(mnt / ".qstorefs" / "stats"))
        assert stats["cache"]["size"] == 64 << 20
    finally:
        umount(str(mnt))
    assert not os.path.ismount(mnt)


@needs_root
def test_fstab_line(models, tmp_path, env_path):
    mnt = tmp_path / "models"
    mnt.mkdir()
    fstab = tmp_path / "fstab"
    # _netdev and nofail are fstab-only: mount.fuse3 must not pass them on
    fstab.write_text(f"{models['_back']}  {mnt}  fuse.qstorefs  ro,nofail,_netdev,cache_size=32M  0  0\n")
    r = subprocess.run(["mount", "--fstab", str(fstab), str(mnt)], env=env_path, capture_output=True, text=True,
                       timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert wait_mounted(str(mnt))
        assert "single" in os.listdir(mnt)
        # mount -a again: the line is mounted already, nothing stacks on it
        for _ in range(2):
            r = subprocess.run(["mount", "-a", "--fstab", str(fstab)], env=env_path, capture_output=True, text=True,
                               timeout=30)
            assert r.returncode == 0, r.stderr
        mounted = [l for l in open("/proc/self/mountinfo") if f" {mnt} " in l]
        assert len(mounted) == 1, mounted
        # and starting a daemon by hand onto the live mount is refused
        r = subprocess.run([QSTOREFS, models["_back"], str(mnt)], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "mounted there already" in r.stderr
        assert len([l for l in open("/proc/self/mountinfo") if f" {mnt} " in l]) == 1
    finally:
        umount(str(mnt))


def test_config_file(models, tmp_path, mount_factory):
    conf = tmp_path / "q.conf"
    conf.write_text("# test\ncache_size = 48M\nprefetch_max = 8M\nlog_level = warning\n")
    m = mount_factory(models["_back"], [f"config={conf}"])
    stats = json.load(open(m.path(".qstorefs", "stats")))
    assert stats["cache"]["size"] == 48 << 20
    assert "mounted" not in m.log_text()          # log_level warning hides info lines
    # the command line wins over the file
    m2 = mount_factory(models["_back"], [f"config={conf}", "cache_size=20M"])
    assert json.load(open(m2.path(".qstorefs", "stats")))["cache"]["size"] == 20 << 20


def test_lower_views_option(models, tmp_path, mount_factory):
    """lower_views picks the derived views shown: from the file (',' lists),
    the command line (':' lists, as -o splits on ','), default int4."""
    def views(m):
        return sorted(d for d in os.listdir(m.path("half")) if os.path.isdir(m.path("half", d)))
    assert views(mount_factory(models["_back"])) == ["fp16", "int4", "int8"]
    conf = tmp_path / "q.conf"
    conf.write_text("lower_views = int2,int7\n")
    assert views(mount_factory(models["_back"], [f"config={conf}"])) == ["fp16", "int2", "int7", "int8"]
    assert views(mount_factory(models["_back"], [f"config={conf}", "lower_views=int3:int5"])) == [
        "fp16", "int3", "int5", "int8"]
    m = mount_factory(models["_back"], ["lower_views=none"])
    assert views(m) == ["fp16", "int8"] and not os.path.exists(m.path("half", "model-int4.safetensors"))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([QSTOREFS, models["_back"], str(mnt), "-f", "-o", "lower_views=int8"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2 and "bad value for lower_views: 'int8'" in r.stderr, r.stderr
    assert not os.path.ismount(mnt)


@pytest.mark.parametrize("text,msg", [
    ("cache_size = 1G\ncolour = blue\n", ":2: unknown key 'colour'"),
    ("lower_views = int4,int1\n", ":1: bad value for 'lower_views': 'int4,int1'"),
    ("cache_size = huge\n", ":1: bad value for 'cache_size': 'huge'"),
    ("\n\nworkers = 0\n", ":3: bad value for 'workers'"),
    ("log_level = chatty\n", ":1: bad value for 'log_level'"),
    ("just words\n", ":1: expected 'key = value'"),
])
def test_bad_config_refused_before_mounting(models, tmp_path, text, msg):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([QSTOREFS, models["_back"], str(mnt), "-f", "-o", f"config={conf}"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0 and str(conf) + msg in r.stderr, r.stderr
    assert not os.path.ismount(mnt)


def test_config_gives_backing_and_mountpoint(models, tmp_path):
    """What the systemd unit does: qstorefs -f -o config=/etc/qstorefs/NAME.conf"""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    conf = tmp_path / "inst.conf"
    conf.write_text(f"backing = {models['_back']}\nmountpoint = {mnt}\ncache_size = 32M\n")
    p = subprocess.Popen([QSTOREFS, "-f", "-o", f"config={conf}"], stderr=subprocess.PIPE, text=True)
    try:
        assert wait_mounted(str(mnt))
        assert "single" in os.listdir(mnt)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(20)
    assert p.returncode == 0 and not os.path.ismount(mnt)


@needs_root
def test_allow_other_needs_user_allow_other(models, tmp_path):
    with open("/etc/fuse.conf") as f:
        if any(l.strip().startswith("user_allow_other") for l in f):
            pytest.skip("user_allow_other is set on this machine")
    user = "qstorefs-test"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", user], check=False, capture_output=True)
    import pwd
    import tempfile
    top = tempfile.mkdtemp(prefix="qstorefs-allow.")   # pytest's tmp dirs are private to root
    try:
        os.chmod(top, 0o755)
        mnt, back = os.path.join(top, "mnt"), os.path.join(top, "back")
        os.mkdir(mnt)
        os.mkdir(back)
        pw = pwd.getpwnam(user)
        os.chown(mnt, pw.pw_uid, pw.pw_gid)
        r = subprocess.run(["runuser", "-u", user, "--", QSTOREFS, back, mnt, "-f", "-o", "allow_other"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0
        assert "user_allow_other" in r.stderr and "/etc/fuse.conf" in r.stderr, r.stderr
        assert not os.path.ismount(mnt)
    finally:
        shutil.rmtree(top, ignore_errors=True)
        subprocess.run(["userdel", user], check=False, capture_output=True)


def test_sighup_rescans_and_reloads(models, tmp_path, mount_factory):
    back = tmp_path / "back"
    back.mkdir()
    conf = tmp_path / "q.conf"
    conf.write_text("log_level = info\n")
    m = mount_factory(str(back), [f"config={conf}"])
    conf.write_text("log_level = debug\nprefetch_max = 4M\n")
    # a container copied in place without a rename event the watcher might miss
    shutil.copy(os.path.join(models["_back"], "half.qst"), back / "half.qst")
    m.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "reloaded" not in m.log_text() and time.time() < deadline:
        time.sleep(0.05)
    assert "reloaded" in m.log_text() and "half" in os.listdir(m.dir)
    conf.write_text("log_level = loud\n")
    m.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while "not reloaded" not in m.log_text() and time.time() < deadline:
        time.sleep(0.05)
    assert "not reloaded" in m.log_text() and m.proc.poll() is None


def test_deb_is_lintian_clean():
    """lintian has no error or warning for the package or its -dbgsym, and
    none of the informational tags that mean unhardened or unstripped
    binaries (bindnow, fortify, stack protector, debug link)."""
    if shutil.which("lintian") is None or shutil.which("dpkg-deb") is None:
        pytest.fail("lintian and dpkg-deb are installed by make deps")
    deb = subprocess.run(["make", "-s", "--no-print-directory", "deb", f"B={BUILD}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    dbgsym = deb.replace("/qstorefs_", "/qstorefs-dbgsym_")
    assert os.path.exists(dbgsym), dbgsym
    r = subprocess.run(["lintian", "-I", "--tag-display-limit", "0", deb, dbgsym], capture_output=True, text=True)
    tags = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:", "I:")]
    bad = [t for t in tags if t.startswith(("E:", "W:")) or "hardening" in t or "unstripped" in t]
    assert not bad, "\n".join(tags)
    files = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    for f in ("usr/share/doc/qstorefs/copyright", "usr/share/doc/qstorefs/changelog.gz",
              "usr/share/bash-completion/completions/qstore", "usr/share/bash-completion/completions/qstorefs"):
        assert f in files, f


@needs_root
def test_deb_installs_and_unit_verifies(tmp_path):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("no dpkg-deb")
    if subprocess.run(["dpkg", "-s", "qstorefs"], capture_output=True).returncode == 0:
        pytest.skip("a qstorefs package is already installed here")
    deb = subprocess.run(["make", "-s", "--no-print-directory", "deb", f"B={BUILD}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    try:
        r = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert subprocess.run(["/usr/bin/qstorefs", "--version"], capture_output=True, text=True).stdout.startswith("qstorefs ")
        assert subprocess.run(["/usr/bin/qstore", "--version"], capture_output=True, text=True).stdout.startswith("qstore ")
        assert os.path.exists("/usr/share/man/man8/qstorefs.8.gz")
        v = subprocess.run(["systemd-analyze", "verify", "--man=no", "/lib/systemd/system/qstorefs@.service"],
                           capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
    finally:
        subprocess.run(["dpkg", "-r", "qstorefs"], capture_output=True)
    assert not os.path.exists("/usr/bin/qstorefs")


def test_rsync_new_version_under_readers(tmp_path, mount_factory):
    """The supported recipe: rsync -a into the backing directory (a temporary
    file, then a rename).  Readers never see mixed bytes; new opens see the
    new version within a bounded time; re-packing an unchanged model changes
    nothing, so rsync sends no data."""
    if shutil.which("rsync") is None:
        pytest.skip("no rsync")
    staging, back = tmp_path / "staging", tmp_path / "back"
    staging.mkdir()
    back.mkdir()
    gen(str(tmp_path / "v1"), "--mb", "8", "--hidden", "256", "--seed", "5")
    gen(str(tmp_path / "v2"), "--mb", "8", "--hidden", "256", "--seed", "6")
    h1, h2 = sha256(str(tmp_path / "v1" / "model.safetensors")), sha256(str(tmp_path / "v2" / "model.safetensors"))
    pack(str(tmp_path / "v1"), str(staging / "m.qst"))
    subprocess.run(["rsync", "-a", f"{staging}/", f"{back}/"], check=True)
    m = mount_factory(str(back))
    target = m.path("m", "bf16", "model.safetensors")
    bad, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                h = sha256(target)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    bad.append(repr(e))
                continue
            if h not in (h1, h2):
                bad.append(h)
    ts = [threading.Thread(target=reader) for _ in range(3)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    os.unlink(staging / "m.qst")
    pack(str(tmp_path / "v2"), str(staging / "m.qst"))
    t0 = time.time()
    subprocess.run(["rsync", "-a", f"{staging}/", f"{back}/"], check=True)
    while sha256(target) != h2 and time.time() - t0 < 10:
        time.sleep(0.02)
    seen_after = time.time() - t0
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join()
    assert not bad, bad[:3]
    assert sha256(target) == h2
    print(f"\nnew version visible {seen_after:.2f} s after rsync started")
    assert seen_after < 10
    # deterministic pack: re-packing the unchanged model gives the same bytes,
    # and rsync then transfers no data
    before = hashlib.sha256(open(back / "m.qst", "rb").read()).hexdigest()
    os.unlink(staging / "m.qst")
    pack(str(tmp_path / "v2"), str(staging / "m.qst"))
    # between hosts rsync's delta transfer finds every block (--no-whole-file
    # makes a local run behave the same); with --checksum it skips the file
    r = subprocess.run(["rsync", "-a", "--no-whole-file", "--stats", f"{staging}/", f"{back}/"], check=True,
                       capture_output=True, text=True)
    literal = [l for l in r.stdout.splitlines() if l.startswith("Literal data")]
    assert literal and literal[0].split(":")[1].strip().startswith("0 "), r.stdout
    r = subprocess.run(["rsync", "-a", "--checksum", "--stats", f"{staging}/", f"{back}/"], check=True,
                       capture_output=True, text=True)
    assert "Number of regular files transferred: 0" in r.stdout, r.stdout
    assert hashlib.sha256(open(back / "m.qst", "rb").read()).hexdigest() == before


# options that give a service a mount namespace of its own (systemd.exec(5)):
# each makes every mount a slave first, so a FUSE mount made inside would be
# invisible on the host, whatever MountFlags= says
NAMESPACE_OPTIONS = {"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
                     "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                     "ProtectClock", "ProtectHostname", "ProtectProc", "ProcSubset", "ReadOnlyPaths",
                     "ReadWritePaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem",
                     "BindPaths", "BindReadOnlyPaths", "MountFlags", "RootDirectory", "RootImage",
                     "PrivateIPC", "PrivateUsers", "MountAPIVFS", "LogNamespace", "StateDirectory",
                     "RuntimeDirectory", "CacheDirectory", "LogsDirectory", "ConfigurationDirectory"}


def installed_unit(tmp_path, prefix):
    dest = tmp_path / "dest"
    subprocess.run(["make", "-s", "--no-print-directory", "install", f"B={BUILD}", f"DESTDIR={dest}",
                    f"PREFIX={prefix}"], cwd=ROOT, check=True, capture_output=True)
    unit = dest / prefix.lstrip("/") / "lib/systemd/system/qstorefs@.service"
    opts = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            opts.setdefault(k.strip(), v.strip())
    return dest, opts


@pytest.mark.parametrize("prefix", ["/usr/local", "/usr", "/opt/qs"])
def test_installed_unit_runs_the_installed_binary(tmp_path, prefix):
    dest, opts = installed_unit(tmp_path, prefix)
    exe = opts["ExecStart"].split()[0]
    assert exe == f"{prefix}/bin/qstorefs"
    assert os.access(str(dest) + exe, os.X_OK)


def test_unit_mounts_in_the_host_namespace(tmp_path):
    _, opts = installed_unit(tmp_path, "/usr")
    assert not NAMESPACE_OPTIONS & set(opts), sorted(NAMESPACE_OPTIONS & set(opts))
    assert "CAP_SYS_ADMIN" in opts["CapabilityBoundingSet"] and opts["DeviceAllow"].startswith("/dev/fuse")


def test_unit_exposure_score(tmp_path):
    """systemd-analyze security of the installed unit: at most 4.5 (4.0 with
    systemd 252; README says what is left and why)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd is installed by make deps")
    dest, _ = installed_unit(tmp_path, "/usr")
    inst = tmp_path / "qstorefs@models.service"
    inst.write_text((dest / "usr/lib/systemd/system/qstorefs@.service").read_text())
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(inst)],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 4.5, r.stdout


@needs_root
def test_mount_propagation_as_systemd_would_set_it_up(models, tmp_path):
    """What the unit relies on, shown both ways: in a slave mount namespace
    (what any namespace option gives a service) the mount stays invisible to
    the host; run as the unit runs it (the host namespace) it is visible."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    for slave, visible in ((True, False), (False, True)):
        mnt = tmp_path / f"mnt-{slave}"
        mnt.mkdir()
        cmd = [QSTOREFS, "-f", models["_back"], str(mnt)]
        if slave:
            cmd = ["unshare", "--mount", "--propagation", "slave"] + cmd
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            deadline = time.time() + 10
            while not os.path.ismount(mnt) and time.time() < deadline and visible:
                time.sleep(0.05)
            assert os.path.ismount(mnt) == visible
            assert ("single" in os.listdir(mnt)) == visible
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(20)
            if os.path.ismount(mnt):
                umount(str(mnt))


def test_log_prefixes_follow_where_stderr_goes(models, tmp_path):
    """<N> level prefixes only when stderr is the journal (JOURNAL_STREAM names
    it), plain 'qstorefs: error: ...' otherwise."""
    for journal in (True, False):
        log = tmp_path / f"log-{journal}"
        mnt = tmp_path / f"mnt-{journal}"
        mnt.mkdir()
        with open(log, "wb") as out:
            st = os.fstat(out.fileno())
            env = dict(os.environ)
            env.pop("JOURNAL_STREAM", None)
            if journal:
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            p = subprocess.Popen([QSTOREFS, "-f", models["_back"], str(mnt)], stdout=out, stderr=out, env=env)
            try:
                assert wait_mounted(str(mnt))
                os.listdir(mnt)
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
        text = log.read_text()
        added = [l for l in text.splitlines() if "container added" in l]
        assert added, text
        assert all(l.startswith("<6>qstorefs: ") == journal for l in added), text
        assert all(l.startswith("qstorefs: ") != journal for l in added), text


@needs_root
def test_backgrounded_daemon_logs_to_syslog(models, tmp_path):
    """mount -t / fstab / a plain start put the daemon in the background with
    stderr on /dev/null: its lines must reach syslog (/dev/log)."""
    import socket
    if os.path.exists("/dev/log"):
        pytest.skip("/dev/log belongs to this host's syslog: not replaced by a test")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    sock.settimeout(1)
    mnt, back = tmp_path / "mnt", tmp_path / "back"
    mnt.mkdir()
    back.mkdir()
    shutil.copy(os.path.join(models["_back"], "half.qst"), back / "a.qst")
    try:
        r = subprocess.run([QSTOREFS, str(back), str(mnt)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert wait_mounted(str(mnt))
        shutil.copy(back / "a.qst", back / ".b.tmp")
        os.rename(back / ".b.tmp", back / "b.qst")   # an event after the daemon went to the background
        got = []
        deadline = time.time() + 10
        while not any("container added" in g for g in got) and time.time() < deadline:
            # the daemon's watcher may start after the rename on a loaded
            # machine: a listing of the root rescans (README), logging the same
            os.listdir(mnt)
            try:
                got.append(sock.recv(65536).decode(errors="replace"))
            except TimeoutError:
                pass
        assert any("qstorefs[" in g and "container added" in g for g in got), got
        assert any(g.startswith("<30>") for g in got), got   # LOG_DAEMON | LOG_INFO
    finally:
        umount(str(mnt))
        sock.close()
        os.unlink("/dev/log")
