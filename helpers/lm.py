"""A small BERT for lesson 09: pretrained by the course on WordNet's glosses, or a real one from the Hub; lesson 10's fine-tuning.

- `load_corpus`: the 117,659 WordNet 3.0 glosses embedded in data/samples/wordnet/ (SHA-256 checked).
- `train_wordpiece`: a WordPiece tokenizer (Hugging Face `tokenizers`) wrapped as a `transformers`
  tokenizer with [PAD] [UNK] [CLS] [SEP] [MASK] = ids 0..4, so `AutoTokenizer.from_pretrained` loads it.
- `mask_tokens`: the masking rule of BERT's masked-language modelling (15 % chosen; of those 80 %
  [MASK], 10 % a random token, 10 % unchanged), draw for draw the same as `DataCollatorForLanguageModeling`.
- `course_language_model`: the course's `BertForMaskedLM`, pretrained once and cached under the
  checkpoint root with `save_pretrained` (a file lock makes two processes train it once).
- `load_language_model`: one call for both paths: a real BERT from the Hugging Face Hub when it can be
  had, otherwise the course's own, both through `from_pretrained`; it says which and why.
- `load_sst2`: the SST-2 sentences through `datasets` when they can be had, otherwise None (said why).
- `encode`, `batches`, `fine_tune`, `optimizer_state_bytes`: lesson 10's fine-tuning arms.
Lesson 09 builds the masking in the open before it uses the version here; lesson 10 prints `fine_tune`'s
source before its arms use it, and lesson 04 built its schedule and AdamW.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from helpers import config, data, text, train
from helpers.data import DataError, verify_samples

CORPUS = "wordnet/glosses.txt.gz"  # under data/samples
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
# Google's BERT-Tiny (Turc et al., 2019, "Well-Read Students Learn Better"; Apache 2.0): the smallest of
# the 24 compact BERTs Google released, and the very shape of the course's own (2 layers, width 128,
# 2 heads), so that both paths cost the same on a laptop CPU and the arms compare like with like.
HUB_MODEL = "google/bert_uncased_L-2_H-128_A-2"
HUB_DATASET = "stanfordnlp/sst2"
NETWORK_TIMEOUT_S = 5
BERT_POSITIONS = 512  # the positions BERT (and MiniLM) learned: no sequence may be longer


# --- The corpus and the tokenizer ----------------------------------------------------------------


def load_corpus(limit: int | None = None) -> list[str]:
    """The WordNet glosses, one per synset, in file order, SHA-256 checked first.

    limit: keep that many, evenly spaced through the file (nouns, verbs, adjectives and adverbs alike).
    """
    verify_samples("wordnet/")
    path = config.samples_root() / CORPUS
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line_no, line in enumerate(lines, start=1):
        if ": " not in line:
            raise DataError(f"{path} line {line_no}: expected 'word: gloss', found {line[:80]!r}")
    if limit is None or limit >= len(lines):
        return lines
    if limit < 1:
        raise ValueError(f"limit={limit}: keep at least one gloss")
    return [lines[i * len(lines) // limit] for i in range(limit)]


def number_in_order(core) -> None:
    """Renumber a trained WordPiece `tokenizers.Tokenizer`: the special tokens 0..4, then every piece in sorted order.

    The trainer numbers its pieces in hash-map order, which changes from run to run (and with the ids, a model's
    initial embedding of each piece). WordPiece cuts a word by the set of pieces alone, so this changes no
    tokenization. It cannot make the set itself reproducible: on tied merge counts the trainer may still choose
    different pieces (huggingface/tokenizers issue #1794), so two trainings on the same text can differ by a few.
    """
    from tokenizers import models

    pieces = sorted(piece for piece in core.get_vocab() if piece not in SPECIAL_TOKENS)
    core.model = models.WordPiece({piece: i for i, piece in enumerate(list(SPECIAL_TOKENS) + pieces)}, unk_token="[UNK]")


def train_wordpiece(texts: Sequence[str], vocab_size: int, max_length: int = 64):
    """A lower-casing WordPiece tokenizer trained on `texts`, as a `transformers.PreTrainedTokenizerFast`.

    `tokenizer(text)` gives [CLS] tokens [SEP]; the five special tokens have ids 0..4.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} leaves no room beside the {len(SPECIAL_TOKENS)} special tokens")
    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False))
    number_in_order(core)
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)]
    )
    core.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, model_max_length=max_length, pad_token="[PAD]", unk_token="[UNK]",
        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )


