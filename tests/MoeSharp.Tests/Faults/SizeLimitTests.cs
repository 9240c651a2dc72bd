using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// Sizes are computed in 64 bits and refused before allocation, with a <see cref="SizeLimitException"/>.
/// </summary>
public class SizeLimitTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(1 << 30)] // 4 local experts × 2^30 rows: more rows than an int holds (the int product wraps)
    [InlineData(2_000_000_000)] // AlignUp itself would overflow an int
    public void HugeAlignment_IsRefusedBeforeAllocation_OnEveryLayout(int alignment)
    {
        var config = new TokenDispatcherConfig(8, 2) { ExpertAlignment = alignment };
        var x = Tensor.FromArray(new float[6 * 4], 6, 4);
        var scores = Tensor.FromArray(new float[12], 6, 2);
        var ids = Tensor.FromArray(new int[] { 0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 4, 6 }, 6, 2);
        var local = Assert.Throws<SizeLimitException>(() => new LocalTokenDispatcher(config).Dispatch(x, scores, ids));
        Assert.Contains("expert alignment", local.Message);

        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, 1);
                    new AllToAllTokenDispatcher(config, groups).Dispatch(x, scores, ids);
                },
                Timeout
            )
        );
        Assert.IsType<SizeLimitException>(error.InnerException);
    }

    [Fact]
    public void MemoryBudget_RefusesWhatTheMachineCannotHold()
    {
        var error = Assert.Throws<SizeLimitException>(() =>
            MemoryBudget.EnsureHostFits(long.MaxValue / 2, "per process")
        );
        Assert.Matches(@"^needs [\d.]+ [KMGT]B of host memory per process, [\d.]+ [KMGT]B available$", error.Message);
        Assert.Equal(long.MaxValue / 2, error.NeededBytes);
        MemoryBudget.EnsureHostFits(1024, "per process");
        Assert.Throws<SizeLimitException>(() => MemoryBudget.EnsureTensorFits((long)int.MaxValue + 1, "x"));
        Assert.Equal(long.MaxValue, MemoryBudget.Multiply(long.MaxValue / 2, 3));
    }

    [Fact]
    public void TensorLimit_IsWhatAnArrayHolds_NotIntMaxValue()
    {
        // Counts in (Array.MaxLength, int.MaxValue] passed every estimate, then failed at the allocation.
        Assert.Equal(MemoryBudget.MaxTensorElements, Array.MaxLength);
        MemoryBudget.EnsureTensorFits(Array.MaxLength, "x");
        var error = Assert.Throws<SizeLimitException>(() => MemoryBudget.EnsureTensorFits(Array.MaxLength + 1L, "x"));
        Assert.Contains("2147483592 elements, more than the 2147483591 a tensor can index", error.Message);
    }

    [Fact]
    public void MemoryEstimate_GrowsWithTheProblem_AndSaturatesInsteadOfWrapping()
    {
        var config = new TokenDispatcherConfig(8, 2);
        long small = DispatchMemoryEstimate.BytesPerRank(config, 2, 1, 1000, 64, DType.Float32);
        long large = DispatchMemoryEstimate.BytesPerRank(config, 2, 1, 1_000_000, 1024, DType.Float32);
        Assert.True(large > 1000 * small, $"{small} → {large}");
        // 1e6 tokens × D 1024 × (3 token copies + entries + 3 routed copies of 2 entries each) × 4 bytes, at least.
        Assert.True(large > 1_000_000L * 1024 * 4 * 9, large.ToString());
        var huge = config with { ExpertAlignment = int.MaxValue };
        Assert.Equal(
            long.MaxValue,
            DispatchMemoryEstimate.BytesPerRank(huge, 1, 1, int.MaxValue, int.MaxValue, DType.Float32)
        );
    }

    [Fact]
    public void InProcessWorld_RefusesMoreRanksThanItsLimit_BeforeStartingAnyThread()
    {
        int started = 0;
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            InProcessWorld.Run(InProcessWorld.MaxRanks + 1, _ => Interlocked.Increment(ref started))
        );
        Assert.Equal(0, started);
    }
}
