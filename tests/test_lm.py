"""Lesson 09's language model: the masking rule, the cached pretraining and its lock, both loading paths."""

import copy
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from transformers import AutoModelForMaskedLM, AutoTokenizer

from helpers import lm
from helpers.data import DataError

COURSE = Path(__file__).resolve().parents[1]
TINY = lm.Budget(lines=300, steps=3, batch_size=8, layers=1, hidden=16, heads=2, vocab_size=300, max_length=32, domain_sentences=False)


@pytest.fixture(scope="module")
def tokenizer():
    return lm.train_wordpiece(lm.load_corpus(2000), 500, max_length=TINY.max_length)


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CHECKPOINT_ROOT", str(tmp_path / "checkpoints"))
    return tmp_path / "checkpoints"


def test_corpus_is_checked_and_evenly_sampled():
    lines = lm.load_corpus()
    assert len(lines) == 117_659 and all(": " in line for line in lines[:1000])
    subset = lm.load_corpus(100)
    assert len(subset) == 100 and subset[0] == lines[0] and subset[-1] == lines[99 * len(lines) // 100]
    with pytest.raises(ValueError, match="limit=0"):
        lm.load_corpus(0)


def test_wordpiece_tokenizer_has_berts_special_tokens(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    assert tokenizer.convert_tokens_to_ids(list(lm.SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    ids = tokenizer("The food was not good")["input_ids"]
    assert ids[0] == lm.CLS_ID and ids[-1] == lm.SEP_ID and lm.UNK_ID not in ids
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("an unseen word: zyzzyva")["input_ids"] == tokenizer("an unseen word: zyzzyva")["input_ids"]
    with pytest.raises(ValueError, match="vocab_size=3"):
        lm.train_wordpiece(["a b c"], 3)


def test_wordpiece_pieces_are_numbered_in_sorted_order_and_cut_words_as_the_trainer_did():
    """The trainer numbers its pieces in a different order on each run; lm numbers them in sorted order."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    texts = lm.load_corpus(2000)
    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer, core.pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    core.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=500, special_tokens=list(lm.SPECIAL_TOKENS), show_progress=False))
    sample = texts[::50] + ["unbelievably disappointing, zyzzyva!"]
    before, pieces = [core.encode(t).tokens for t in sample], set(core.get_vocab())
    lm.number_in_order(core)
    vocabulary = core.get_vocab()
    assert set(vocabulary) == pieces, "renumbering must keep every piece"
    ordered = sorted(vocabulary, key=vocabulary.get)
    assert ordered[:5] == list(lm.SPECIAL_TOKENS) and ordered[5:] == sorted(ordered[5:]), "not numbered in sorted order"
    assert [core.encode(t).tokens for t in sample] == before, "renumbering changed a tokenization"
    trained = lm.train_wordpiece(texts, 500).get_vocab()
    assert sorted(trained, key=trained.get)[5:] == sorted(set(trained) - set(lm.SPECIAL_TOKENS)), "train_wordpiece must number in order"


def test_masking_equals_hugging_faces_collator(tokenizer):
    from transformers import DataCollatorForLanguageModeling

    rows = lm.encode(tokenizer, lm.load_corpus(400))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=7, return_tensors="pt")
    theirs = collator([{"input_ids": r} for r in rows])
    ids, mask = lm.pad(rows)
    inputs, labels = lm.mask_tokens(ids, lm.special_mask(ids), lm.MASK_ID, len(tokenizer), torch.Generator().manual_seed(7))
    assert torch.equal(inputs, theirs["input_ids"]) and torch.equal(labels, theirs["labels"])
    assert torch.equal(mask, theirs["attention_mask"])


def test_masking_rates_and_specials(tokenizer):
    rows = lm.encode(tokenizer, lm.load_corpus(3000))
    ids, _ = lm.pad(rows)
    special = lm.special_mask(ids)
    inputs, labels = lm.mask_tokens(ids, special, lm.MASK_ID, len(tokenizer), torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not (chosen & special).any(), "a [CLS], [SEP] or [PAD] was chosen"
    assert torch.equal(labels[chosen], ids[chosen]), "labels must hold the original ids"
    n, k = int((~special).sum()), int(chosen.sum())
    assert abs(k / n - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n)
    as_mask = int((inputs[chosen] == lm.MASK_ID).sum())
    assert abs(as_mask / k - 0.8) < 4 * math.sqrt(0.8 * 0.2 / k)
    changed = int(((inputs != ids) & chosen & (inputs != lm.MASK_ID)).sum())
    assert abs(changed / k - 0.1) < 4 * math.sqrt(0.1 * 0.9 / k) + 0.002  # a random id equal to the original is "unchanged"
    assert torch.equal(inputs[~chosen], ids[~chosen]), "a token not chosen was changed"


def test_masking_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        lm.mask_tokens(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool), 4, 10)
    with pytest.raises(ValueError, match="probability=1.5"):
        lm.mask_tokens(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.bool), 4, 10, probability=1.5)


def test_masked_lm_loss_equals_the_models_own(tokenizer):
    torch.manual_seed(0)
    model = lm.new_bert(TINY, len(tokenizer)).eval()
    ids, mask = lm.pad(lm.encode(tokenizer, lm.load_corpus(20)))
    inputs, labels = lm.mask_tokens(ids, lm.special_mask(ids), lm.MASK_ID, len(tokenizer), torch.Generator().manual_seed(1))
    expected = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
    assert torch.allclose(lm.masked_lm_loss(model, inputs, mask, labels), expected, atol=1e-6)


def test_pretraining_is_cached_and_round_trips(checkpoints):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = lm.course_language_model(TINY, progress=False)
    assert path == checkpoints / TINY.name() and (path / "training.json").is_file()
    record = lm.training_record(path)
    assert record["budget"]["steps"] == 3 and len(record["losses"]) == 3
    assert not list(checkpoints.glob(".*")), "a temporary folder was left behind"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o777 & ~umask, "the model folder kept mkdtemp's private 0700 mode"
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForMaskedLM.from_pretrained(path).eval()
    ids, mask = lm.pad(lm.encode(tokenizer, ["a small dog"]))
    assert model(input_ids=ids, attention_mask=mask).logits.shape == (1, ids.shape[1], len(tokenizer))
    before = (path / "model.safetensors").stat().st_mtime_ns
    assert lm.course_language_model(TINY, progress=False) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == before, "the cached model was trained again"


def test_whole_word_masking_chooses_every_piece_of_a_word_together(tokenizer):
    rows = lm.encode(tokenizer, lm.load_corpus(400))
    ids, _ = lm.pad(rows)
    starts = ~lm.continuation_pieces(tokenizer)[ids]
    special = lm.special_mask(ids)
    assert (~starts & ~special).any(), "the test needs words cut into several pieces"
    inputs, labels = lm.mask_tokens(ids, special, lm.MASK_ID, len(tokenizer), torch.Generator().manual_seed(0), 0.3, starts)
    chosen = labels != -100
    word = starts.long().cumsum(dim=1)
    for row in range(ids.shape[0]):
        for w in word[row][chosen[row]].unique():
            pieces = (word[row] == w) & ~special[row]
            assert chosen[row][pieces].all(), f"row {row}: word {int(w)} masked in part: {tokenizer.convert_ids_to_tokens(ids[row][pieces])}"
    assert not (chosen & special).any()
    words = starts & ~special
    share = chosen[words].float().mean().item()
    se = math.sqrt(0.3 * 0.7 / int(words.sum()))
    assert abs(share - 0.3) < 4 * se, f"{share:.3f} of the words chosen, not 30 %"
    assert chosen[~starts & ~special].float().mean() > 0.2, "continuation pieces must be chosen with their words"
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_the_snapshots_are_the_run_part_of_the_way_and_checksummed(checkpoints):
    """Lesson 09's curve of probe accuracy against steps reads one run's snapshots (steps 0, 1/12, 1/6, 1/3, 2/3)."""
    path = lm.course_language_model(TINY, progress=False)
    files = lm.snapshots(path)
    assert sorted(files) == lm.snapshot_steps(TINY) == [0, 1, 2]
    record = lm.training_record(path)
    assert all(f"snapshots/{f.name}" in record["sha256"] for f in files.values()), "a snapshot not covered by a checksum"
    torch.manual_seed(0)  # what pretrain does before it builds the model
    initial = lm.new_bert(TINY, len(AutoTokenizer.from_pretrained(path))).state_dict()
    weights = {step: lm.load_snapshot(path, step).state_dict() for step in files}
    final = AutoModelForMaskedLM.from_pretrained(path).state_dict()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(weights[0][name], initial[name]), "step 0 must be the initialisation, before any update"
    assert not torch.equal(weights[1][name], weights[0][name]) and not torch.equal(weights[2][name], weights[1][name])
    assert not torch.equal(weights[2][name], final[name]), "the last snapshot must be before the final step"
    with pytest.raises(ValueError, match="no snapshot at step 7"):
        lm.load_snapshot(path, 7)


def test_a_cache_without_snapshots_is_pretrained_again(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CHECKPOINT_ROOT", str(tmp_path))
    path = lm.course_language_model(TINY, progress=False)
    record = json.loads((path / "training.json").read_text(encoding="utf-8"))
    record["sha256"] = {name: digest for name, digest in record["sha256"].items() if not name.startswith("snapshots/")}
    (path / "training.json").write_text(json.dumps(record), encoding="utf-8")
    shutil.rmtree(path / "snapshots")
    assert lm.course_language_model(TINY, progress=False) == path
    assert sorted(lm.snapshots(path)) == [0, 1, 2] and all(f.is_file() for f in lm.snapshots(path).values())
    assert list(tmp_path.glob(f"{TINY.name()}.*")), "the old folder should be moved aside, not deleted"


def test_a_killed_pretrainings_leftovers_are_removed(checkpoints):
    stale = checkpoints / f".{TINY.name()}.abc123"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}", encoding="utf-8")
    path = lm.course_language_model(TINY, progress=False)
    assert not stale.exists() and (path / "training.json").is_file()


def test_a_read_only_checkpoint_root_fails_before_pretraining(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CHECKPOINT_ROOT", str(tmp_path / "a-file" / "checkpoints"))
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    monkeypatch.setattr(lm, "pretrain", lambda *a, **k: pytest.fail("pretrained into an unwritable folder"))
    with pytest.raises(PermissionError, match="a-file"):
        lm.course_language_model(TINY)


def test_two_processes_pretrain_once(checkpoints):
    script = ("import sys; from helpers import lm; "
              f"print('PATH', lm.course_language_model(lm.{TINY!r}, progress=False))")
    env = {**__import__("os").environ, "COURSE_CHECKPOINT_ROOT": str(checkpoints), "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", script], cwd=COURSE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert sum(out.count("Pretraining a ") for out in outputs) == 1, outputs
    assert len({line for out in outputs for line in out.splitlines() if line.startswith("PATH")}) == 1


@pytest.fixture(scope="module")
def tiny_hub_model(tmp_path_factory, tokenizer):
    """A tiny BERT classifier saved with save_pretrained, standing in for a model on the Hub."""
    folder = tmp_path_factory.mktemp("hub") / "tiny-bert"
    torch.manual_seed(0)
    lm.new_bert(TINY, len(tokenizer), num_labels=2).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_hub_path_when_reachable(tiny_hub_model, monkeypatch, capsys, checkpoints):
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asked = []
    monkeypatch.setattr(lm.data, "why_unreachable", lambda url, timeout=None: asked.append(url))
    got = lm.load_language_model(name=str(tiny_hub_model), budget=TINY)
    assert got.hub and got.path == str(tiny_hub_model) and asked and "huggingface.co" in asked[0]
    assert "from the Hugging Face Hub" in capsys.readouterr().out
    assert not checkpoints.exists(), "the course's model was pretrained although the Hub answered"
    assert got.model(**got.tokenizer(["good"], return_tensors="pt")).logits.shape == (1, 2)


def test_a_hub_mirror_in_hf_endpoint_is_the_one_asked():
    """Mainland China reaches the Hub through a mirror (HF_ENDPOINT): asking huggingface.co would wrongly report no network."""
    code = ("from helpers import lm; asked = []; lm.data.why_unreachable = lambda url, timeout=None: asked.append(url); "
            "lm.why_no_hub('google/some-bert'); print(asked)")
    env = {**os.environ, "HF_ENDPOINT": "https://hf-mirror.example.org/", "COURSE_OFFLINE": "0", "HF_HUB_OFFLINE": "0"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=COURSE, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "['https://hf-mirror.example.org/google/some-bert/resolve/main/config.json']" in result.stdout


@pytest.mark.parametrize("setting", ["COURSE_OFFLINE", "HF_HUB_OFFLINE", "unreachable"])
def test_offline_falls_back_to_the_course_model_and_says_why(setting, tiny_hub_model, monkeypatch, capsys, checkpoints):
    monkeypatch.setenv("COURSE_OFFLINE", "1" if setting == "COURSE_OFFLINE" else "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if setting == "HF_HUB_OFFLINE" else "0")

    def unreachable(url, timeout=None):
        if setting != "unreachable":
            pytest.fail("asked the network although offline")
        return "cannot reach huggingface.co: timed out"

    monkeypatch.setattr(lm.data, "why_unreachable", unreachable)
    got = lm.load_language_model(name="google/some-bert", budget=TINY)
    out = capsys.readouterr().out
    assert not got.hub and "google" not in got.source and Path(got.path).parent == checkpoints
    reason = "timed out" if setting == "unreachable" else f"{setting}=1"
    assert "the course's own BERT" in out and "not google/some-bert" in out and reason in out


@pytest.fixture(scope="module")
def tiny_sst2(tmp_path_factory):
    import datasets

    folder = tmp_path_factory.mktemp("sst2")
    rows = {"idx": [0, 1, 2], "sentence": ["a gem of a film", "dull and slow", "not bad at all"], "label": [1, 0, 1]}
    datasets.Dataset.from_dict(rows).save_to_disk(folder / "saved")
    (folder / "rows.jsonl").write_text("".join(json.dumps(dict(zip(rows, values))) + "\n" for values in zip(*rows.values())), encoding="utf-8")
    return folder


def test_sst2_from_a_saved_dataset_and_through_load_dataset(tiny_sst2, monkeypatch):
    assert lm.load_sst2(str(tiny_sst2 / "saved")) == [("a gem of a film", 1), ("dull and slow", 0), ("not bad at all", 1)]
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(lm.data, "why_unreachable", lambda url, timeout=None: None)
    got = lm.load_sst2("json", split="train", data_files=str(tiny_sst2 / "rows.jsonl"))
    assert got == [("a gem of a film", 1), ("dull and slow", 0), ("not bad at all", 1)]


def test_sst2_offline_is_none_and_bad_columns_are_named(tiny_sst2, tmp_path, monkeypatch, capsys):
    import datasets

    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(lm.data, "why_unreachable", lambda *a, **k: pytest.fail("asked the network although offline"))
    assert lm.load_sst2() is None and "COURSE_OFFLINE=1" in capsys.readouterr().out
    datasets.Dataset.from_dict({"text": ["x"], "label": [1]}).save_to_disk(tmp_path / "wrong")
    with pytest.raises(DataError, match=r"no column \['sentence'\]"):
        lm.load_sst2(str(tmp_path / "wrong"))
    datasets.Dataset.from_dict({"sentence": ["x", "y"], "label": [1, 3]}).save_to_disk(tmp_path / "label")
    with pytest.raises(DataError, match="row 1: label 3"):
        lm.load_sst2(str(tmp_path / "label"))


def test_mean_pooled_head_reads_the_mean_of_the_real_tokens_only(tokenizer):
    torch.manual_seed(0)
    model = lm.MeanPooled(lm.new_bert(TINY, len(tokenizer)).bert).eval()
    ids, mask = lm.pad(lm.encode(tokenizer, ["a small dog", "the food was not good at all"]))
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        hidden = model.encoder(input_ids=ids[:1, : int(mask[0].sum())]).last_hidden_state
        alone = model.classifier(hidden.mean(dim=1))
    assert logits.shape == (2, 2)
    # the short sentence, padded in the batch, scores as it does alone: a head that averaged the padding would not
    assert torch.allclose(logits[0], alone[0], atol=1e-5)


def test_fine_tune_trains_only_what_is_trainable_and_counts_its_state(tokenizer):
    torch.manual_seed(0)
    model = lm.new_bert(TINY, len(tokenizer), num_labels=2)
    for p in model.bert.parameters():
        p.requires_grad_(False)
    frozen = {k: v.clone() for k, v in model.bert.state_dict().items()}
    texts, labels = ["good", "bad", "very good", "very bad"] * 4, [1, 0, 1, 0] * 4
    rows = lm.encode(tokenizer, texts)
    result = lm.fine_tune(model, (rows, labels), (rows, labels), lr=1e-2, epochs=2, seed=0, batch_size=4)
    assert all(torch.equal(v, frozen[k]) for k, v in model.bert.state_dict().items())
    head = sum(p.numel() for p in model.classifier.parameters())
    assert result["trainable"] == head
    assert lm.optimizer_state_bytes(result["optimizer"]) >= 2 * 4 * head  # exp_avg and exp_avg_sq, float32
    with pytest.raises(ValueError, match="lr=0"):
        lm.fine_tune(model, (rows, labels), (rows, labels), lr=0, epochs=1, seed=0)
    with pytest.raises(ValueError, match="16 rows but 3 labels"):
        list(lm.batches(rows, labels[:3], 4))


def test_fine_tune_stops_after_patience_epochs_without_improvement_and_keeps_the_best(tokenizer, monkeypatch):
    torch.manual_seed(0)
    model = lm.new_bert(TINY, len(tokenizer), num_labels=2)
    texts, labels = ["good", "bad", "very good", "very bad"] * 4, [1, 0, 1, 0] * 4
    rows = lm.encode(tokenizer, texts)
    scores = iter([0.5, 0.75, 0.6, 0.7, 0.9, 1.0])  # best at epoch 2, then two epochs without improvement
    monkeypatch.setattr(lm, "accuracy", lambda *args: next(scores))
    result = lm.fine_tune(model, (rows, labels), (rows, labels), lr=1e-3, epochs=6, seed=0, batch_size=4, patience=2)
    assert result["curve"] == [0.5, 0.75, 0.6, 0.7] and result["best_epoch"] == 2


def test_fine_tune_decays_weight_matrices_only(tokenizer):
    torch.manual_seed(0)
    model = lm.new_bert(TINY, len(tokenizer), num_labels=2)
    rows = lm.encode(tokenizer, ["good", "bad"])
    result = lm.fine_tune(model, (rows, [1, 0]), (rows, [1, 0]), lr=1e-3, epochs=1, seed=0, batch_size=2, weight_decay=0.1)
    decayed, kept = result["optimizer"].param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.ndim == 2 for p in decayed["params"])
    assert kept["weight_decay"] == 0.0 and all(p.ndim == 1 for p in kept["params"])  # biases and LayerNorm's scales
    assert len(decayed["params"]) + len(kept["params"]) == sum(1 for p in model.parameters() if p.requires_grad)


def test_encode_caps_a_tokenizer_without_a_model_max_length_at_bert_positions(tokenizer):
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.model_max_length = int(1e30)  # what transformers reports for a tokenizer saved without one
    rows = lm.encode(tokenizer, ["word " * 600])
    assert len(rows[0]) == lm.BERT_POSITIONS
