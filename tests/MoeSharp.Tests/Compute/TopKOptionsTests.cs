using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Routing;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// <see cref="TopKOptions"/>: the denominator every backend divides by and the validity rule of its groups.
/// </summary>
public sealed class TopKOptionsTests
{
    [Fact]
    public void Denominator_IsTheSumPlusEpsilonOnlyWithRouteNorm()
    {
        Assert.Equal(1f, TopKOptions.Default.Denominator(0.75f));
        var norm = new TopKOptions { RouteNorm = true };
        Assert.Equal(0.75f + TopKOptions.DefaultNormEpsilon, norm.Denominator(0.75f));
        Assert.Equal(0.5f, (norm with { NormEpsilon = 0.25f }).Denominator(0.25f));
        // A zero sum stays finite with the default ε: the chosen scores become 0, not NaN.
        Assert.True(float.IsFinite(0f / norm.Denominator(0f)));
    }

    [Fact]
    public void Problem_NamesTheValues()
    {
        Assert.Null(TopKOptions.Default.Problem(8, 2));
        Assert.Contains("top-k 9", TopKOptions.Default.Problem(8, 9));
        static TopKOptions Groups(int g, int l) => new() { NumExpertGroups = g, NumLimitedGroups = l };
        Assert.Contains("num_expert_groups 3", Groups(3, 1).Problem(8, 2));
        Assert.Contains("num_limited_groups 5", Groups(4, 5).Problem(8, 2));
        Assert.Contains("fewer than top-k 5", Groups(4, 2).Problem(8, 5));
        Assert.Contains("needs num_expert_groups", new TopKOptions { NumLimitedGroups = 1 }.Problem(8, 2));
        Assert.Contains("route scale", new TopKOptions { RouteScale = float.NaN }.Problem(8, 2));
    }

    [Fact]
    public void Problem_AcceptsExactlyWhatTheRouterAccepts()
    {
        Gen.Select(Gen.Int[1, 12], Gen.Int[0, 13], Gen.Int[0, 6], Gen.Int[0, 7])
            .Sample(
                (experts, k, groups, limited) =>
                {
                    var options = new TopKOptions { NumExpertGroups = groups, NumLimitedGroups = limited };
                    bool routerAccepts;
                    try
                    {
                        _ = new TokenChoiceTopKRouter(
                            2,
                            experts,
                            k,
                            numExpertGroups: groups,
                            numLimitedGroups: limited
                        );
                        routerAccepts = true;
                    }
                    catch (ArgumentException)
                    {
                        routerAccepts = false;
                    }
                    Assert.Equal(routerAccepts, options.Problem(experts, k) is null);
                },
                iter: 400
            );
    }

    [Fact]
    public void Router_HandsItsOptionsToTheKernels()
    {
        var router = new TokenChoiceTopKRouter(
            2,
            8,
            2,
            routeNorm: true,
            routeScale: 2.5f,
            numExpertGroups: 4,
            numLimitedGroups: 2
        )
        {
            ZeroDiscardedGroups = true,
        };
        Assert.Equal(
            new TopKOptions
            {
                NumExpertGroups = 4,
                NumLimitedGroups = 2,
                RouteNorm = true,
                RouteScale = 2.5f,
                ZeroDiscardedGroups = true,
            },
            router.Options
        );
    }

    [Fact]
    public void HostTopK_RejectsOptionsThatCannotRoute()
    {
        var scores = MoeSharp.Tensors.Tensor.Zeros(MoeSharp.Tensors.DType.Float32, 2, 6);
        var top = MoeSharp.Tensors.Tensor.Zeros(MoeSharp.Tensors.DType.Float32, 2, 2);
        var ids = MoeSharp.Tensors.Tensor.Zeros(MoeSharp.Tensors.DType.Int64, 2, 2);
        var bad = new TopKOptions { NumExpertGroups = 4, NumLimitedGroups = 1 };
        var e = Assert.Throws<ArgumentException>(() => HostRouterKernels.Instance.TopK(scores, null, bad, top, ids));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("num_expert_groups 4", e.Message);
    }
}
