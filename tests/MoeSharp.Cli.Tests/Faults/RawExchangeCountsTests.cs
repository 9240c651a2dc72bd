using MoeSharp.Cli.Benchmarks;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// The raw MPI_Alltoallv baseline's byte counts are ints: a total beyond one is refused, never wrapped.
/// </summary>
public class RawExchangeCountsTests
{
    [Fact]
    public void ByteCounts_AreTheElementsTimesTheirSize_WhileTheTotalFitsAnInt()
    {
        Assert.Equal([8, 0, 12], ExchangeBenchmark.ByteCounts([2, 0, 3], 4)!);
        // 2^29 - 1 floats and one more: 2^31 bytes in all, one past int (each count fits, the displacement not).
        Assert.Equal([int.MaxValue - 3], ExchangeBenchmark.ByteCounts([(1 << 29) - 1], 4)!);
        Assert.Null(ExchangeBenchmark.ByteCounts([(1 << 29) - 1, 1], 4));
        Assert.Null(ExchangeBenchmark.ByteCounts([1 << 30], 4));
    }
}
