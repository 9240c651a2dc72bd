#!/usr/bin/python3
"""Small Hugging Face MoE checkpoints and their float64 expected outputs, for MoeSharp's checkpoint tests.

For each family (Qwen2-MoE, Qwen3-MoE, Mixtral, DeepSeek-V3) this writes a tiny checkpoint in the family's
published layout (config.json keys, tensor names, dtypes, shards with model.safetensors.index.json, tensors of
other modules that a loader must ignore), an input x and the MoE block's output y for one MoE layer, computed in
float64 by following the family's `transformers` modeling code (the *SparseMoeBlock / DeepseekV3MoE forward):

  Qwen2-MoE  softmax(float32 logits) -> top-k -> /sum only if norm_topk_prob -> sum_k w*expert(x)
             + sigmoid(x . shared_expert_gate) * shared_expert(x)
  Qwen3-MoE  same without the shared expert (norm_topk_prob true in the published configs)
  Mixtral    softmax -> top-k -> always /sum; experts w1 (gate), w3 (up), w2 (down) under block_sparse_moe
  DeepSeek-V3 sigmoid scores; choice on scores + e_score_correction_bias: group score = sum of the top-2 per group,
             keep topk_group groups, masked_fill(0.0) elsewhere, top-k; weights = unbiased scores, / (sum + 1e-20) if
             norm_topk_prob, * routed_scaling_factor; + shared_experts(x). Expert weights are F8_E4M3 with a
             block-wise weight_scale_inv (quantization_config.weight_block_size); the reference uses the
             dequantised weights w = q * scale_inv[i // br, j // bc].

Weights are drawn, rounded to the stored dtype, and the reference computes with exactly the stored values.
Run: /usr/bin/python3 bench/reference/hf_moe_reference.py tests/MoeSharp.Tests/Checkpoints/data
"""
import json
import os
import struct
import sys

import numpy as np

# ---------------------------------------------------------------- safetensors writing (the format, by hand)


def bf16_bits(a):
    """float32 -> bfloat16 bits, round to nearest even (as torch's .to(bfloat16))."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def e4m3_table():
    t = np.zeros(256)
    for b in range(256):
        s, e, m = b >> 7, (b >> 3) & 15, b & 7
        v = (m / 8) * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
        if e == 15 and m == 7:
            v = np.nan
        t[b] = -v if s else v
    return t


E4M3 = e4m3_table()


class Stored:
    """A tensor as stored: dtype name, shape, raw little-endian bytes, and its exact value in float64."""

    def __init__(self, dtype, shape, raw, value):
        self.dtype, self.shape, self.raw, self.value = dtype, list(shape), raw, value


def stored(rng, dtype, shape, scale):
    a = (rng.standard_normal(shape) * scale).astype(np.float32)
    if dtype == "F32":
        return Stored(dtype, shape, a.tobytes(), a.astype(np.float64))
    if dtype == "BF16":
        bits = bf16_bits(a)
        return Stored(dtype, shape, bits.tobytes(), bf16_value(bits))
    if dtype == "F16":
        h = a.astype(np.float16)
        return Stored(dtype, shape, h.tobytes(), h.astype(np.float64))
    raise ValueError(dtype)


def fp8_weight(rng, shape, block):
    """An F8_E4M3 weight and its F32 weight_scale_inv; value = dequantised weight."""
    codes = rng.integers(0, 256, size=shape, dtype=np.uint8)
    codes[(codes & 0x7F) == 0x7F] = 0x38  # no NaN codes (0x38 = 1.0)
    br, bc = block
    sshape = (-(-shape[0] // br), -(-shape[1] // bc))
    scale = (rng.uniform(0.5, 2.0, size=sshape) * 0.002).astype(np.float32)
    full = np.repeat(np.repeat(scale.astype(np.float64), br, 0), bc, 1)[: shape[0], : shape[1]]
    w = Stored("F8_E4M3", shape, codes.tobytes(), E4M3[codes] * full)
    s = Stored("F32", sshape, scale.tobytes(), scale.astype(np.float64))
    return w, s


def write_safetensors(path, tensors, metadata=None):
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name]
        header[name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + len(t.raw)]}
        offset += len(t.raw)
        blobs.append(t.raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def write_checkpoint(folder, config, tensors, shards):
    """shards: list of lists of names (one file each); more than one writes model.safetensors.index.json."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if len(shards) == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), {n: tensors[n] for n in shards[0]}, {"format": "pt"})
        return
    weight_map, total = {}, 0
    for i, names in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(folder, file), {n: tensors[n] for n in names}, {"format": "pt"})
        for n in names:
            weight_map[n] = file
            total += len(tensors[n].raw)
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)


