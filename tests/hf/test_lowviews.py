"""The lower views (int2..int7, FORMAT.md section 7) through a mount with
lower_views=all: transformers + compressed-tensors load each of the real
all-MiniLM-L6-v2 and of a sharded tiny Llama with no missing or unexpected
keys; every packed code and scale is the format's rule applied to the INT8
view (checked here with torch, an implementation of its own); every file
passes safetensors' reader; `qstore unpack --precision intN` gives the
mount's bytes; errors shrink with the width and int4 derived from the INT8
codes is as close to the model as int4 computed from the floats."""
import json
import os
import subprocess
import sys

import pytest
import torch
import transformers
from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fs"))
import qsmount as fs  # noqa: E402

from conftest import MODELS, run  # noqa: E402  (tests/hf/conftest.py)

WIDTHS = [2, 3, 4, 5, 6, 7]
LOADED = ["minilm-bf16", "llama-sharded", "llama-tied"]
REPORT = {}


@pytest.fixture(scope="module")
def low(hf):
    m = fs.Mount(hf["mount"].back, opts=["lower_views=all"])
    try:
        yield m
    finally:
        m.close()


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def ref_codes(q8, n):
    """The rule, in float64 (exact here): int4 per group of 128, others per channel."""
    q = q8.to(torch.float64)
    if n == 4:
        g = q.reshape(q.shape[0], -1, 128)
        m = g.abs().amax(-1, keepdim=True)
        c = torch.where(m > 0, torch.round(7 * g / m.clamp(min=1)), torch.zeros_like(g))
        return c.reshape(q.shape).to(torch.int8), m.squeeze(-1)
    c = torch.round(q / 2 ** (8 - n)).clamp(-2 ** (n - 1), 2 ** (n - 1) - 1)
    return c.to(torch.int8), None


def ref_scales(s8, m, n):
    s = s8.to(torch.float32)
    if n == 4:
        return ((s * m.to(torch.float32)) / 7).to(s8.dtype)   # binary32 steps, then RNE to the dtype
    return (s * 2 ** (8 - n)).to(s8.dtype)


