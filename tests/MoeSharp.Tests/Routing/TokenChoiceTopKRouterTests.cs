using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Routing;

public sealed class TokenChoiceTopKRouterTests
{
    /// <summary>
    /// A router whose logits equal chosen values: D = E, gate = identity, so x's row is the logit row.
    /// </summary>
    private static (TokenChoiceTopKRouter Router, Tensor X) WithLogits(
        float[][] logits,
        int topK,
        ScoreFunction scoreFunc = ScoreFunction.Softmax,
        bool routeNorm = false,
        float routeScale = 1f,
        int groups = 0,
        int limited = 0
    )
    {
        int e = logits[0].Length;
        var router = new TokenChoiceTopKRouter(e, e, topK, scoreFunc, routeNorm, routeScale, groups, limited);
        Span<float> gate = router.GateWeight.AsSpan<float>();
        for (int i = 0; i < e; i++)
            gate[(i * e) + i] = 1f;
        return (router, Tensor.FromArray(logits.SelectMany(r => r).ToArray(), logits.Length, e));
    }

    [Fact]
    public void K_equals_E_picks_every_expert_and_softmax_weights_sum_to_one()
    {
        var (router, x) = WithLogits(
            [
                [0.3f, -1f, 2f, 0.5f],
            ],
            topK: 4
        );
        RouterOutput o = router.Forward(x);
        Assert.Equal([0L, 1, 2, 3], o.ExpertIds.AsSpan<long>().ToArray());
        Assert.Equal(1f, o.TopScores.AsSpan<float>().ToArray().Sum(), 5);
        Assert.Equal([1L, 1, 1, 1], o.TokensPerExpert.AsSpan<long>().ToArray());
    }

    [Fact]
    public void K_one_picks_the_argmax_and_scales()
    {
        var (router, x) = WithLogits(
            [
                [0.3f, -1f, 2f, 0.5f],
                [5f, 1f, 1f, 1f],
            ],
            topK: 1,
            ScoreFunction.Sigmoid,
            routeScale: 2f
        );
        RouterOutput o = router.Forward(x);
        Assert.Equal([2L, 0], o.ExpertIds.AsSpan<long>().ToArray());
        Assert.Equal(2f / (1f + MathF.Exp(-2f)), o.TopScores.AsSpan<float>()[0], 6);
        Assert.Equal([1L, 0, 1, 0], o.TokensPerExpert.AsSpan<long>().ToArray());
    }

    [Fact]
    public void Ties_go_to_the_lower_expert_id()
    {
        var (router, x) = WithLogits(
            [
                [1f, 1f, 1f, 1f, 1f],
                [0f, 2f, 1f, 2f, 1f],
            ],
            topK: 2
        );
        RouterOutput o = router.Forward(x);
        Assert.Equal([0L, 1, 1, 3], o.ExpertIds.AsSpan<long>().ToArray());
        (router, x) = WithLogits(
            [
                [0f, 2f, 1f, 2f, 1f],
            ],
            topK: 3
        );
        Assert.Equal([1L, 2, 3], router.Forward(x).ExpertIds.AsSpan<long>().ToArray());
    }

    [Fact]
    public void Ids_are_ascending_with_their_scores()
    {
        var (router, x) = WithLogits(
            [
                [0f, 3f, 1f, 2f],
            ],
            topK: 3,
            ScoreFunction.Sigmoid
        );
        RouterOutput o = router.Forward(x);
        Assert.Equal([1L, 2, 3], o.ExpertIds.AsSpan<long>().ToArray());
        float Sig(float z) => 1f / (1f + MathF.Exp(-z));
        Assert.Equal([Sig(3f), Sig(1f), Sig(2f)], o.TopScores.AsSpan<float>().ToArray());
    }

