"""`qstore hub-link`: a hub cache entry whose snapshot is a mounted model, so
that loaders given a repository name (from_pretrained("ORG/REPO"),
SentenceTransformer("ORG/REPO")) load it through the mount, offline.  The
revision follows the container: a new version gets a new snapshot."""
import os
import shutil
import subprocess
import sys
import time

import torch
import transformers
from sentence_transformers import SentenceTransformer

from conftest import MINILM, fs  # tests/hf/conftest.py
from test_sentence_transformers import SENTENCES, embed

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")


def hub_link(*args):
    r = subprocess.run([fs.QSTORE, "hub-link", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def revision(cache, repo):
    org, name = repo.split("/")
    with open(os.path.join(cache, f"models--{org}--{name}", "refs", "main")) as f:
        return f.read()


def test_sentence_transformers_by_repository_name(hf, tmp_path):
    cache = str(tmp_path / "hub")
    hub_link(hf["mount"].path("minilm-st"), "qstore-test/minilm", "--cache", cache)
    # a fresh process that knows only the repository name and HF_HUB_CACHE
    code = ("import sys, torch; from sentence_transformers import SentenceTransformer as S;"
            "e = S('qstore-test/minilm', device='cpu').encode(sys.argv[1:], convert_to_tensor=True);"
            "torch.save(e, sys.stdout.buffer)")
    out = tmp_path / "e.pt"
    with open(out, "wb") as f:
        r = subprocess.run([sys.executable, "-c", code, *SENTENCES], stdout=f, stderr=subprocess.PIPE, text=False,
                           env=dict(ENV, HF_HUB_CACHE=cache))
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    assert torch.equal(torch.load(out), embed(MINILM))


def test_from_pretrained_by_repository_name(hf, tmp_path):
    cache = str(tmp_path / "hub")
    hub_link(hf["mount"].path("llama-sharded"), "qstore-test/llama", "--cache", cache)
    a = transformers.AutoModelForCausalLM.from_pretrained("qstore-test/llama", cache_dir=cache)
    b = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(hf["src"], "llama-sharded"))
    for (k, x), (_, y) in zip(sorted(a.state_dict().items()), sorted(b.state_dict().items())):
        assert torch.equal(x, y), k


def test_int8_view_by_repository_name(hf, tmp_path):
    cache = str(tmp_path / "hub")
    hub_link(hf["mount"].path("minilm-st"), "qstore-test/minilm-int8", "--cache", cache, "--precision", "int8")
    q = SentenceTransformer("qstore-test/minilm-int8", cache_folder=cache, device="cpu").encode(
        SENTENCES, convert_to_tensor=True)
    assert torch.nn.functional.cosine_similarity(q, embed(MINILM)).min() >= 0.998


def test_revision_follows_the_container(tmp_path):
    back, cache = tmp_path / "back", str(tmp_path / "hub")
    back.mkdir()
    for seed in ("1", "2"):
        subprocess.run([fs.GENMODEL, str(tmp_path / f"m{seed}"), "--mb", "1", "--hidden", "64", "--seed", seed],
                       check=True, capture_output=True)
    fs.pack(str(tmp_path / "m1"), str(back / "m.qst"))
    m = fs.Mount(str(back))
    try:
        hub_link(m.path("m"), "org/m", "--cache", cache)
        r1 = revision(cache, "org/m")
        hub_link(m.path("m"), "org/m", "--cache", cache)
        assert revision(cache, "org/m") == r1   # same container, same revision
        fs.pack(str(tmp_path / "m2"), str(tmp_path / "new.qst"))
        os.rename(tmp_path / "new.qst", back / "m.qst")   # a new version, as rsync installs it
        deadline = time.time() + 10
        while time.time() < deadline:
            hub_link(m.path("m"), "org/m", "--cache", cache)
            if revision(cache, "org/m") != r1:
                break
            time.sleep(0.1)
        r2 = revision(cache, "org/m")
        assert r2 != r1
        snaps = sorted(os.listdir(os.path.join(cache, "models--org--m", "snapshots")))
        assert snaps == sorted([r1, r2])   # the old snapshot stays, as the hub leaves it
        cfg = os.path.join(cache, "models--org--m", "snapshots", r2, "config.json")
        assert open(cfg).read() == open(tmp_path / "m2" / "config.json").read()
    finally:
        m.close()


def test_bad_arguments(hf, tmp_path):
    for args, rc, msg in ((["/nonexistent/x", "a/b"], 1, "No such file"),
                          ([hf["mount"].path("minilm-st"), "no-slash"], 2, "not a hub repository name"),
                          ([hf["mount"].path("minilm-st"), "a/../b"], 2, "not a hub repository name"),
                          ([str(tmp_path), "a/b"], 1, "not a model directory of a qstorefs mount"),
                          ([hf["mount"].path("minilm-st")], 2, "missing ORG/REPO")):
        r = subprocess.run([fs.QSTORE, "hub-link", *args, "--cache", str(tmp_path / "c")], capture_output=True,
                           text=True)
        assert r.returncode == rc and msg in r.stderr, (args, r.returncode, r.stderr)
    assert not os.path.exists(tmp_path / "c") or not os.listdir(tmp_path / "c")
    shutil.rmtree(tmp_path / "c", ignore_errors=True)


def test_int4_view_by_repository_name(hf, tmp_path):
    """A lower view links like the others (the default mount presents int4);
    its revision follows the INT8 view's and differs from it."""
    cache = str(tmp_path / "hub")
    hub_link(hf["mount"].path("llama-sharded"), "qstore-test/llama-int4", "--cache", cache, "--precision", "int4")
    hub_link(hf["mount"].path("llama-sharded"), "qstore-test/llama-int8", "--cache", cache, "--precision", "int8")
    assert revision(cache, "qstore-test/llama-int4") != revision(cache, "qstore-test/llama-int8")
    a = transformers.AutoModelForCausalLM.from_pretrained("qstore-test/llama-int4", cache_dir=cache)
    b = transformers.AutoModelForCausalLM.from_pretrained(hf["mount"].path("llama-sharded", "int4"))
    for (k, x), (_, y) in zip(sorted(a.state_dict().items()), sorted(b.state_dict().items())):
        assert torch.equal(x, y), k