def write_case(folder, layer, x, y):
    """input.safetensors holds x (float32, or the bfloat16 input given); expected-layer{N}.safetensors holds y (float32)."""
    write_safetensors(os.path.join(folder, "input.safetensors"), {"x": x})
    yf = y.astype(np.float32)
    write_safetensors(os.path.join(folder, f"expected-layer{layer}.safetensors"),
                      {"y": Stored("F32", y.shape, yf.tobytes(), yf.astype(np.float64))})


# ---------------------------------------------------------------- the families' forward, in float64


def silu(v):
    return v / (1 + np.exp(-v))


def mlp(x, gate, up, down):
    return (silu(x @ gate.T) * (x @ up.T)) @ down.T


def softmax(v):
    v = v - v.max(axis=-1, keepdims=True)
    e = np.exp(v)
    return e / e.sum(axis=-1, keepdims=True)


def topk_indices(v, k):
    # torch.topk order among ties does not matter for these random inputs; a stable descending sort.
    return np.argsort(-v, axis=-1, kind="stable")[:, :k]


def routed(x, ids, weights, experts):
    y = np.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(ids.shape[1]):
            g, u, d = experts[ids[t, j]]
            y[t] += weights[t, j] * mlp(x[t : t + 1], g, u, d)[0]
    return y


def qwen_block(x, gate, experts, k, norm, shared=None, shared_gate=None):
    p = softmax(x @ gate.T)  # softmax(router_logits, dtype=float)
    ids = topk_indices(p, k)
    w = np.take_along_axis(p, ids, 1)
    if norm:
        w = w / w.sum(-1, keepdims=True)
    y = routed(x, ids, w, experts)
    if shared is not None:
        y = y + (1 / (1 + np.exp(-(x @ shared_gate.T)))) * mlp(x, *shared)
    return y