@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("name", LOADED)
def test_loads_through_compressed_tensors(hf, low, name, n):
    cls, d = MODELS[name]
    path = low.path(name, f"int{n}")
    cfg = json.load(open(os.path.join(path, "config.json")))["quantization_config"]
    assert cfg["format"] == "pack-quantized"
    assert cfg["config_groups"]["group_0"]["weights"]["num_bits"] == n
    model, info = getattr(transformers, cls).from_pretrained(path, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    ref = run(getattr(transformers, cls).from_pretrained(os.path.join(hf["src"], name)), name)
    REPORT.setdefault(name, {})[f"int{n}"] = rel(run(model, name), ref)


def test_errors_shrink_with_the_width():
    for name, errs in REPORT.items():
        per_channel = [errs[f"int{n}"] for n in (2, 3, 5, 6, 7) if f"int{n}" in errs]
        assert per_channel == sorted(per_channel, reverse=True), (name, errs)
        assert errs.get("int4", 0) < 0.5, (name, errs)


@pytest.mark.parametrize("n", WIDTHS)
@pytest.mark.parametrize("name", ["minilm-bf16", "minilm-fp16", "llama-sharded"])
def test_codes_and_scales_follow_the_rule(low, name, n):
    int8 = load_file(low.path(name, "model-int8.safetensors"))
    high = load_file(low.path(name, f"model-{MODELS[name][1]}.safetensors"))
    mine = load_file(low.path(name, f"model-int{n}.safetensors"))
    packed = 0
    for k, q8 in int8.items():
        if q8.dtype != torch.int8:
            if not k.endswith("_scale"):
                assert torch.equal(mine[k], q8), k
            continue
        s8 = int8[k + "_scale"]
        if k + "_packed" not in mine:   # left in float: only when the rule cannot apply
            assert n == 4 and q8.shape[1] % 128, k
            assert torch.equal(mine[k], high[k]) and k + "_scale" not in mine
            continue
        assert mine[k + "_shape"].tolist() == list(q8.shape)
        codes = unpack_from_int32(mine[k + "_packed"], n, q8.shape)
        want, m = ref_codes(q8, n)
        assert torch.equal(codes, want), k
        assert torch.equal(mine[k + "_scale"], ref_scales(s8, m, n)), k
        packed += 1
    assert packed > 0


@pytest.mark.parametrize("name", ["llama-sharded", "minilm-st"])
def test_unpack_is_the_mount(hf, low, tmp_path, name):
    for n in (4, 3):
        out = tmp_path / f"{name}-int{n}"
        subprocess.run([fs.QSTORE, "unpack", os.path.join(hf["mount"].back, f"{name}.qst"), "--precision",
                        f"int{n}", "-o", str(out), "-q"], check=True)
        mounted = low.path(name, f"int{n}")
        assert fs.files_under(str(out)) == fs.files_under(mounted)
        for rel_path in fs.files_under(mounted):
            assert fs.sha256(os.path.join(out, rel_path)) == fs.sha256(os.path.join(mounted, rel_path)), rel_path


@pytest.mark.parametrize("backend", ["mmap", "pread"])
@pytest.mark.parametrize("name", list(MODELS) + ["minilm-st"])
def test_every_file_passes_the_reader(low, name, backend):
    for n in WIDTHS:
        files = [low.path(name, f"model-int{n}.safetensors")]
        files += [os.path.join(low.path(name, f"int{n}"), f) for f in os.listdir(low.path(name, f"int{n}"))
                  if f.endswith(".safetensors")]
        for path in files:
            with safe_open(path, "pt", backend=backend) as f:
                for key in f.keys():
                    f.get_tensor(key)


def direct_int4(w):
    """int4 with groups of 128 computed from the floats (the usual recipe)."""
    g = w.float().reshape(w.shape[0], -1, 128)
    s = (g.abs().amax(-1, keepdim=True) / 7).clamp(min=1e-30)
    return (torch.round(g / s).clamp(-8, 7) * s).reshape(w.shape).to(w.dtype)


def test_int4_from_int8_is_as_good_as_from_the_floats(hf, low):
    """Per quantised weight, and on the model's output: the int4 view against
    int4 computed from the BF16 weights directly."""
    for name in ("minilm-bf16", "llama-sharded"):
        cls, d = MODELS[name]
        src = os.path.join(hf["src"], name)
        ref_model = getattr(transformers, cls).from_pretrained(src)
        ref = run(ref_model, name)
        direct = getattr(transformers, cls).from_pretrained(src)
        mine = getattr(transformers, cls).from_pretrained(low.path(name, "int4"))
        sd, md = direct.state_dict(), mine.state_dict()
        we_d, we_m, cnt = 0.0, 0.0, 0
        with torch.no_grad():
            for k, w in ref_model.state_dict().items():
                if w.ndim == 2 and not torch.equal(md[k], w) and w.shape[1] % 128 == 0:
                    sd[k].copy_(direct_int4(w))
                    we_d += rel(sd[k].float(), w.float())
                    we_m += rel(md[k].float(), w.float())
                    cnt += 1
        assert cnt > 0
        out_d, out_m = rel(run(direct, name), ref), rel(run(mine, name), ref)
        REPORT.setdefault(name, {}).update({"int4_direct": out_d, "int4_weights": we_m / cnt,
                                            "int4_direct_weights": we_d / cnt})
        assert we_m / cnt <= 1.05 * we_d / cnt, (name, we_m / cnt, we_d / cnt)
        assert out_m <= 1.25 * out_d + 1e-3, (name, out_m, out_d)


@pytest.mark.parametrize("n", WIDTHS + [8])
def test_minilm_embeddings(low, n):
    from sentence_transformers import SentenceTransformer
    texts = ["a sentence about cats", "the stock market fell today", "one container per model",
             "rANS decodes eight states at a time"]
    ref = SentenceTransformer(fs.os.environ.get("QS_MINILM", os.path.join(fs.BUILD, "minilm")), device="cpu")
    mine = SentenceTransformer(low.path("minilm-st", f"int{n}"), device="cpu")
    cos = torch.nn.functional.cosine_similarity(ref.encode(texts, convert_to_tensor=True),
                                                mine.encode(texts, convert_to_tensor=True)).mean().item()
    REPORT.setdefault("minilm-st", {})[f"cosine_int{n}"] = cos
    assert cos >= {2: 0.0, 3: 0.5, 4: 0.9, 5: 0.95, 6: 0.98, 7: 0.99, 8: 0.998}[n], cos


def test_report():
    """Writes the figures for README's table (QS_LOW_REPORT names the file)."""
    out = os.environ.get("QS_LOW_REPORT")
    if out and REPORT:
        with open(out, "w") as f:
            json.dump(REPORT, f, indent=1)
