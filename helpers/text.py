"""Text for lessons 08 and 09: the embedded sentences, a tokenizer, and batches with padding.

- `load_sentences`: the 3,000 UCI sentences embedded in data/samples/sentiment/ (checked against
  data/samples/SHA256SUMS first), as `Sentence(source, label, text)` rows.
- `drop_duplicates`, `stratified_split`: clean, then split keeping each (source, label) group's share.
- `SentenceDataset`: lesson 01's map-style Dataset, over sentences and a tokenizer.
- `train_tokenizer`: a byte-pair-encoding tokenizer trained with Hugging Face `tokenizers`, with
  the special tokens [PAD] = 0, [UNK] = 1 and [CLS] = 2, and [CLS] put in front of every sentence.
- `collate`, `bucket_batches`: dynamic padding with an attention mask, and batches of similar length.
- `LEXICON` and `lexicon_predict`: a baseline that counts positive and negative words, no learning.
Lesson 08 builds each of these in the open before it uses the version here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from helpers import config
from helpers.data import DataError, verify_samples

SENTENCES = "sentiment/sentences.tsv"  # under data/samples
SOURCES = ("amazon", "imdb", "yelp")
PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
WORD = re.compile(r"\w+|[^\w\s]+")  # a run of letters and digits, or a run of punctuation


class Sentence(NamedTuple):
    source: str
    label: int
    text: str


def load_sentences() -> list[Sentence]:
    """The embedded sentences, in file order, after checking the file's SHA-256."""
    verify_samples("sentiment/")
    path = config.samples_root() / SENTENCES
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != "source\tlabel\tsentence":
        raise DataError(f"{path} line 1: expected the header 'source<TAB>label<TAB>sentence', found {lines[:1]!r}")
    sentences = []
    for line_no, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] not in SOURCES or fields[1] not in ("0", "1") or not fields[2].strip():
            raise DataError(f"{path} line {line_no}: expected a source in {SOURCES}, a label 0 or 1 and a sentence, found {line!r}")
        sentences.append(Sentence(fields[0], int(fields[1]), fields[2]))
    return sentences


def words_of(text: str) -> list[str]:
    """Lower-cased words and punctuation runs: 'Great phone!!' -> ['great', 'phone', '!!']."""
    return WORD.findall(text.lower())


def drop_duplicates(sentences: Sequence[Sentence]) -> tuple[list[Sentence], list[Sentence]]:
    """(kept, dropped): a sentence whose lower-cased text came before is dropped, whatever its source."""
    seen, kept, dropped = set(), [], []
    for sentence in sentences:
        key = sentence.text.lower()
        (dropped if key in seen else kept).append(sentence)
        seen.add(key)
    return kept, dropped


def stratified_split(sentences: Sequence[Sentence], fractions: Sequence[float], seed: int = 0) -> list[list[int]]:
    """Indices for each part (e.g. fractions (0.7, 0.15, 0.15)), each (source, label) group split alike.

    Within a group of n sentences, part k gets round(fraction_k * n) of them (the first part takes
    what rounding leaves), drawn with a generator seeded by `seed`. Each part's indices are sorted.
    """
    if abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions {fractions} must be non-negative and add up to 1")
    generator = torch.Generator().manual_seed(seed)
    groups: dict[tuple[str, int], list[int]] = {}
    for i, sentence in enumerate(sentences):
        groups.setdefault((sentence.source, sentence.label), []).append(i)
    parts: list[list[int]] = [[] for _ in fractions]
    for key in sorted(groups):
        members = torch.tensor(groups[key])[torch.randperm(len(groups[key]), generator=generator)].tolist()
        sizes = [round(f * len(members)) for f in fractions[1:]]
        sizes.insert(0, len(members) - sum(sizes))
        start = 0
        for part, size in zip(parts, sizes):
            part += members[start : start + size]
            start += size
    return [sorted(part) for part in parts]


class SentenceDataset(Dataset):
    """(token ids, label) pairs: `encode(text)` turns a sentence into a list of ints."""

    def __init__(self, sentences: Sequence[Sentence], encode: Callable[[str], list[int]]):
        self.sentences, self.encode = list(sentences), encode

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sentence = self.sentences[index]
        return torch.tensor(self.encode(sentence.text), dtype=torch.long), sentence.label


def train_tokenizer(texts: Sequence[str], vocab_size: int):
    """A lower-casing BPE tokenizer (Hugging Face `tokenizers`) trained on `texts`.

    Words are split as `words_of` splits them; ids 0, 1, 2 are [PAD], [UNK], [CLS]; `encode`
    puts [CLS] in front of every sentence. A character never seen in training becomes [UNK].
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK, CLS], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single=f"{CLS} $A", special_tokens=[(CLS, tokenizer.token_to_id(CLS))])
    return tokenizer


def collate(examples: Sequence[tuple[torch.Tensor, int]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of (ids, label) to the longest in the list: ids, mask (True = a real token), labels."""
    longest = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(examples), longest, dtype=torch.bool)
    for row, (tokens, _) in enumerate(examples):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = True
    return {"ids": ids, "mask": mask, "labels": torch.tensor([label for _, label in examples])}


def bucket_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator | None = None) -> list[list[int]]:
    """Batches of indices of similar length, in a random order (pass as a DataLoader's batch_sampler).

    The indices are shuffled, cut into pools of 50 batches, each pool is sorted by length and cut
    into batches, and the batches are shuffled: every epoch differs, padding stays small.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """The share of a padded batch's positions that are padding, over all the batches."""
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - sum(lengths[i] for batch in batches for i in batch) / padded


# A short list of common English opinion words, written for the course from general usage (not
# chosen by looking at which words predict the labels of these sentences).
LEXICON = {
    +1: """good great excellent amazing awesome best better love loved loves like liked nice perfect wonderful
        fantastic fine happy pleased recommend recommended enjoy enjoyed beautiful brilliant delicious fresh
        friendly fun favorite favourite incredible impressed outstanding superb solid sweet well worth""".split(),
    -1: """bad worst worse terrible awful horrible poor hate hated disappointed disappointing disappointment
        boring waste wasted broken useless fail failed fails problem problems rude slow cold stupid
        annoying mediocre bland ugly wrong sucks sucked junk crap dirty never avoid""".split(),
}
NEGATIONS = {"not", "no", "never", "t"}  # "t": words_of splits "don't" into "don", "'", "t"


def has_negation(text: str) -> bool:
    """True when the text holds a word of NEGATIONS ("not", "no", "never", or the "t" of "n't")."""
    return not NEGATIONS.isdisjoint(words_of(text))


def lexicon_score(text: str) -> int:
    """Positive words minus negative words; a negation among the two words before flips a word's sign."""
    words, score = words_of(text), 0
    for i, word in enumerate(words):
        sign = 1 if word in LEXICON[+1] else -1 if word in LEXICON[-1] else 0
        if sign and NEGATIONS.intersection(words[max(0, i - 2) : i]):
            sign = -sign
        score += sign
    return score


def lexicon_predict(texts: Sequence[str]) -> torch.Tensor:
    """1 where the score is positive, 0 where it is negative, and 1 on a tie (no opinion word found either way)."""
    return torch.tensor([int(lexicon_score(text) >= 0) for text in texts])