def deepseek_block(x, gate, bias, experts, k, n_group, topk_group, norm, scale, shared, rules_differ=False):
    scores = 1 / (1 + np.exp(-(x @ gate.T)))
    choice = scores + bias[None, :]
    t, e = choice.shape
    grouped = choice.reshape(t, n_group, e // n_group)
    group_scores = np.sort(grouped, axis=-1)[:, :, -2:].sum(-1)
    keep = topk_indices(group_scores, topk_group)
    mask = np.zeros((t, n_group), dtype=bool)
    np.put_along_axis(mask, keep, True, 1)
    mask = np.repeat(mask, e // n_group, axis=1)
    masked = np.where(mask, choice, 0.0)  # masked_fill(~score_mask, 0.0), exactly as transformers
    ids = topk_indices(masked, k)
    # torchtitan (MoeSharp's default) leaves the discarded groups out instead of scoring them 0.0. The two agree
    # unless fewer than k kept experts have a positive biased score; each case states which it is (checked, so a
    # case meant to tell the rules apart cannot silently stop doing so).
    excluded = topk_indices(np.where(mask, choice, -np.inf), k)
    same = (np.sort(ids, 1) == np.sort(excluded, 1)).all(1)
    if rules_differ:
        assert not same.any(), "some token chooses the same experts under 0.0 masking and exclusion"
        # No ties at 0.0 among the masked experts decide the choice (torch.topk's order among ties is unspecified):
        # every token takes all of its discarded groups' experts or none of them.
        taken = np.take_along_axis(~mask, ids, 1).sum(1)
        assert np.isin(taken, [0, (~mask).sum(1)[0]]).all(), "a tie at 0.0 decides the choice"
    else:
        assert same.all(), "0.0 masking and exclusion choose differently"
    w = np.take_along_axis(scores, ids, 1)
    if norm:
        w = w / (w.sum(-1, keepdims=True) + 1e-20)
    w = w * scale
    return routed(x, ids, w, experts) + mlp(x, *shared)


# ---------------------------------------------------------------- the checkpoints


def other_modules(rng, tensors, layer, d, dtype):
    """Attention and norm tensors of a decoder layer, which the MoE loader must never read."""
    p = f"model.layers.{layer}."
    tensors[p + "input_layernorm.weight"] = stored(rng, dtype, [d], 1.0)
    tensors[p + "post_attention_layernorm.weight"] = stored(rng, dtype, [d], 1.0)
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        tensors[p + f"self_attn.{proj}.weight"] = stored(rng, dtype, [d, d], 0.1)


def add_mlp(rng, tensors, prefix, d, h, dtype, names=("gate_proj", "up_proj", "down_proj")):
    g = tensors[prefix + names[0] + ".weight"] = stored(rng, dtype, [h, d], 0.2)
    u = tensors[prefix + names[1] + ".weight"] = stored(rng, dtype, [h, d], 0.2)
    dn = tensors[prefix + names[2] + ".weight"] = stored(rng, dtype, [d, h], 0.2)
    return g.value, u.value, dn.value


def qwen2_moe(root, rng):
    d, e, k, h, hs, layers = 32, 8, 2, 16, 24, 2
    config = {
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": d,
        "intermediate_size": 48, "moe_intermediate_size": h, "shared_expert_intermediate_size": hs,
        "num_experts": e, "num_experts_per_tok": k, "norm_topk_prob": False, "decoder_sparse_step": 1,
        "mlp_only_layers": [0], "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 4,
        "hidden_act": "silu", "output_router_logits": False, "router_aux_loss_coef": 0.001, "rms_norm_eps": 1e-06,
        "vocab_size": 64, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
    }
    t = {"model.embed_tokens.weight": stored(rng, "BF16", [64, d], 0.1), "model.norm.weight": stored(rng, "BF16", [d], 1.0)}
    other_modules(rng, t, 0, d, "BF16")
    add_mlp(rng, t, "model.layers.0.mlp.", d, 48, "BF16")  # mlp_only_layers: a dense layer
    other_modules(rng, t, 1, d, "BF16")
    p = "model.layers.1.mlp."
    t[p + "gate.weight"] = stored(rng, "BF16", [e, d], 0.3)
    experts = [add_mlp(rng, t, p + f"experts.{i}.", d, h, "BF16") for i in range(e)]
    shared = add_mlp(rng, t, p + "shared_expert.", d, hs, "BF16")
    t[p + "shared_expert_gate.weight"] = stored(rng, "BF16", [1, d], 0.3)
    names = sorted(t)
    shards = [[n for n in names if not n.startswith("model.layers.1.mlp.experts.")],
              [n for n in names if n.startswith("model.layers.1.mlp.experts.")]]
    folder = os.path.join(root, "qwen2_moe")
    write_checkpoint(folder, config, t, shards)
    x = stored(rng, "F32", [13, d], 1.0)
    y = qwen_block(x.value, t[p + "gate.weight"].value, experts, k, False, shared, t[p + "shared_expert_gate.weight"].value)
    write_case(folder, 1, x, y)


def qwen3_moe(root, rng):
    d, e, k, h, layers = 32, 8, 2, 16, 2
    config = {
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": d,
        "intermediate_size": 48, "moe_intermediate_size": h, "num_experts": e, "num_experts_per_tok": k,
        "norm_topk_prob": True, "decoder_sparse_step": 1, "mlp_only_layers": [], "num_hidden_layers": layers,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "hidden_act": "silu",
        "rms_norm_eps": 1e-06, "vocab_size": 64, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
    }
    t = {"model.embed_tokens.weight": stored(rng, "BF16", [64, d], 0.1)}
    all_experts = {}
    for layer in range(layers):
        other_modules(rng, t, layer, d, "BF16")
        p = f"model.layers.{layer}.mlp."
        t[p + "gate.weight"] = stored(rng, "BF16", [e, d], 0.3)
        all_experts[layer] = [add_mlp(rng, t, p + f"experts.{i}.", d, h, "BF16") for i in range(e)]
    folder = os.path.join(root, "qwen3_moe")
    write_checkpoint(folder, config, t, [sorted(t)])  # one model.safetensors, no index
    # A bfloat16 input: moe layer widens it exactly; the reference uses the same bfloat16 values.
    x = stored(rng, "BF16", [11, d], 1.0)
    y = qwen_block(x.value, t["model.layers.1.mlp.gate.weight"].value, all_experts[1], k, True)
    write_case(folder, 1, x, y)


def mixtral(root, rng):
    d, e, k, h, layers = 32, 4, 2, 24, 2
    config = {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": d, "intermediate_size": h,
        "num_local_experts": e, "num_experts_per_tok": k, "num_hidden_layers": layers, "num_attention_heads": 4,
        "num_key_value_heads": 2, "hidden_act": "silu", "router_aux_loss_coef": 0.02, "rms_norm_eps": 1e-05,
        "sliding_window": None, "vocab_size": 64, "torch_dtype": "float16", "tie_word_embeddings": False,
    }
    t = {"model.embed_tokens.weight": stored(rng, "F16", [64, d], 0.1), "lm_head.weight": stored(rng, "F16", [64, d], 0.1)}
    all_experts = {}
    for layer in range(layers):
        other_modules(rng, t, layer, d, "F16")
        p = f"model.layers.{layer}.block_sparse_moe."
        t[p + "gate.weight"] = stored(rng, "F16", [e, d], 0.3)
        all_experts[layer] = [add_mlp(rng, t, p + f"experts.{i}.", d, h, "F16", ("w1", "w3", "w2")) for i in range(e)]
    names = sorted(t)
    shards = [names[i::3] for i in range(3)]  # tensors spread over three shards, as the published index does
    folder = os.path.join(root, "mixtral")
    write_checkpoint(folder, config, t, shards)
    x = stored(rng, "F32", [9, d], 1.0)
    y = qwen_block(x.value, t["model.layers.0.block_sparse_moe.gate.weight"].value, all_experts[0], k, True)
    write_case(folder, 0, x, y)


def deepseek_v3(root, rng):
    d, e, k, h, layers, groups, topk_groups, n_shared, block = 48, 16, 4, 24, 3, 4, 2, 1, [16, 16]
    config = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": d,
        "intermediate_size": 64, "moe_intermediate_size": h, "n_routed_experts": e, "n_shared_experts": n_shared,
        "num_experts_per_tok": k, "n_group": groups, "topk_group": topk_groups, "norm_topk_prob": True,
        "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
        "first_k_dense_replace": 1, "moe_layer_freq": 1, "num_hidden_layers": layers, "num_attention_heads": 4,
        "num_key_value_heads": 4, "q_lora_rank": 16, "kv_lora_rank": 16, "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 8, "v_head_dim": 8, "hidden_act": "silu", "rms_norm_eps": 1e-06, "vocab_size": 64,
        "torch_dtype": "bfloat16",
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "weight_block_size": block},
    }
    t = {"model.embed_tokens.weight": stored(rng, "BF16", [64, d], 0.1)}

    def fp8_mlp(prefix, hidden):
        values = []
        for name, shape in (("gate_proj", [hidden, d]), ("up_proj", [hidden, d]), ("down_proj", [d, hidden])):
            w, s = fp8_weight(rng, shape, block)
            t[prefix + name + ".weight"], t[prefix + name + ".weight_scale_inv"] = w, s
            values.append(w.value)
        return tuple(values)

    fp8_mlp("model.layers.0.mlp.", 64)  # first_k_dense_replace: a dense layer
    experts_of, gates, biases, shared_of = {}, {}, {}, {}
    for layer in range(1, layers):
        p = f"model.layers.{layer}.mlp."
        t[p + "gate.weight"] = stored(rng, "BF16", [e, d], 0.3)
        gates[layer] = t[p + "gate.weight"].value
        bias = (rng.standard_normal(e) * 0.05).astype(np.float32)
        t[p + "gate.e_score_correction_bias"] = Stored("F32", [e], bias.tobytes(), bias.astype(np.float64))
        biases[layer] = bias.astype(np.float64)
        experts_of[layer] = [fp8_mlp(p + f"experts.{i}.", h) for i in range(e)]
        shared_of[layer] = fp8_mlp(p + "shared_experts.", h * n_shared)
    names = sorted(t)
    shards = [[n for n in names if f"layers.{layer}." in n] for layer in range(layers)]
    shards[0] += [n for n in names if "layers." not in n]
    folder = os.path.join(root, "deepseek_v3")
    write_checkpoint(folder, config, t, shards)
    x = stored(rng, "F32", [13, d], 1.0)
    y = deepseek_block(x.value, gates[2], biases[2], experts_of[2], k, groups, topk_groups, True, 2.5, shared_of[2])
    write_case(folder, 2, x, y)