# --- Masked-language modelling -------------------------------------------------------------------


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int, generator: torch.Generator | None = None,
                probability: float = 0.15, word_starts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) for masked-language modelling of the token ids `ids` (batch, length).

    Each token that is not special (`special` True: [CLS], [SEP], [PAD]) is chosen with `probability`;
    a chosen token becomes [MASK] with probability 0.8, else a random token id below `vocab_size` with
    probability 0.5 (10 % of the chosen), else stays. `labels` holds the original id where chosen and
    -100 (ignored by cross_entropy) elsewhere. The draws are made in the order
    `DataCollatorForLanguageModeling` makes them, so the same seeded generator gives the same result.

    Whole-word masking (`word_starts`, True at a token that begins a word, False at a `##` piece that
    continues one): each word is chosen with `probability`, and all its pieces with it; then 80/10/10 per
    piece, as `DataCollatorForWholeWordMask` does.
    """
    if ids.shape != special.shape:
        raise ValueError(f"ids {tuple(ids.shape)} and special {tuple(special.shape)} must have the same shape")
    if not 0 < probability < 1:
        raise ValueError(f"probability={probability} must be between 0 and 1")
    inputs, labels = ids.clone(), ids.clone()
    if word_starts is None:
        chosen = torch.bernoulli(torch.full(ids.shape, probability).masked_fill(special.bool(), 0.0), generator=generator).bool()
    else:
        chance = torch.full(ids.shape, probability).masked_fill(special.bool() | ~word_starts.bool(), 0.0)
        first = torch.bernoulli(chance, generator=generator).bool()  # drawn at each word's first piece
        word = word_starts.long().cumsum(dim=1)                         # the pieces of a word share its number
        by_word = torch.zeros(ids.shape[0], ids.shape[1] + 1, dtype=torch.bool).scatter(1, word * first, first)
        by_word[:, 0] = False  # index 0 collects the unchosen
        chosen = by_word.gather(1, word) & ~special.bool()
    labels[~chosen] = -100
    to_mask = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[to_mask] = mask_id
    to_random = torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool() & chosen & ~to_mask
    random_ids = torch.randint(vocab_size, ids.shape, dtype=torch.long, generator=generator)
    inputs[to_random] = random_ids[to_random]
    return inputs, labels


def encode(tokenizer, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
    """Token ids of each text, [CLS] ... [SEP], cut to `max_length`.

    By default the tokenizer's own `model_max_length`, capped at BERT's 512 positions: a tokenizer saved
    without one reports about 1e30, which the fast tokenizer cannot take (OverflowError)."""
    max_length = max_length or min(tokenizer.model_max_length, BERT_POSITIONS)
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def pad(rows: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask) of the rows padded to the longest; the mask is 1 at real tokens."""
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), longest, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r, dtype=torch.long), 1
    return ids, mask


def continuation_pieces(tokenizer) -> torch.Tensor:
    """True at each id whose WordPiece continues a word (`##ing`): indexed by ids, False where a word begins."""
    continues = torch.zeros(len(tokenizer), dtype=torch.bool)
    for piece, index in tokenizer.get_vocab().items():
        continues[index] = piece.startswith("##")
    return continues


def special_mask(ids: torch.Tensor) -> torch.Tensor:
    """True at [PAD], [CLS], [SEP] (and the other special ids 0..4): tokens masking never chooses."""
    return ids < len(SPECIAL_TOKENS)


