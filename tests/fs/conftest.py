"""Fixtures for the qstorefs tests: generated models packed into a backing
directory, and real FUSE mounts under temporary directories that are always
unmounted, whatever happens in the test."""
import os
import subprocess

import pytest

from qsmount import QSTORE, Mount, gen, pack


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Sources and their containers: single-file BF16, sharded BF16, F16 with
    awkward values.  Returns {name: (source dir, int8 dir from qstore unpack)}.
    The sharded one stores its INT8 codes (QCODE + QRES); the others are packed
    by default, which derives them from the floats wherever that is about as
    small (QDRV): every mount test reads both kinds of chunk."""
    root = tmp_path_factory.mktemp("models")
    back = root / "back"
    back.mkdir()
    specs = {
        "single": ["--mb", "12", "--hidden", "384"],
        "sharded": ["--mb", "10", "--hidden", "256", "--shards", "3"],
        "half": ["--mb", "4", "--hidden", "128", "--dtype", "f16", "--special"],
    }
    out = {}
    for name, args in specs.items():
        src = str(root / name)
        gen(src, *args)
        codes = ["--int8-codes", "stored"] if name == "sharded" else []
        pack(src, str(back / f"{name}.qst"), "--chunk-size", "256K", *codes)
        int8 = str(root / f"{name}.int8")
        subprocess.run([QSTORE, "unpack", str(back / f"{name}.qst"), "-o", int8, "--precision", "int8"],
                       check=True, stdout=subprocess.DEVNULL)
        out[name] = (src, int8)
    out["_back"] = str(back)
    out["_root"] = str(root)
    return out


@pytest.fixture
def mount(models):
    """A fresh mount of the models' backing directory."""
    m = Mount(models["_back"])
    try:
        yield m
    finally:
        m.close()


@pytest.fixture
def mount_factory():
    made = []

    def make(back, opts=(), env=None):
        m = Mount(back, opts, env)
        made.append(m)
        return m
    try:
        yield make
    finally:
        for m in made:
            m.close()