def deepseek_v3_negative_bias(root, rng):
    """A DeepSeek-V3 layer whose kept groups hold fewer than k experts with a positive biased score.

    Every group has two experts with bias about -1.5 (biased score < 0, as sigmoid < 1) and two with a small positive bias;
    3 of 4 groups are kept, so 6 kept experts are positive and k = 10: transformers fills the last 4 places with the
    discarded group's experts (masked to 0.0, which beats every negative score), torchtitan with negative kept ones.
    BF16 weights, one shard, no quantization.
    """
    d, e, k, h, groups, topk_groups = 16, 16, 10, 8, 4, 3
    config = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": d,
        "intermediate_size": 32, "moe_intermediate_size": h, "n_routed_experts": e, "n_shared_experts": 1,
        "num_experts_per_tok": k, "n_group": groups, "topk_group": topk_groups, "norm_topk_prob": True,
        "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
        "first_k_dense_replace": 1, "moe_layer_freq": 1, "num_hidden_layers": 2, "hidden_act": "silu",
        "vocab_size": 32, "torch_dtype": "bfloat16",
    }
    t = {}
    add_mlp(rng, t, "model.layers.0.mlp.", d, 32, "BF16")
    p = "model.layers.1.mlp."
    t[p + "gate.weight"] = stored(rng, "BF16", [e, d], 0.3)
    bias = np.where(np.arange(e) % 4 < 2, -1.5, 0.0) + rng.uniform(0.0, 0.02, e)
    bias = bias.astype(np.float32)
    t[p + "gate.e_score_correction_bias"] = Stored("F32", [e], bias.tobytes(), bias.astype(np.float64))
    experts = [add_mlp(rng, t, p + f"experts.{i}.", d, h, "BF16") for i in range(e)]
    shared = add_mlp(rng, t, p + "shared_experts.", d, h, "BF16")
    folder = os.path.join(root, "deepseek_v3_negative_bias")
    write_checkpoint(folder, config, t, [sorted(t)])
    x = stored(rng, "F32", [11, d], 1.0)
    y = deepseek_block(x.value, t[p + "gate.weight"].value, bias.astype(np.float64), experts, k, groups, topk_groups,
                       True, 2.5, shared, rules_differ=True)
    write_case(folder, 1, x, y)


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/MoeSharp.Tests/Checkpoints/data"
    rng = np.random.default_rng(20251202)
    qwen2_moe(root, rng)
    qwen3_moe(root, rng)
    mixtral(root, rng)
    deepseek_v3(root, rng)
    deepseek_v3_negative_bias(root, np.random.default_rng(20261202))
