using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// In-process ranks allocate at the same time, so a layer run's memory check sums them: the decision, with the
/// available bytes given.
/// </summary>
public class LayerWorldMemoryTests
{
    private static readonly LayerLayout World4 = new(4, 1, SequenceLayout.Replicated, SpShardingPolicy.PadToMultiple);

    [Fact]
    public void RanksThatFitOneAtATime_AreRefusedTogether_WithTheFigures()
    {
        const long gb = 1_000_000_000;
        var ex = Assert.Throws<SizeLimitException>(() =>
            LayerWorldMemory.EnsureFits(World4, gb, gb / 2, 1000, ranksOnHost: true, "the test layer", 3 * gb)
        );
        Assert.Equal(4 * gb + gb / 2, ex.NeededBytes);
        Assert.Contains("needs 4.5 GB of host memory for 4 in-process ranks (world 4 sp 1", ex.Message);
        Assert.Contains("of 1.0 GB each and 500 MB besides: the test layer, 3.0 GB available", ex.Message);

        LayerWorldMemory.EnsureFits(World4, gb / 2, gb / 2, 1000, ranksOnHost: true, "the test layer", 3 * gb);
    }

    [Fact]
    public void RanksOnADevice_LeaveOnlyTheSharedBytesToTheHost()
    {
        const long gb = 1_000_000_000;
        LayerWorldMemory.EnsureFits(World4, 100 * gb, gb, 1000, ranksOnHost: false, "the test layer", 3 * gb);
        Assert.Throws<SizeLimitException>(() =>
            LayerWorldMemory.EnsureFits(World4, 1, 4 * gb, 1000, ranksOnHost: false, "the test layer", 3 * gb)
        );
    }

    [Fact]
    public void ATensorNoTensorCanIndex_IsRefusedWhateverTheMemory()
    {
        var ex = Assert.Throws<SizeLimitException>(() =>
            LayerWorldMemory.EnsureFits(World4, 1, 1, 1L << 32, ranksOnHost: true, "the test layer", long.MaxValue)
        );
        Assert.Contains("one tensor of the test layer (world 4 sp 1", ex.Message);
    }
}
