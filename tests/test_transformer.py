"""helpers.transformer: every part equal to PyTorch's own, in float32 and float64."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from helpers import transformer

TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}


def padding(lengths, length):
    """(batch, length), True at padding."""
    return torch.arange(length)[None, :] >= torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_attention_equals_scaled_dot_product_attention(dtype, mask_kind):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 8, generator=generator, dtype=dtype) for _ in range(3))
    mask = {"none": None, "causal": transformer.causal_mask(6), "padding": ~padding([6, 4, 1], 6)[:, None, None, :]}[mask_kind]
    ours, weights = transformer.attention(q, k, v, mask)
    assert (ours - F.scaled_dot_product_attention(q, k, v, attn_mask=mask)).abs().max() <= TOLERANCE[dtype]
    assert torch.allclose(weights.sum(-1), torch.ones((), dtype=dtype))
    if mask is not None:  # a masked key gets exactly zero weight, not a small one
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_query_allowed_no_key_gets_zero_as_in_scaled_dot_product_attention(dtype):
    generator = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 2, 7, 8, generator=generator, dtype=dtype) * 3 for _ in range(3))
    mask = torch.rand(2, 2, 7, 7, generator=generator) < 0.3
    mask[0, 1, 4] = False  # this query may attend to nothing
    ours, weights = transformer.attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not ours.isnan().any(), "the softmax of nothing but -inf is NaN unless the empty row is handled"
    assert (ours - expected).abs().max() <= TOLERANCE[dtype] * expected.abs().max().clamp(min=1)
    assert (weights[0, 1, 4] == 0).all() and (ours[0, 1, 4] == 0).all()


def test_attention_scales_by_the_square_root_of_the_key_size():
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 5, 16, generator=generator, dtype=torch.float64) for _ in range(3))
    expected = torch.softmax(q @ k.transpose(-2, -1) / 4.0, dim=-1) @ v  # √16 = 4
    assert (transformer.attention(q, k, v)[0] - expected).abs().max() <= 1e-12


def test_attention_passes_gradcheck_with_a_mask():
    generator = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 5, 4, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: transformer.attention(q, k, v, transformer.causal_mask(5))[0], (q, k, v))


def test_causal_mask_lets_each_position_see_itself_and_the_past():
    mask = transformer.causal_mask(4)
    assert mask.tolist() == [[True, False, False, False], [True, True, False, False], [True, True, True, False], [True, True, True, True]]


def test_sinusoidal_positions_follow_the_formula():
    encoding = transformer.sinusoidal_positions(50, 16)
    for p in (0, 7, 49):
        for i in range(8):
            angle = p / 10000 ** (2 * i / 16)
            assert abs(encoding[p, 2 * i].item() - math.sin(angle)) < 1e-6
            assert abs(encoding[p, 2 * i + 1].item() - math.cos(angle)) < 1e-6
    with pytest.raises(ValueError, match="even"):
        transformer.sinusoidal_positions(5, 7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multi_head_attention_equals_torch_with_copied_weights_and_a_padding_mask(dtype):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(16, 4, batch_first=True, dtype=dtype).eval()
    ours = transformer.MultiHeadAttention(16, 4).to(dtype).copy_from(reference)
    x = torch.randn(3, 7, 16, dtype=dtype)
    pad = padding([7, 5, 2], 7)
    expected, expected_weights = reference(x, x, x, key_padding_mask=pad, average_attn_weights=False)
    out, weights = ours(x, key_padding_mask=pad)
    assert (out - expected).abs().max() <= TOLERANCE[dtype]
    assert (weights - expected_weights).abs().max() <= TOLERANCE[dtype]
    # without the mask the padded rows differ: the mask is really used
    assert (ours(x)[0] - expected)[1:].abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_encoder_block_equals_transformer_encoder_layer(dtype, norm_first):
    torch.manual_seed(0)
    reference = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=dtype).eval()
    ours = transformer.EncoderBlock(16, 4, 32, norm_first=norm_first).to(dtype).copy_from(reference).eval()
    x = torch.randn(3, 7, 16, dtype=dtype)
    pad = padding([7, 5, 2], 7)
    assert (ours(x, pad) - reference(x, src_key_padding_mask=pad)).abs().max() <= TOLERANCE[dtype]
    with torch.no_grad():  # PyTorch's fast path (a fused kernel) runs here
        assert (ours(x, pad) - reference(x, src_key_padding_mask=pad)).abs().max() <= TOLERANCE[dtype]
    wrong_form = transformer.EncoderBlock(16, 4, 32, norm_first=not norm_first).to(dtype).copy_from(reference).eval()
    assert (wrong_form(x, pad) - reference(x, src_key_padding_mask=pad)).abs().max() > 1e-2


def test_classifier_ignores_padding_and_reads_the_first_token():
    torch.manual_seed(0)
    model = transformer.TransformerClassifier(50, d_model=16, heads=2, d_ff=32, layers=2, max_length=20).eval()
    ids = torch.randint(3, 50, (1, 6))
    alone = model(ids, torch.ones(1, 6, dtype=torch.bool))
    padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    padded_mask = torch.cat([torch.ones(1, 6, dtype=torch.bool), torch.zeros(1, 4, dtype=torch.bool)], dim=1)
    assert (model(padded_ids, padded_mask) - alone).abs().max() < 1e-5, "padding must not change the prediction"
    assert (model(padded_ids, torch.ones(1, 10, dtype=torch.bool)) - alone).abs().max() > 1e-4, "a missing mask does"
    with pytest.raises(ValueError, match="max_length"):
        model(torch.zeros(1, 21, dtype=torch.long), torch.ones(1, 21, dtype=torch.bool))


def test_encoder_block_with_gelu_and_eps_equals_transformer_encoder_layer():
    torch.manual_seed(0)
    reference = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu", layer_norm_eps=1e-12, batch_first=True).eval()
    ours = transformer.EncoderBlock(16, 4, 32, norm_first=False, activation="gelu", eps=1e-12).copy_from(reference).eval()
    x, pad = torch.randn(3, 7, 16), padding([7, 5, 2], 7)
    assert (ours(x, pad) - reference(x, src_key_padding_mask=pad)).abs().max() <= 1e-6
    relu = transformer.EncoderBlock(16, 4, 32, norm_first=False, eps=1e-12).copy_from(reference).eval()
    assert (relu(x, pad) - reference(x, src_key_padding_mask=pad)).abs().max() > 1e-3, "ReLU in place of GELU must show"
    with pytest.raises(ValueError, match="activation"):
        transformer.EncoderBlock(16, 4, 32, activation="tanh")


def _bert(layers=2, seed=0):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=layers, num_attention_heads=4,
                                     intermediate_size=32, max_position_embeddings=20)
    return transformers.BertModel(config).eval()


def bert_block(layer, **changes):
    """Our block set up as BERT's layer (post-norm, GELU, eps 1e-12), with `changes` to break it."""
    settings = {"norm_first": False, "activation": "gelu", "eps": 1e-12, **changes}
    return transformer.EncoderBlock(16, 4, 32, **settings).copy_from_bert(layer).eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_encoder_block_equals_bert_layer_with_a_padding_mask(dtype):
    bert = _bert().to(dtype)
    layer = bert.encoder.layer[0]
    x, pad = torch.randn(3, 7, 16, dtype=dtype), padding([7, 4, 2], 7)
    additive = pad[:, None, None, :].to(dtype) * torch.finfo(dtype).min  # BERT's extended mask
    expected = layer(x, attention_mask=additive)
    expected = expected[0] if isinstance(expected, tuple) else expected
    real = ~pad

    def gap(block, mask=pad):
        return (block.to(dtype)(x, mask) - expected)[real].abs().max().item()

    assert gap(bert_block(layer)) <= {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    assert gap(bert_block(layer, norm_first=True)) > 1e-2, "pre-norm is not BERT's layer"
    assert gap(bert_block(layer, activation="relu")) > 1e-3, "ReLU is not BERT's GELU"
    assert gap(bert_block(layer), mask=None) > 1e-3, "a missing padding mask lets real tokens see padding"
    if dtype == torch.float64:
        assert gap(bert_block(layer, eps=1e-5)) > 1e-7, "LayerNorm eps 1e-5 is not BERT's 1e-12"


def test_blocks_with_bert_embeddings_equal_the_whole_bert_model():
    bert = _bert(layers=3)
    ids = torch.randint(3, 60, (3, 9))
    real = ~padding([9, 6, 3], 9)
    ids[~real] = 0
    embeddings = bert.embeddings
    x = embeddings.LayerNorm(embeddings.word_embeddings(ids) + embeddings.position_embeddings.weight[:9]
                             + embeddings.token_type_embeddings.weight[0])
    for layer in bert.encoder.layer:
        x = bert_block(layer)(x, ~real)
    expected = bert(input_ids=ids, attention_mask=real.long()).last_hidden_state
    assert (x - expected)[real].abs().max() <= 1e-5


def test_copy_from_bert_rejects_a_block_of_another_size():
    bert = _bert()
    with pytest.raises(ValueError, match="shape"):
        transformer.EncoderBlock(16, 4, 64).copy_from_bert(bert.encoder.layer[0])


def test_mean_pooling_ignores_padding_and_reads_every_real_token():
    torch.manual_seed(0)
    model = transformer.TransformerClassifier(50, d_model=16, heads=2, d_ff=32, layers=1, max_length=20, pooling="mean").eval()
    ids = torch.randint(3, 50, (1, 6))
    alone = model(ids, torch.ones(1, 6, dtype=torch.bool))
    padded = model(torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1), torch.arange(10)[None] < 6)
    assert (padded - alone).abs().max() < 1e-5, "a mean over the padding too would change with its amount"
    last_changed = ids.clone()
    last_changed[0, -1] = 3 if ids[0, -1] != 3 else 4
    assert (model(last_changed, torch.ones(1, 6, dtype=torch.bool)) - alone).abs().max() > 1e-4, "the last real token counts"
    with pytest.raises(ValueError, match="pooling"):
        transformer.TransformerClassifier(50, pooling="max")


