"""helpers.text: the embedded sentences, the split, the tokenizer, padding and the lexicon."""

import shutil
from pathlib import Path

import pytest
import torch

from helpers import data, text

COURSE = Path(__file__).resolve().parents[1]


def test_the_embedded_sentences_are_the_uci_set():
    sentences = text.load_sentences()
    assert len(sentences) == 3000
    for source in text.SOURCES:
        labels = [s.label for s in sentences if s.source == source]
        assert len(labels) == 1000 and sum(labels) == 500
    assert all(s.text == s.text.strip() and "\x96" not in s.text for s in sentences)


def test_a_changed_sentence_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "course"
    shutil.copytree(COURSE / "data" / "samples", copy / "data" / "samples")
    monkeypatch.setenv("COURSE_ROOT", str(copy))
    path = copy / "data" / "samples" / text.SENTENCES
    path.write_text(path.read_text(encoding="utf-8").replace("\t1\tGood case", "\t0\tGood case"), encoding="utf-8")
    with pytest.raises(data.DataError, match="sentences.tsv: checksum mismatch"):
        text.load_sentences()


def test_duplicates_are_dropped_ignoring_case_and_source():
    rows = [text.Sentence("amazon", 1, "Great phone."), text.Sentence("yelp", 1, "great PHONE."), text.Sentence("imdb", 0, "Bad.")]
    kept, dropped = text.drop_duplicates(rows)
    assert kept == [rows[0], rows[2]] and dropped == [rows[1]]
    kept, dropped = text.drop_duplicates(text.load_sentences())
    assert len({s.text.lower() for s in kept}) == len(kept) == 3000 - len(dropped)


def test_split_is_stratified_disjoint_and_reproducible():
    kept, _ = text.drop_duplicates(text.load_sentences())
    parts = text.stratified_split(kept, (0.7, 0.15, 0.15), seed=0)
    assert sorted(i for part in parts for i in part) == list(range(len(kept)))
    assert parts == text.stratified_split(kept, (0.7, 0.15, 0.15), seed=0)
    assert parts != text.stratified_split(kept, (0.7, 0.15, 0.15), seed=1)
    for source in text.SOURCES:
        for label in (0, 1):
            group = sum(1 for s in kept if (s.source, s.label) == (source, label))
            for part, fraction in zip(parts[1:], (0.15, 0.15)):
                assert sum(1 for i in part if (kept[i].source, kept[i].label) == (source, label)) == round(fraction * group)
    with pytest.raises(ValueError, match="add up to 1"):
        text.stratified_split(kept, (0.5, 0.2))


def test_tokenizer_puts_cls_first_and_knows_its_specials():
    tokenizer = text.train_tokenizer(["The food was great!", "The service was slow.", "Great phone, bad battery."] * 5, vocab_size=80)
    assert [tokenizer.token_to_id(t) for t in (text.PAD, text.UNK, text.CLS)] == [0, 1, 2]
    encoding = tokenizer.encode("The food was GREAT")
    assert encoding.tokens[0] == text.CLS and "".join(encoding.tokens[1:]) == "thefoodwasgreat"
    assert tokenizer.encode("Zq").ids[1:] == [1, 1], "characters never seen in training are [UNK]"


def test_collate_pads_to_the_longest_and_masks_the_padding():
    batch = text.collate([(torch.tensor([2, 5, 6]), 1), (torch.tensor([2, 7]), 0)], pad_id=0)
    assert batch["ids"].tolist() == [[2, 5, 6], [2, 7, 0]]
    assert batch["mask"].tolist() == [[True, True, True], [True, True, False]]
    assert batch["labels"].tolist() == [1, 0]


def test_bucketing_covers_every_index_once_and_pads_less():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 60, (1000,), generator=generator).tolist()
    buckets = text.bucket_batches(lengths, 32, generator)
    assert sorted(i for batch in buckets for i in batch) == list(range(1000))
    random_batches = torch.randperm(1000, generator=generator).split(32)
    random_batches = [b.tolist() for b in random_batches]
    assert text.padding_fraction(buckets, lengths) < text.padding_fraction(random_batches, lengths) / 4


def test_lexicon_counts_words_and_flips_after_a_negation():
    assert text.lexicon_score("Great food, friendly staff.") == 2
    assert text.lexicon_score("The food was terrible.") == -1
    assert text.lexicon_score("I didn't like it.") == -1
    assert text.lexicon_score("Not good at all.") == -1
    assert text.lexicon_predict(["Awful.", "Excellent!", "A phone."]).tolist() == [0, 1, 1]


def test_has_negation_finds_not_no_never_and_every_nt_contraction():
    # lesson 09 once split "n't" by hand and missed 35 of 97 negated test sentences: the rule is the lexicon's own
    for negated in ["It wasn't good.", "I don't like it", "Never again!", "Not worth it.", "no flavour", "Won't buy again"]:
        assert text.has_negation(negated), negated
    for plain in ["Great food.", "Nothing here is wrong", "The knot held", "Tea at noon"]:
        assert not text.has_negation(plain), plain
    assert all(text.has_negation(s) == any(w in text.NEGATIONS for w in text.words_of(s)) for s in ["can't stop", "Notably good"])
