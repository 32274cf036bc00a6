"""from_pretrained of the high-precision directory through the mount vs from
the plain directory, cold (page cache dropped, fresh mount) and warm (part of
`make bench`).  usage: hfbench.py BUILD_DIR WORK_DIR"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fs"))
BUILD, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
os.environ["QS_BUILD"] = BUILD
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import qsmount  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

transformers.utils.logging.disable_progress_bar()


def drop_caches():
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def load_time(cls, path):
    """from_pretrained, then one byte of every page of every weight: loaders
    map files lazily, so without touching them little would be read."""
    t0 = time.perf_counter()
    m = getattr(transformers, cls).from_pretrained(path, dtype=torch.bfloat16)
    with torch.no_grad():
        for p in m.parameters():
            p.detach().reshape(-1).view(torch.uint8)[::4096].sum()
    t = time.perf_counter() - t0
    del m
    return t


def main():
    models = [("gen8", "AutoModelForCausalLM", os.path.join(WORK, "gen8"))]
    mini = os.path.join(WORK, "minilm-bf16")
    if os.path.isdir(mini):
        qst = os.path.join(WORK, "back", "minilm-bf16.qst")
        qsmount.pack_once(mini, qst)
        models.append(("minilm-bf16", "AutoModel", mini))
    rows = []
    for name, cls, src in models:
        r = {}
        r["plain cold"] = load_time(cls, src) if drop_caches() else float("nan")
        r["plain warm"] = load_time(cls, src)
        drop_caches()
        m = qsmount.Mount(os.path.join(WORK, "back"), ["cache_size=1G"])
        try:
            r["mount cold"] = load_time(cls, m.path(name, "bf16"))
            r["mount warm"] = load_time(cls, m.path(name, "bf16"))
        finally:
            m.close()
        rows.append((name, r))
    print("\nfrom_pretrained of the BF16 directory + touching every page of the weights (seconds; cold = page cache dropped and a fresh mount)\n")
    print("| model | plain dir, cold | plain dir, warm | mount, cold | mount, warm |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['plain cold']:.2f} | {r['plain warm']:.2f} | {r['mount cold']:.2f} | {r['mount warm']:.2f} |")


main()
