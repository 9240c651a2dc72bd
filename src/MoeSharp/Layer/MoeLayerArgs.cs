using MoeSharp.Routing;

namespace MoeSharp.Layer;

/// <summary>
/// The shape and routing options of one MoE layer (torchtitan's <c>MoEArgs</c>). Where scores multiply
/// (<c>score_before_experts</c>) belongs to the dispatcher's <see cref="Dispatch.TokenDispatcherConfig"/>.
/// </summary>
public sealed record MoeLayerArgs
{
    /// <summary>Creates the arguments of a layer with model dim D, expert hidden dim H, E experts and top-K
    /// routing.</summary>
    /// <param name="dim">D, at least 1.</param>
    /// <param name="hidden">H, the routed experts' hidden dim, at least 1.</param>
    /// <param name="numExperts">E, at least 1.</param>
    /// <param name="topK">K, in <c>[1, E]</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is out of range.</exception>
    public MoeLayerArgs(int dim, int hidden, int numExperts, int topK)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hidden, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(numExperts, 1);
        if (topK < 1 || topK > numExperts)
        {
            throw new ArgumentOutOfRangeException(
                nameof(topK),
                topK,
                $"top-k must be in [1, {numExperts}] (the number of experts)"
            );
        }
        Dim = dim;
        Hidden = hidden;
        NumExperts = numExperts;
        TopK = topK;
    }

    /// <summary>
    /// The MoE block's arguments from a Hugging Face checkpoint directory's <c>config.json</c> (Qwen2-MoE, Qwen3-MoE,
    /// Mixtral, DeepSeek-V3), routing as the family's modeling code does; see <see cref="Checkpoints.HfMoeConfig"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The config is missing a key, malformed or of another family.</exception>
    public static MoeLayerArgs FromHfConfig(string checkpointDirectory) =>
        Checkpoints.HfMoeConfig.Read(checkpointDirectory).Args;

    /// <summary>D, the model dimension: the length of a token row in and out of the layer.</summary>
    public int Dim { get; }

    /// <summary>H, each routed expert's hidden dimension.</summary>
    public int Hidden { get; }

    /// <summary>E, the routed experts over all ranks.</summary>
    public int NumExperts { get; }

    /// <summary>K, the experts each token is routed to.</summary>
    public int TopK { get; }

    /// <summary>Softmax or sigmoid over the router logits.</summary>
    public ScoreFunction ScoreFunc { get; init; } = ScoreFunction.Softmax;

    /// <summary>Normalize the chosen scores to sum to one.</summary>
    public bool RouteNorm { get; init; }

    /// <summary>Factor on the routing weights.</summary>
    public float RouteScale { get; init; } = 1f;

    /// <summary>G for node-limited routing (0: off).</summary>
    public int NumExpertGroups { get; init; }

    /// <summary>Groups kept eligible per token when <see cref="NumExpertGroups"/> &gt; 0.</summary>
    public int NumLimitedGroups { get; init; }

    /// <summary>
    /// With node-limited routing: false (torchtitan) leaves the experts of the groups not kept out of the choice;
    /// true (transformers' DeepSeek-V3) lets them compete with the choice score +0. See
    /// <see cref="TokenChoiceTopKRouter.ZeroDiscardedGroups"/>.
    /// </summary>
    public bool ZeroDiscardedGroups { get; init; }

    /// <summary>Hs, the shared expert's hidden dim; 0 means no shared expert.</summary>
    public int SharedHidden { get; init; }

    /// <summary>
    /// Qwen2-MoE's <c>shared_expert_gate</c>: the shared expert's output is multiplied per token by
    /// <c>sigmoid(x · g)</c>, g a learned [1, D] weight (golden name <c>shared.gate.weight</c>). Needs a shared expert.
    /// </summary>
    public bool SharedExpertGate { get; init; }

    /// <summary>
    /// Auxiliary-loss-free load balancing: the router chooses with an expert bias ([E], golden name
    /// <c>router.expert_bias</c>) that <see cref="MoeLayer.UpdateExpertBias"/> adjusts.
    /// </summary>
    public bool LoadBalancing { get; init; }
}
