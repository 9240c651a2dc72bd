using MoeSharp.Experts;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// Test-only single-rank composition of the library pieces (router, grouped experts, shared expert) into
/// one MoE layer, forward and backward, in float32: routed rows are expert-major (stable by token), each
/// token's output is the shared expert's output plus its routed terms in ascending expert id. The
/// multi-rank layer will replace the local reorder with the dispatcher.
/// </summary>
internal sealed class SingleRankMoeLayer
{
    public SingleRankMoeLayer(MoeLayerConfig c)
    {
        Config = c;
        Router = new TokenChoiceTopKRouter(
            c.Dim,
            c.Experts,
            c.TopK,
            c.ScoreFunc,
            c.RouteNorm,
            c.RouteScale,
            c.NumExpertGroups,
            c.NumLimitedGroups
        );
        Experts = new GroupedExperts(c.Experts, c.Dim, c.Hidden);
        Shared = c.SharedHidden > 0 ? new SharedExpert(c.Dim, c.SharedHidden) : null;
        ExpertBias = c.HasExpertBias ? Tensor.Zeros(DType.Float32, c.Experts) : null;
    }

    public MoeLayerConfig Config { get; }
    public TokenChoiceTopKRouter Router { get; }
    public GroupedExperts Experts { get; }
    public SharedExpert? Shared { get; }
    public Tensor? ExpertBias { get; }

    /// <summary>The parameter tensor stored under a golden name.</summary>
    public Tensor Parameter(string name) =>
        name switch
        {
            "router.gate.weight" => Router.GateWeight,
            "router.expert_bias" => ExpertBias!,
            "experts.w1" => Experts.W1,
            "experts.w2" => Experts.W2,
            "experts.w3" => Experts.W3,
            "shared.w1" => Shared!.W1,
            "shared.w2" => Shared!.W2,
            "shared.w3" => Shared!.W3,
            _ => throw new ArgumentException($"unknown parameter {name}", nameof(name)),
        };

    internal sealed record State(
        Tensor X,
        Tensor Out,
        RouterOutput Routing,
        SwiGluForwardResult Routed,
        SwiGluForwardResult? SharedForward,
        int[] RowOfSlot
    );

    public State Forward(Tensor x)
    {
        int tokens = x.Dim(0),
            d = Config.Dim,
            k = Config.TopK;
        RouterOutput routing = Router.Forward(x, ExpertBias);
        long[] ids = routing.ExpertIds.AsSpan<long>().ToArray();
        ReadOnlySpan<float> scores = routing.TopScores.AsSpan<float>();

        // Expert-major order, stable in (token, slot): the local equivalent of the dispatch permutation.
        int[] order = Enumerable.Range(0, tokens * k).OrderBy(i => ids[i]).ThenBy(i => i).ToArray();
        var rowOfSlot = new int[tokens * k];
        var routed = Tensor.Uninitialized(DType.Float32, tokens * k, d);
        for (int r = 0; r < order.Length; r++)
        {
            int slot = order[r];
            rowOfSlot[slot] = r;
            ReadOnlySpan<float> src = x.Row<float>(slot / k);
            Span<float> dst = routed.Row<float>(r);
            float s = Config.ScoreBeforeExperts ? scores[slot] : 1f;
            for (int j = 0; j < d; j++)
                dst[j] = Config.ScoreBeforeExperts ? src[j] * s : src[j];
        }
        SwiGluForwardResult expertsForward = Experts.Forward(routed, routing.TokensPerExpert.AsSpan<long>());
        SwiGluForwardResult? sharedForward = Shared?.Forward(x);

        var output = sharedForward is null ? Tensor.Zeros(DType.Float32, tokens, d) : sharedForward.Output.Clone();
        for (int t = 0; t < tokens; t++)
        {
            Span<float> o = output.Row<float>(t);
            for (int j = 0; j < k; j++) // ids ascend within a token: terms are added in ascending expert id
            {
                int slot = (t * k) + j;
                ReadOnlySpan<float> y = expertsForward.Output.Row<float>(rowOfSlot[slot]);
                for (int q = 0; q < d; q++)
                    o[q] += Config.ScoreBeforeExperts ? y[q] : scores[slot] * y[q];
            }
        }
        return new State(x, output, routing, expertsForward, sharedForward, rowOfSlot);
    }