# --- Pretraining, cached -------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """What the course's BERT is pretrained with; the cache folder is named after it."""

    lines: int  # WordNet glosses used (evenly spaced through the file; all 117,659 in full mode)
    steps: int
    batch_size: int = 64
    layers: int = 2
    hidden: int = 128
    heads: int = 2
    vocab_size: int = 8000
    max_length: int = 64
    lr: float = 1e-3
    domain_sentences: bool = True  # also the training split's unlabelled sentences (task-adaptive pretraining)
    dropout: float = 0.1  # BERT's dropout, in the hidden layers and on the attention weights
    mask_probability: float = 0.15  # the share of tokens chosen for prediction (then 80/10/10)
    headwords: bool = True  # keep each gloss's "word: " prefix; False drops it
    whole_words: bool = False  # choose whole words for masking, all their WordPiece pieces together

    def name(self) -> str:
        domain = "+train-sentences" if self.domain_sentences else ""
        name = (f"bert-wordnet{domain}-L{self.layers}-H{self.hidden}-A{self.heads}-v{self.vocab_size}"
                f"-{self.lines}lines-{self.steps}x{self.batch_size}")
        # Settings other than the original defaults are named too, so that no cache is taken for another.
        extras = [f"lr{self.lr:g}" if self.lr != 1e-3 else "",
                  f"drop{self.dropout:g}" if self.dropout != 0.1 else "",
                  f"mask{self.mask_probability:g}" if self.mask_probability != 0.15 else "",
                  "" if self.headwords else "noheadwords",
                  "wholewords" if self.whole_words else ""]
        return "-".join([name] + [e for e in extras if e])


def default_budget() -> Budget:
    """Lesson 09's pretraining, chosen by benchmarks/pretraining_trials.py (its table is in benchmarks/README.md):
    no dropout, 30 % of the tokens masked, glosses without their "word: " prefix, WordPiece 4,000, learning rate 2e-3.
    Fast mode: a third of the glosses, 1,000 steps of 32 (about 35 s on 2 CPU cores); full mode: all of them,
    6,000 steps of 64 (about 5 minutes)."""
    settings = dict(lr=2e-3, vocab_size=4000, dropout=0.0, mask_probability=0.3, headwords=False)
    return config.pick(fast=Budget(lines=40_000, steps=1000, batch_size=32, **settings),
                       full=Budget(lines=117_659, steps=6000, **settings))


def lesson_train_sentences() -> list[str]:
    """The texts of lesson 08's training split (70 % of the de-duplicated sentences, seed 0): never its validation or test."""
    kept, _ = text.drop_duplicates(text.load_sentences())
    train_idx, _, _ = text.stratified_split(kept, (0.7, 0.15, 0.15), seed=0)
    return [kept[i].text for i in train_idx]


def pretraining_texts(budget: Budget) -> list[str]:
    texts = load_corpus(budget.lines)
    if not budget.headwords:
        texts = [gloss.split(": ", 1)[1] for gloss in texts]
    if budget.domain_sentences:
        texts = texts + lesson_train_sentences()
    return texts


_UNSAVED: dict[str, tuple] = {}  # cache folder name -> (model, tokenizer, record) of a pretraining whose save failed


