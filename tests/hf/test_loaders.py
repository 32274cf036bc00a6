"""HuggingFace loaders pointed at the mount: from_pretrained on the high
precision directory is bit-identical to the original, the INT8 directory
loads through compressed-tensors and stays close, safe_open works on both
single-file views with both backends, and the quantised set is exactly the
Linear modules not ignored."""
import json
import os

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import MODELS, run  # tests/hf/conftest.py

REL_ERR = {}


def load(cls, path):
    return getattr(transformers, cls).from_pretrained(path)


@pytest.mark.parametrize("name", list(MODELS))
def test_high_precision_is_bit_identical(hf, name):
    cls, d = MODELS[name]
    ref = run(load(cls, os.path.join(hf["src"], name)), name)
    mine = run(load(cls, hf["mount"].path(name, d)), name)
    assert torch.equal(ref, mine)


@pytest.mark.parametrize("name", list(MODELS))
def test_int8_loads_through_compressed_tensors(hf, name):
    cls, _ = MODELS[name]
    model, info = getattr(transformers, cls).from_pretrained(hf["mount"].path(name, "int8"), output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    cfg = json.load(open(hf["mount"].path(name, "int8", "config.json")))
    assert cfg["quantization_config"]["quant_method"] == "compressed-tensors"
    ref = run(load(cls, os.path.join(hf["src"], name)), name)
    out = run(model, name)
    rel = ((out - ref).norm() / ref.norm()).item()
    REL_ERR[name] = rel
    print(f"\n{name}: INT8 output relative error {rel:.4f}")
    assert rel < 0.08, rel


@pytest.mark.parametrize("name", list(MODELS))
def test_quantised_set_is_the_linear_modules_not_ignored(hf, name):
    cls, _ = MODELS[name]
    cfg = transformers.AutoConfig.from_pretrained(os.path.join(hf["src"], name))
    with torch.device("meta"):
        model = getattr(transformers, cls).from_config(cfg)
    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    qc = json.load(open(hf["mount"].path(name, "int8", "config.json")))["quantization_config"]
    scales = set()
    for f in os.listdir(hf["mount"].path(name, "int8")):
        if f.endswith(".safetensors"):
            with safe_open(hf["mount"].path(name, "int8", f), "pt") as st:
                scales |= {k[:-len(".weight_scale")] for k in st.keys() if k.endswith(".weight_scale")}
    prefix = getattr(model, "base_model_prefix", "") + "."
    norm = {s[len(prefix):] if s.startswith(prefix) and s[len(prefix):] in linear else s for s in scales}
    assert norm == linear - set(qc["ignore"]), (sorted(linear - set(qc["ignore"]) - norm), sorted(norm - linear))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("backend", ["mmap", "pread"])
def test_safe_open_single_file_views(hf, name, backend):
    _, d = MODELS[name]
    m = hf["mount"]
    for single in (f"model-{d}.safetensors", "model-int8.safetensors"):
        with safe_open(m.path(name, single), "pt", backend=backend) as f:
            keys = list(f.keys())
            assert keys
            for k in keys[:: max(1, len(keys) // 12)]:
                f.get_tensor(k)


@pytest.mark.parametrize("name", list(MODELS))
def test_int8_dequantises_within_half_a_step(hf, name):
    _, d = MODELS[name]
    high = load_file(hf["mount"].path(name, f"model-{d}.safetensors"))
    low = load_file(hf["mount"].path(name, "model-int8.safetensors"))
    checked = 0
    for k, q in low.items():
        if q.dtype != torch.int8 or k + "_scale" not in low:
            continue
        s = low[k + "_scale"].float()
        w = high[k].float()
        err = (w - q.float() * s).abs()
        assert bool((err <= 0.5 * s * (1 + 1e-6) + 1e-30).all()), (k, float((err / s).max()))
        checked += 1
    assert checked > 0


def test_report_rel_err(hf):
    """Writes the per-model INT8 error figures for the README table."""
    out = os.environ.get("QS_HF_REPORT")
    if out and REL_ERR:
        with open(out, "w") as f:
            json.dump(REL_ERR, f, indent=1)
