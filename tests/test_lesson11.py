"""Lesson 11's path that needs a network: the real GPT-2 by name from the Hub, simulated with a tiny GPT-2."""

import json
from pathlib import Path
from types import SimpleNamespace

import torch
import transformers

LESSON = Path(__file__).resolve().parents[1] / "notebooks" / "11_generating_text_a_tiny_gpt.ipynb"


def gpt2_cell() -> str:
    cells = json.loads(LESSON.read_text(encoding="utf-8"))["cells"]
    (source,) = ["".join(c["source"]) for c in cells if "".join(c["source"]).startswith('why = lm.why_no_hub("openai-community/gpt2")')]
    return source


def tiny_gpt2():
    """A GPT-2 of one small layer and a word-level tokenizer that knows the prompt: what from_pretrained would give."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<eos>", "A", "river", "is", "a", "large", "stream", "of", "water"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<eos>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=len(words), n_positions=64, n_embd=16, n_layer=1, n_head=2))
    return tokenizer, model.eval()


def test_with_the_hub_the_lesson_loads_gpt2_by_name_and_generates(monkeypatch, capsys):
    tokenizer, model = tiny_gpt2()
    asked = []

    def by_name(result):
        def from_pretrained(name, **kwargs):
            asked.append(name)
            return result
        return from_pretrained

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", by_name(tokenizer))
    monkeypatch.setattr(transformers.GPT2LMHeadModel, "from_pretrained", by_name(model))
    exec(gpt2_cell(), {"lm": SimpleNamespace(why_no_hub=lambda name: None), "torch": torch})
    printed = capsys.readouterr().out.strip()
    assert asked == ["openai-community/gpt2", "openai-community/gpt2"]
    assert printed.startswith("A river is") and len(printed.split()) > 3, printed


def test_without_the_hub_the_lesson_says_why_and_goes_on(capsys):
    exec(gpt2_cell(), {"lm": SimpleNamespace(why_no_hub=lambda name: "COURSE_OFFLINE=1"), "torch": torch})
    assert capsys.readouterr().out.strip() == "Skipped: GPT-2 cannot be fetched from the Hugging Face Hub here (COURSE_OFFLINE=1)."
