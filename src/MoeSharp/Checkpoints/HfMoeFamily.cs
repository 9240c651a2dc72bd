namespace MoeSharp.Checkpoints;

/// <summary>
/// The Hugging Face MoE model families whose checkpoints <see cref="HfMoeLayerLoader"/> reads (by <c>model_type</c>).
/// </summary>
public enum HfMoeFamily
{
    /// <summary><c>qwen2_moe</c>: softmax top-k, a shared expert with a sigmoid gate.</summary>
    Qwen2Moe,

    /// <summary><c>qwen3_moe</c>: softmax top-k, no shared expert.</summary>
    Qwen3Moe,

    /// <summary>
    /// <c>mixtral</c>: softmax top-k renormalised, experts <c>w1</c>/<c>w3</c>/<c>w2</c> under <c>block_sparse_moe</c>.
    /// </summary>
    Mixtral,

    /// <summary>
    /// <c>deepseek_v3</c>: sigmoid scores, bias-corrected group-limited choice, shared experts, FP8 block weights.
    /// </summary>
    DeepseekV3,
}
