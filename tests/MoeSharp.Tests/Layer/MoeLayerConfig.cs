using MoeSharp.Routing;

namespace MoeSharp.Tests.Layer;

/// <summary>Hyper-parameters of one MoE layer as in the golden files' metadata (test support).</summary>
internal sealed record MoeLayerConfig(
    int Dim,
    int Hidden,
    int Experts,
    int TopK,
    ScoreFunction ScoreFunc,
    bool RouteNorm,
    float RouteScale,
    bool ScoreBeforeExperts,
    int NumExpertGroups,
    int NumLimitedGroups,
    int SharedHidden,
    bool HasExpertBias
)
{
    /// <summary>Parameter names and shapes (excluding <c>x</c>), in golden-file naming.</summary>
    public IEnumerable<(string Name, int[] Shape)> Parameters()
    {
        yield return ("router.gate.weight", [Experts, Dim]);
        yield return ("experts.w1", [Experts, Hidden, Dim]);
        yield return ("experts.w2", [Experts, Dim, Hidden]);
        yield return ("experts.w3", [Experts, Hidden, Dim]);
        if (SharedHidden > 0)
        {
            yield return ("shared.w1", [SharedHidden, Dim]);
            yield return ("shared.w2", [Dim, SharedHidden]);
            yield return ("shared.w3", [SharedHidden, Dim]);
        }
    }

    /// <summary>Reads the config from a golden file's metadata.</summary>
    public static MoeLayerConfig FromMetadata(IReadOnlyDictionary<string, string> m, bool hasBias) =>
        new(
            int.Parse(m["dim"]),
            int.Parse(m["hidden"]),
            int.Parse(m["experts"]),
            int.Parse(m["top_k"]),
            m["score_func"] == "softmax" ? ScoreFunction.Softmax : ScoreFunction.Sigmoid,
            bool.Parse(m["route_norm"]),
            float.Parse(m["route_scale"], System.Globalization.CultureInfo.InvariantCulture),
            bool.Parse(m["score_before_experts"]),
            int.Parse(m["num_expert_groups"]),
            int.Parse(m["num_limited_groups"]),
            int.Parse(m["shared_hidden"]),
            hasBias
        );
}