def test_without_positions_a_shuffled_sentence_gets_the_same_mean_pooled_prediction():
    torch.manual_seed(0)
    options = dict(d_model=16, heads=2, d_ff=32, layers=2, max_length=20, pooling="mean", dropout=0.0)
    ids = torch.randint(3, 50, (1, 8))
    shuffled = ids[:, torch.randperm(8)]
    mask = torch.ones(1, 8, dtype=torch.bool)
    no_positions = transformer.TransformerClassifier(50, positions="none", **options).eval()
    assert (no_positions(shuffled, mask) - no_positions(ids, mask)).abs().max() < 1e-5, "attention without positions sees a set"
    learned = transformer.TransformerClassifier(50, **options).eval()
    assert (learned(shuffled, mask) - learned(ids, mask)).abs().max() > 1e-4, "with positions, order matters"


def test_token_vectors_start_at_the_scale_of_the_positions():
    torch.manual_seed(0)
    model = transformer.TransformerClassifier(500, d_model=64, max_length=40)
    tokens, positions = model.embedding.weight[1:].norm(dim=1).mean(), model.positions.norm(dim=1).mean()
    # nn.Embedding's default (std 1) gives a ratio near 50: the positions would be lost in the token vectors
    assert 0.5 < (tokens / positions).item() < 2, f"token vectors {tokens:.3f} against positions {positions:.3f}"
    assert model.embedding.weight[0].abs().max() == 0, "the padding token's vector stays zero"