    /// <summary>Gradients of <c>Σ out ⊙ gradOut</c>, keyed by golden names (<c>x</c> included).</summary>
    public Dictionary<string, Tensor> Backward(State state, Tensor gradOut)
    {
        int tokens = state.X.Dim(0),
            d = Config.Dim,
            k = Config.TopK;
        ReadOnlySpan<float> scores = state.Routing.TopScores.AsSpan<float>();
        var gradRouted = Tensor.Uninitialized(DType.Float32, tokens * k, d);
        for (int slot = 0; slot < tokens * k; slot++)
        {
            ReadOnlySpan<float> g = gradOut.Row<float>(slot / k);
            Span<float> dst = gradRouted.Row<float>(state.RowOfSlot[slot]);
            for (int q = 0; q < d; q++)
                dst[q] = Config.ScoreBeforeExperts ? g[q] : scores[slot] * g[q];
        }
        SwiGluGradients expertGrads = Experts.Backward(state.Routed, gradRouted);

        var gradX = Tensor.Zeros(DType.Float32, tokens, d);
        var gradTop = Tensor.Uninitialized(DType.Float32, tokens, k);
        for (int slot = 0; slot < tokens * k; slot++)
        {
            int t = slot / k,
                r = state.RowOfSlot[slot];
            ReadOnlySpan<float> dxr = expertGrads.GradX.Row<float>(r);
            ReadOnlySpan<float> xt = state.X.Row<float>(t);
            Span<float> dx = gradX.Row<float>(t);
            double dot = 0;
            if (Config.ScoreBeforeExperts)
            {
                // v = s·x: dL/ds = <dL/dv, x>, dL/dx += s·dL/dv.
                for (int q = 0; q < d; q++)
                {
                    dot += dxr[q] * xt[q];
                    dx[q] += scores[slot] * dxr[q];
                }
            }
            else
            {
                // term = s·f(x): dL/ds = <g, f(x)>, dL/dx += J_fᵀ (s·g), already in dxr.
                ReadOnlySpan<float> y = state.Routed.Output.Row<float>(r);
                ReadOnlySpan<float> g = gradOut.Row<float>(t);
                for (int q = 0; q < d; q++)
                {
                    dot += g[q] * y[q];
                    dx[q] += dxr[q];
                }
            }
            gradTop.AsSpan<float>()[slot] = (float)dot;
        }

        RouterGradients routerGrads = Router.Backward(state.Routing, state.X, gradTop);
        Add(gradX, routerGrads.GradX);
        var grads = new Dictionary<string, Tensor>
        {
            ["x"] = gradX,
            ["router.gate.weight"] = routerGrads.GradGateWeight,
            ["experts.w1"] = expertGrads.GradW1,
            ["experts.w2"] = expertGrads.GradW2,
            ["experts.w3"] = expertGrads.GradW3,
        };
        if (Shared is not null)
        {
            SwiGluGradients sharedGrads = Shared.Backward(state.SharedForward!, gradOut);
            Add(gradX, sharedGrads.GradX);
            grads["shared.w1"] = sharedGrads.GradW1;
            grads["shared.w2"] = sharedGrads.GradW2;
            grads["shared.w3"] = sharedGrads.GradW3;
        }
        return grads;
    }

    private static void Add(Tensor into, Tensor add)
    {
        Span<float> a = into.AsSpan<float>();
        ReadOnlySpan<float> b = add.AsSpan<float>();
        for (int i = 0; i < a.Length; i++)
            a[i] += b[i];
    }
}