def course_language_model(budget: Budget | None = None, progress: bool = True) -> Path:
    """The folder of the course's pretrained BertForMaskedLM (model, tokenizer, training.json); trained once.

    Under the checkpoint root, named after the budget. A file lock beside it lets one process pretrain
    while any other asking at the same time waits (saying for whom), then loads; the model is written
    to a temporary folder and renamed only when complete, so a crash leaves no half-written model
    behind. training.json records each file's SHA-256, checked whenever the folder is used: a damaged
    one is moved aside and the model pretrained again. A full disk keeps the pretrained model in
    memory: the next call saves it without pretraining again.
    """
    budget = budget or default_budget()
    root = config.checkpoint_root()
    path = root / budget.name()
    if _cache_is_sound(path):
        return path
    # A read-only or full checkpoint root fails now, not after the pretraining.
    train.check_writable(path / "config.json")
    needed = 2 * _bert_bytes(budget) + (4 << 20)  # the weights, room to spare, and the tokenizer's files
    if train.free_bytes(root) < needed:
        raise train.disk_full(root, needed, f"the pretrained BERT {path.name}")
    root.mkdir(parents=True, exist_ok=True)
    with train.exclusive(str(path) + ".lock", f"pretraining the course's BERT {path.name}"):
        if _cache_is_sound(path):  # another process pretrained it while this one waited
            print(f"Another process pretrained {path.name} meanwhile; loading it.")
            return path
        for stale in root.glob(f".{path.name}.*"):  # left by a process killed while pretraining (only the lock's holder writes here)
            print(f"Removing {stale}, left by an interrupted pretraining.")
            shutil.rmtree(stale, ignore_errors=True)
        if path.name in _UNSAVED:
            print(f"Saving the BERT pretrained earlier in this session (its save had failed) to {path}.")
            model, tokenizer, record = _UNSAVED.pop(path.name)
        else:
            model, tokenizer, record = pretrain(budget, progress)
        temporary = Path(tempfile.mkdtemp(dir=root, prefix=f".{path.name}."))
        try:
            model.save_pretrained(temporary)
            tokenizer.save_pretrained(temporary)
            _save_snapshots(record["snapshots"], temporary / "snapshots")
            files = sorted(f for f in temporary.rglob("*") if f.is_file())
            record = {**{k: v for k, v in record.items() if k != "snapshots"}, "snapshot_steps": sorted(record["snapshots"]),
                      "sha256": {f.relative_to(temporary).as_posix(): data.sha256(f) for f in files}}
            (temporary / "training.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o777 & ~umask)  # mkdtemp makes it private (0700); the model folder is an ordinary one
            if path.exists():  # a folder without training.json: an older, interrupted copy
                shutil.rmtree(path)
            os.replace(temporary, path)
        except Exception as error:  # OSError, or safetensors' own error for a full disk
            _UNSAVED[path.name] = (model, tokenizer, record)
            kept = (" Nothing is lost: the pretrained model is kept in memory. Run this cell again once there is room, or after "
                    "os.environ['COURSE_CHECKPOINT_ROOT'] = '<a folder on another disk>', and it is saved without pretraining again.")
            if train.is_disk_full(error) or "No space left" in str(error) or train.free_bytes(root) < needed:
                raise train.disk_full(root, needed, f"the pretrained BERT {path.name}", kept) from error
            raise OSError(f"{path}: the pretrained BERT could not be saved ({error}).{kept}") from error
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        print(f"Saved the pretrained model to {path}; later runs load it from there.")
    return path


def snapshot_steps(budget: Budget) -> list[int]:
    """The steps at which `pretrain` keeps a copy of the weights: the initialisation, 1/12, 1/6, 1/3 and 2/3 of the way.

    With the final model they give a curve from one run. The learning rate at a snapshot has not decayed to
    zero yet, so a snapshot is not what a shorter run would have ended with; it is this run, part of the way.
    """
    return sorted({budget.steps * k // 12 for k in (0, 1, 2, 4, 8)})


def _save_snapshots(snapshots: dict[int, dict], folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir()
    for step, state in snapshots.items():
        save_file(state, folder / f"step-{step:06d}.safetensors")


def snapshots(path: str | Path) -> dict[int, Path]:
    """The weight snapshots of the pretraining cached at `path` (course_language_model's folder): step -> file."""
    record = training_record(path)
    return {step: Path(path) / "snapshots" / f"step-{step:06d}.safetensors" for step in record.get("snapshot_steps", [])}


def load_snapshot(path: str | Path, step: int) -> nn.Module:
    """The BertForMaskedLM cached at `path` as it was after `step` steps (in evaluation mode)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForMaskedLM

    files = snapshots(path)
    if step not in files:
        raise ValueError(f"{path}: no snapshot at step {step}; the snapshots are at steps {sorted(files)}")
    model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(path))
    model.load_state_dict(load_file(files[step]))
    return model.eval()


def _bert_bytes(budget: Budget) -> int:
    """The size of the budget's BertForMaskedLM in float32: what its model.safetensors holds (the tied decoder once)."""
    return sum(p.numel() * p.element_size() for p in new_bert(budget, budget.vocab_size).parameters())


def _cache_is_sound(path: Path) -> bool:
    """True when the cached model folder is complete and every file matches the SHA-256 in its training.json.

    A damaged folder is moved aside (never deleted) and False returned, so the model is pretrained again;
    in a read-only checkpoint root it is named and left, with what to do.
    """
    record_file = path / "training.json"
    if not record_file.is_file():
        return False
    try:
        sums = json.loads(record_file.read_text(encoding="utf-8")).get("sha256")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        problem = f"its training.json is unreadable ({error})"
    else:
        if sums is None:
            print(f"{path}: pretrained by an older version of the course, without checksums: used unverified "
                  "(delete the folder to pretrain it again with them)")
            return True
        problem = next((f"{name} is missing" if not (path / name).is_file() else f"{name} does not match its SHA-256"
                        for name, digest in sums.items()
                        if not (path / name).is_file() or data.sha256(path / name) != digest), None)
        if problem is None and not any(name.startswith("snapshots/") for name in sums):
            problem = "it has no snapshots/ (pretrained by an older version of the course, before lesson 09 plotted them)"
        if problem is None:
            return True
    blocked = config.why_not_writable(path.parent)
    if blocked is not None:
        raise DataError(f"{path}: damaged ({problem}), and it cannot be moved aside ({blocked}): ask whoever prepared it "
                        "to delete it, or set COURSE_CHECKPOINT_ROOT to a folder of your own")
    train.set_aside(path, problem)
    return False


def new_bert(budget: Budget, vocab_size: int, num_labels: int | None = None) -> nn.Module:
    """A randomly initialised BertForMaskedLM (num_labels None) or BertForSequenceClassification of the budget's shape."""
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    settings = dict(vocab_size=vocab_size, hidden_size=budget.hidden, num_hidden_layers=budget.layers,
                    num_attention_heads=budget.heads, intermediate_size=4 * budget.hidden,
                    max_position_embeddings=budget.max_length, pad_token_id=PAD_ID,
                    hidden_dropout_prob=budget.dropout, attention_probs_dropout_prob=budget.dropout)
    if num_labels is None:
        return BertForMaskedLM(BertConfig(**settings))
    return BertForSequenceClassification(BertConfig(num_labels=num_labels, **settings))


def masked_lm_loss(model: nn.Module, inputs: torch.Tensor, attention: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BertForMaskedLM's loss, with its vocabulary-wide output layer run only at the chosen positions.

    Equal to `model(input_ids=inputs, attention_mask=attention, labels=labels).loss`, which scores every
    position and then ignores the 85 % whose label is -100: with a vocabulary of thousands, that output
    layer is most of the work.
    """
    hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    chosen = labels != -100
    return nn.functional.cross_entropy(model.cls(hidden[chosen]), labels[chosen])


def pretrain(budget: Budget, progress: bool = True, generator_seed: int = 0):
    """Train a tokenizer and a BertForMaskedLM on the corpus: AdamW, 10 % warm-up then linear decay, clipping at 1.

    Returns (model, tokenizer, record); record holds the budget, the loss curve, the time taken and the
    weights at `snapshot_steps(budget)` ("snapshots": step -> state dict).
    """
    from transformers import get_linear_schedule_with_warmup

    start = time.perf_counter()
    texts = pretraining_texts(budget)
    tokenizer = train_wordpiece(texts, budget.vocab_size, budget.max_length)
    rows = encode(tokenizer, texts)
    torch.manual_seed(generator_seed)
    generator = torch.Generator().manual_seed(generator_seed)
    model = new_bert(budget, len(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, budget.steps // 10, budget.steps)
    print(f"Pretraining a {budget.layers}-layer BERT (width {budget.hidden}, {sum(p.numel() for p in model.parameters()):,} "
          f"parameters) on {len(texts):,} texts for {budget.steps} steps of {budget.batch_size}, once; it is then cached.")
    losses, step, lengths = [], 0, [len(r) for r in rows]
    continues = continuation_pieces(tokenizer) if budget.whole_words else None
    keep_at, kept = set(snapshot_steps(budget)), {}

    def keep():
        if step in keep_at:  # clones: the tied input and output embeddings are saved as two tensors
            kept[step] = {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}

    keep()
    model.train()
    while step < budget.steps:
        for batch in text.bucket_batches(lengths, budget.batch_size, generator):
            ids, attention = pad([rows[i] for i in batch])
            starts = None if continues is None else ~continues[ids]
            inputs, labels = mask_tokens(ids, special_mask(ids), MASK_ID, len(tokenizer), generator, budget.mask_probability, starts)
            loss = masked_lm_loss(model, inputs, attention, labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
            keep()
            if progress and step % max(1, budget.steps // 10) == 0:
                print(f"  step {step:5d}/{budget.steps}: loss {sum(losses[-50:]) / len(losses[-50:]):.2f} "
                      f"({time.perf_counter() - start:.0f} s)")
            if step == budget.steps:
                break
    seconds = time.perf_counter() - start
    record = {"budget": asdict(budget), "texts": len(texts), "losses": losses, "seconds": seconds, "snapshots": kept,
              "threads": torch.get_num_threads(), "corpus": f"WordNet 3.0 glosses (data/samples/{CORPUS})"}
    return model.eval(), tokenizer, record


def training_record(path: str | Path) -> dict:
    return json.loads((Path(path) / "training.json").read_text(encoding="utf-8"))


# --- One call for both paths ---------------------------------------------------------------------


@dataclass
class LanguageModel:
    model: nn.Module  # an AutoModelForSequenceClassification
    tokenizer: object
    source: str  # in words
    hub: bool
    path: str  # the name on the Hub, or the local folder


def hub_offline() -> bool:
    return config.offline() or config.env_flag("HF_HUB_OFFLINE")


def hub_endpoint() -> str:
    """The Hub that `huggingface_hub` downloads from: https://huggingface.co, or a mirror named by HF_ENDPOINT
    (read when huggingface_hub is first imported, so set it before starting Jupyter), e.g. https://hf-mirror.com."""
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def why_no_hub(name: str) -> str | None:
    """None when the Hub answers for `name` (COURSE_OFFLINE and HF_HUB_OFFLINE respected); else why not, in words."""
    if config.offline():
        return "COURSE_OFFLINE=1"
    if config.env_flag("HF_HUB_OFFLINE"):
        return "HF_HUB_OFFLINE=1"
    return data.why_unreachable(f"{hub_endpoint()}/{name}/resolve/main/config.json", timeout=NETWORK_TIMEOUT_S)


def load_language_model(num_labels: int = 2, name: str = HUB_MODEL, budget: Budget | None = None) -> LanguageModel:
    """`name` from the Hugging Face Hub when reachable, else the course's own pretrained BERT; both via from_pretrained."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    why = why_no_hub(name)
    if why is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
            model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=num_labels)
        except OSError as error:  # no connection, a timeout, a missing repository
            why = f"loading it failed: {error}"
        else:
            print(f"Language model: {name} from the Hugging Face Hub (reachable), with a new {num_labels}-class head.")
            return LanguageModel(model, tokenizer, f"{name} (Hugging Face Hub)", True, name)
    path = course_language_model(budget)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels)
    record = training_record(path)
    print(f"Language model: the course's own BERT from {path}, not {name} ({why}): pretrained by the course on "
          f"{record['texts']:,} texts for {record['budget']['steps']} steps, with a new {num_labels}-class head.")
    return LanguageModel(model, tokenizer, f"the course's own BERT, pretrained on WordNet glosses ({path.name})", False, str(path))


def load_sst2(name: str = HUB_DATASET, split: str = "validation", **load_kwargs) -> list[tuple[str, int]] | None:
    """SST-2's (sentence, label) pairs through `datasets` when it can be had; None (and why, printed) otherwise.

    `name` may also be a folder written by `Dataset.save_to_disk`, or a `load_dataset` builder such as
    "json" with `data_files=...` in `load_kwargs`.
    """
    import datasets

    if Path(name).is_dir():
        table = datasets.load_from_disk(name)
    else:
        why = "COURSE_OFFLINE=1" if config.offline() else ("HF_HUB_OFFLINE=1" if config.env_flag("HF_HUB_OFFLINE") else None)
        why = why or data.why_unreachable(f"{hub_endpoint()}/datasets/{name}/resolve/main/README.md", timeout=NETWORK_TIMEOUT_S)
        if why is not None:
            print(f"No {name} ({why}): the lesson uses its own sentences only.")
            return None
        try:
            table = datasets.load_dataset(name, split=split, **load_kwargs)
        except (OSError, ConnectionError) as error:
            print(f"No {name} (loading it failed: {error}): the lesson uses its own sentences only.")
            return None
    if isinstance(table, datasets.DatasetDict):
        table = table[split]
    missing = {"sentence", "label"} - set(table.column_names)
    if missing:
        raise DataError(f"{name}: the dataset has no column {sorted(missing)} (its columns: {table.column_names})")
    pairs = [(row["sentence"], int(row["label"])) for row in table]
    bad = next((i for i, (_, label) in enumerate(pairs) if label not in (0, 1)), None)
    if bad is not None:
        raise DataError(f"{name} row {bad}: label {pairs[bad][1]!r} is not 0 or 1")
    print(f"{name} ({split}): {len(pairs):,} sentences through `datasets`.")
    return pairs


# --- Fine-tuning ---------------------------------------------------------------------------------


def batches(rows: Sequence[Sequence[int]], labels: Sequence[int], batch_size: int, generator: torch.Generator | None = None):
    """Padded batches (ids, attention_mask, labels): bucketed by length and shuffled with `generator`, else in order."""
    if len(rows) != len(labels):
        raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
    if generator is None:
        order = [list(range(i, min(i + batch_size, len(rows)))) for i in range(0, len(rows), batch_size)]
    else:
        order = text.bucket_batches([len(r) for r in rows], batch_size, generator)
    for batch in order:
        ids, mask = pad([rows[i] for i in batch])
        yield ids, mask, torch.tensor([labels[i] for i in batch])


@torch.no_grad()
def predict(model: nn.Module, rows, labels, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities (n, classes) for the rows, in order."""
    model.eval()
    device = next(model.parameters()).device  # the batches go where the model is (a GPU, when it was moved there)
    return torch.cat([model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.softmax(-1).cpu()
                      for ids, mask, _ in batches(rows, labels, batch_size)])


def accuracy(model: nn.Module, rows, labels) -> float:
    return (predict(model, rows, labels).argmax(1) == torch.tensor(labels)).float().mean().item()


class MeanPooled(nn.Module):
    """An encoder with a new linear layer on the mean of its last layer's outputs at the real tokens (lesson 09).

    No pooler and no `[CLS]`: the sentence vector that lesson 09's probe and lesson 10's MiniLM read.
    """

    def __init__(self, encoder: nn.Module, num_labels: int = 2):
        super().__init__()
        self.encoder, self.classifier = encoder, nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask):
        from types import SimpleNamespace

        from helpers.minilm import mean_pool

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return SimpleNamespace(logits=self.classifier(mean_pool(hidden, attention_mask)))


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the optimiser's state tensors (AdamW: exp_avg and exp_avg_sq per trained parameter, and step)."""
    return sum(v.numel() * v.element_size() for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))


def fine_tune(model: nn.Module, train_data, val_data, lr: float, epochs: int, seed: int, batch_size: int = 32,
              warmup: float = 0.1, clip: float = 1.0, weight_decay: float = 0.01, patience: int | None = None) -> dict:
    """BERT's recipe on the trainable parameters: AdamW, linear warm-up then linear decay, gradient clipping.

    train_data, val_data: (rows, labels). The schedule is planned for `epochs`; with `patience`, training
    stops early once the validation accuracy has not improved for that many epochs. The model is left at
    its best validation epoch. Weight decay applies to weight matrices only, not to biases or LayerNorm's
    scales (BERT's rule). Returns {"model", "curve" (validation accuracy per epoch), "best_epoch",
    "optimizer", "trainable"}.
    """
    from transformers import get_linear_schedule_with_warmup

    if lr <= 0 or epochs < 1:
        raise ValueError(f"lr={lr} must be positive and epochs={epochs} at least 1")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    trainable = [p for _, p in named]
    decayed = [p for n, p in named if p.ndim >= 2]  # matrices; biases and LayerNorm's vectors are not decayed
    rest = [p for n, p in named if p.ndim < 2]
    device = next(model.parameters()).device  # each batch goes where the model is
    # fused: one kernel for the whole update (on 2 CPU cores, 14 ms a step for MiniLM's 22.7 M weights against 64 ms)
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}], lr=lr,
                                  fused=device.type in ("cpu", "cuda"))
    steps = epochs * math.ceil(len(train_data[0]) / batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup * steps), steps)
    shuffle = torch.Generator().manual_seed(seed)
    best, curve = (-1.0, None), []
    for _ in range(epochs):
        model.train()
        for ids, mask, labels in batches(*train_data, batch_size, shuffle):
            ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
            loss = nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(trainable, clip)
            optimizer.step()
            scheduler.step()
        curve.append(accuracy(model, *val_data))
        if curve[-1] > best[0]:
            best = (curve[-1], {k: v.detach().clone() for k, v in model.state_dict().items()})
        if patience is not None and len(curve) - 1 - curve.index(max(curve)) >= patience:
            break
    model.load_state_dict(best[1])
    return {"model": model.eval(), "curve": curve, "best_epoch": curve.index(max(curve)) + 1, "optimizer": optimizer,
            "trainable": sum(p.numel() for p in trainable)}
