"""helpers.lora: LoRA by hand, equal to peft's given the same A and B."""

import copy
import math

import pytest
import torch
from torch import nn

from helpers import lora

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
# peft 0.21 calls transformers 5's renamed `is_gradient_checkpointing`, which warns; not the course's code
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

R, ALPHA = 4, 8


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=32, max_position_embeddings=20, num_labels=2)
    return transformers.BertForSequenceClassification(config).eval()


def batch():
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 60, (3, 8), generator=generator)
    mask = (torch.arange(8)[None, :] < torch.tensor([8, 5, 2])[:, None]).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


def last_hidden(model, inputs):
    """The encoder's output, not the logits: the pooler's tanh and the 2-wide head hide differences."""
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True).hidden_states[-1]


def with_random_b(model, seed=1):
    """Give every adapter a non-zero B (at init B = 0 hides a wrong scaling or a wrong product)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, lora.LoRALinear):
            with torch.no_grad():
                module.B.copy_(torch.randn(module.B.shape, generator=generator))
    return model


def peft_twin(base, ours):
    """peft's LoRA on a copy of `base`, holding the same A and B as `ours`."""
    twin = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(r=R, lora_alpha=ALPHA, target_modules=["query", "value"],
                                                                    lora_dropout=0.0, task_type="SEQ_CLS")).eval()
    for name, module in ours.named_modules():
        if isinstance(module, lora.LoRALinear):
            theirs = twin.base_model.model.get_submodule(name)
            with torch.no_grad():
                theirs.lora_A.default.weight.copy_(module.A)
                theirs.lora_B.default.weight.copy_(module.B)
    return twin


def adapted(base):
    model = copy.deepcopy(base)
    names = lora.add_lora(model, ("query", "value"), r=R, alpha=ALPHA, train=("classifier",))
    return model.eval(), names


def test_at_init_the_adapted_model_computes_the_base_model_exactly():
    base = tiny_bert()
    model, names = adapted(base)
    assert names == [f"bert.encoder.layer.{i}.attention.self.{p}" for i in (0, 1) for p in ("query", "value")]
    inputs = batch()
    assert torch.equal(last_hidden(model, inputs), last_hidden(base, inputs))  # B = 0
    # a non-zero B changes it (so the equality above is not a LoRA path that is never added)
    assert (last_hidden(with_random_b(model), inputs) - last_hidden(base, inputs)).abs().max() > 1e-2


def test_a_is_initialised_like_nn_linear_and_b_at_zero():
    layer = lora.LoRALinear(nn.Linear(64, 32), r=8, alpha=16)
    bound = 1 / math.sqrt(64)  # Kaiming-uniform with a = sqrt(5) on fan_in 64
    assert layer.A.abs().max() <= bound and layer.A.abs().max() > 0.9 * bound
    assert torch.equal(layer.B, torch.zeros(32, 8))
    assert layer.scaling == 2.0


def adapted_with_random_b_and_peft_twin():
    """(base, our adapted model with non-zero B, the names adapted, peft's model with the same A and B, a batch)."""
    base = tiny_bert()
    model, names = adapted(base)
    with_random_b(model)
    return base, model, names, peft_twin(base, model), batch()


def test_equals_peft_given_the_same_a_and_b_and_a_wrong_scaling_does_not():
    _, model, _, twin, inputs = adapted_with_random_b_and_peft_twin()
    assert (last_hidden(model, inputs) - last_hidden(twin, inputs)).abs().max() <= 1e-6
    with torch.no_grad():
        assert (model(**inputs).logits - twin(**inputs).logits).abs().max() <= 1e-6
    for module in model.modules():  # the broken version: alpha instead of alpha / r
        if isinstance(module, lora.LoRALinear):
            module.scaling = ALPHA
    assert (last_hidden(model, inputs) - last_hidden(twin, inputs)).abs().max() > 1e-2


def test_merged_weights_equal_the_unmerged_model_and_peft_merge_and_unload():
    base, model, names, twin, inputs = adapted_with_random_b_and_peft_twin()
    before = last_hidden(model, inputs)
    lora.merge_lora(model)
    assert not any(isinstance(m, lora.LoRALinear) for m in model.modules())
    assert (last_hidden(model, inputs) - before).abs().max() <= 1e-5
    unloaded = twin.merge_and_unload()
    for name in names:
        assert (model.get_submodule(name).weight - unloaded.get_submodule(name).weight).abs().max() <= 1e-6
        assert (model.get_submodule(name).weight - base.get_submodule(name).weight).abs().max() > 1e-2


def test_trainable_parameters_equal_peft_and_only_adapters_and_head_get_gradients():
    base = tiny_bert()
    model, _ = adapted(base)
    twin = peft_twin(base, model)
    trainable, total = lora.trainable_parameters(model)
    assert trainable == twin.get_nb_trainable_parameters()[0]
    assert trainable == 2 * 2 * R * (16 + 16) + (16 * 2 + 2)  # 4 adapted 16x16 layers + the head
    model.train()
    with_random_b(model)  # so that A gets a gradient too (with B = 0, dL/dA = 0 at the first step)
    loss = nn.functional.cross_entropy(model(**batch()).logits, torch.tensor([0, 1, 0]))
    loss.backward()
    for name, parameter in model.named_parameters():
        has_gradient = parameter.grad is not None and parameter.grad.abs().sum() > 0
        expected = name.endswith((".A", ".B")) or name.startswith("classifier.")
        assert has_gradient == expected, name


def test_dropout_applies_only_on_the_lora_path():
    torch.manual_seed(0)
    layer = lora.LoRALinear(nn.Linear(8, 8), r=2, alpha=4, dropout=0.5)
    x = torch.randn(5, 8)
    layer.train()
    assert torch.equal(layer(x), layer.base(x)), "B = 0: dropout on the LoRA path cannot change the output"
    with torch.no_grad():
        layer.B.normal_()
    layer.eval()
    expected = layer.base(x) + 2 * x @ layer.A.T @ layer.B.T
    assert (layer(x) - expected).abs().max() <= 1e-6


def test_bad_input_gives_a_clear_error():
    with pytest.raises(ValueError, match="rank"):
        lora.LoRALinear(nn.Linear(4, 4), r=0, alpha=1)
    with pytest.raises(ValueError, match="rank"):
        lora.add_lora(tiny_bert(), r=-2)
    with pytest.raises(ValueError, match="'quary'"):
        lora.add_lora(tiny_bert(), target_names=("quary", "value"))
    with pytest.raises(ValueError, match="'head'"):
        lora.add_lora(tiny_bert(), train=("head",))
    with pytest.raises(TypeError, match="nn.Linear"):
        lora.LoRALinear(nn.Conv1d(4, 4, 1), r=2, alpha=4)