    [Fact]
    public void Node_limited_routing_keeps_the_best_groups_by_sum_of_two_best()
    {
        // Groups of 2: g0 = {9, -9} → sum 0; g1 = {1, 1} → 2; g2 = {0.5, 0.6} → 1.1. Best two groups: g1, g2,
        // so expert 0 (the single best expert) is not eligible.
        var (router, x) = WithLogits(
            [
                [9f, -9f, 1f, 1f, 0.5f, 0.6f],
            ],
            topK: 2,
            ScoreFunction.Sigmoid,
            groups: 3,
            limited: 2
        );
        Assert.Equal([2L, 3], router.Forward(x).ExpertIds.AsSpan<long>().ToArray());
        // Equal group scores: the lower group id wins.
        (router, x) = WithLogits(
            [
                [1f, 1f, 1f, 1f, 0f, 0f],
            ],
            topK: 2,
            ScoreFunction.Sigmoid,
            groups: 3,
            limited: 1
        );
        Assert.Equal([0L, 1], router.Forward(x).ExpertIds.AsSpan<long>().ToArray());
    }

    [Fact]
    public void Bias_changes_the_choice_but_not_the_scores()
    {
        var (router, x) = WithLogits(
            [
                [2f, 1f, 0f, -1f],
            ],
            topK: 2,
            ScoreFunction.Softmax,
            routeNorm: false
        );
        RouterOutput plain = router.Forward(x);
        Assert.Equal([0L, 1], plain.ExpertIds.AsSpan<long>().ToArray());
        RouterOutput biased = router.Forward(x, Tensor.FromArray([0f, 0f, 0f, 5f], 4));
        Assert.Equal([0L, 3], biased.ExpertIds.AsSpan<long>().ToArray());
        Span<float> s = plain.Scores.AsSpan<float>();
        Assert.Equal([s[0], s[3]], biased.TopScores.AsSpan<float>().ToArray());
    }

    [Fact]
    public void Route_norm_divides_by_the_sum_of_chosen_scores()
    {
        var (router, x) = WithLogits(
            [
                [2f, 1f, 0f, -1f],
            ],
            topK: 2,
            ScoreFunction.Sigmoid,
            routeNorm: true,
            routeScale: 3f
        );
        float[] ts = router.Forward(x).TopScores.AsSpan<float>().ToArray();
        Assert.Equal(3f, ts.Sum(), 5);
    }

    [Fact]
    public void Zero_tokens_work_forward_and_backward()
    {
        var router = new TokenChoiceTopKRouter(3, 4, 2);
        var x = Tensor.Zeros(DType.Float32, 0, 3);
        RouterOutput o = router.Forward(x);
        Assert.Equal([0, 2], o.ExpertIds.ShapeArray());
        RouterGradients g = router.Backward(o, x, Tensor.Zeros(DType.Float32, 0, 2));
        Assert.All(g.GradGateWeight.AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Invalid_configuration_and_inputs_are_rejected_with_the_argument_name()
    {
        Assert.Equal(
            "topK",
            Assert.Throws<ArgumentOutOfRangeException>(() => new TokenChoiceTopKRouter(4, 4, 5)).ParamName
        );
        Assert.Equal(
            "numExpertGroups",
            Assert
                .Throws<ArgumentException>(() =>
                    new TokenChoiceTopKRouter(4, 6, 2, numExpertGroups: 4, numLimitedGroups: 1)
                )
                .ParamName
        );
        Assert.Equal(
            "numLimitedGroups",
            Assert
                .Throws<ArgumentException>(() =>
                    new TokenChoiceTopKRouter(4, 8, 5, numExpertGroups: 4, numLimitedGroups: 2)
                )
                .ParamName
        );
        var router = new TokenChoiceTopKRouter(4, 8, 2);
        Assert.Equal(
            "x",
            Assert.Throws<ArgumentException>(() => router.Forward(Tensor.Zeros(DType.Float32, 2, 5))).ParamName
        );
        Assert.Equal(
            "expertBias",
            Assert
                .Throws<ArgumentException>(() =>
                    router.Forward(Tensor.Zeros(DType.Float32, 2, 4), Tensor.Zeros(DType.Float32, 7))
                )
                .ParamName
        );
    }
}
