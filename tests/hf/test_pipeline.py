"""A transformers pipeline on a generated model (genmodel --words: the
demo's model, with a tokenizer a pipeline runs with) through the mount: the
high view generates exactly what the source directory does, the INT8 view
loads through compressed-tensors and generates too."""
import os
import subprocess

import transformers

from conftest import fs  # tests/hf/conftest.py


def generate(path):
    p = transformers.pipeline("text-generation", model=path, device="cpu")
    return p("The cat sat on the mat.", max_new_tokens=8, do_sample=False)[0]["generated_text"]


def test_text_generation_pipeline_on_both_views(tmp_path):
    src, back = tmp_path / "m", tmp_path / "back"
    back.mkdir()
    subprocess.run([fs.GENMODEL, str(src), "--mb", "3", "--hidden", "128", "--vocab", "512", "--shards", "2",
                    "--words"], check=True, capture_output=True)
    fs.pack(str(src), str(back / "demo.qst"))
    m = fs.Mount(str(back))
    try:
        ref = generate(str(src))
        assert ref.startswith("The cat sat on the mat.") and len(ref) > len("The cat sat on the mat.")
        assert generate(m.path("demo", "bf16")) == ref
        q = generate(m.path("demo", "int8"))
        assert q.startswith("The cat sat on the mat.") and len(q) > len("The cat sat on the mat."), q
        assert os.path.exists(m.path("demo", "int8", "tokenizer_config.json"))
    finally:
        m.close()
