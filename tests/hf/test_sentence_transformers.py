"""sentence-transformers pointed at the mount, out of the box: the real
all-MiniLM-L6-v2 as published (F32, modules.json, pooling) encodes from its
high-precision directory exactly as from the original, and from its INT8
directory close to it.  sentence-transformers 6 calls the model's forward
itself, so this needs the INT8 view's run_compressed: false (FORMAT.md
section 5): with compressed modules it failed with "self and mat2 must have
the same dtype"."""
import os

import torch
from sentence_transformers import SentenceTransformer

from conftest import MINILM  # tests/hf/conftest.py

SENTENCES = ["The cat sits on the mat.", "A model host serves many precisions from one container.",
             "Lossless means byte for byte.", "Wie spät ist es?", "rsync sends nothing when nothing changed."]


def embed(path):
    return SentenceTransformer(path, device="cpu").encode(SENTENCES, convert_to_tensor=True)


def test_high_precision_directory_gives_the_same_embeddings(hf):
    assert torch.equal(embed(MINILM), embed(hf["mount"].path("minilm-st", "fp32")))


def test_int8_directory_encodes_out_of_the_box(hf):
    ref, q = embed(MINILM), embed(hf["mount"].path("minilm-st", "int8"))
    cos = torch.nn.functional.cosine_similarity(ref, q)
    print(f"MiniLM INT8 view, sentence-transformers: cosine to the original min {cos.min():.5f}")
    assert cos.min() >= 0.998, cos.tolist()
