using MoeSharp.Collectives;

namespace MoeSharp.Tests.Collectives;

/// <summary>Each collective of the in-process group on worlds of 1 to 8 ranks.</summary>
public class InProcessCollectivesTests
{
    public static TheoryData<int> Sizes => new() { 1, 2, 3, 4, 5, 8 };

    /// <summary>A value that says who sent it to whom: rank p's element i of its chunk for q.</summary>
    private static int Tag(int p, int q, int i) => p * 1_000_000 + q * 1_000 + i;

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Run_ReturnsEachRanksResult_AndGroupsDescribeTheWorld(int size)
    {
        var results = InProcessWorld.Run(size, g => (g.Rank, g.Size, WorldRanks: g.WorldRanks.ToArray(), g.Timeout));

        for (int r = 0; r < size; r++)
        {
            Assert.Equal(r, results[r].Rank);
            Assert.Equal(size, results[r].Size);
            Assert.Equal(Enumerable.Range(0, size), results[r].WorldRanks);
            Assert.Equal(TimeSpan.FromSeconds(60), results[r].Timeout);
        }
    }

    [Fact]
    public void Timeout_IsConfigurable()
    {
        var timeouts = InProcessWorld.Run(2, g => g.Timeout, TimeSpan.FromSeconds(5));
        Assert.All(timeouts, t => Assert.Equal(TimeSpan.FromSeconds(5), t));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Barrier_ReturnsOnlyAfterEveryRankEntered(int size)
    {
        int entered = 0;
        var seen = InProcessWorld.Run(
            size,
            g =>
            {
                Interlocked.Increment(ref entered);
                g.Barrier();
                int count = Volatile.Read(ref entered);
                g.Barrier();
                return count;
            }
        );

        Assert.All(seen, count => Assert.Equal(size, count));
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(2, 3)]
    [InlineData(3, 1)]
    [InlineData(4, 0)]
    [InlineData(8, 5)]
    public void AllToAll_SendsChunkQToRankQ(int size, int chunk)
    {
        var received = InProcessWorld.Run(
            size,
            g =>
            {
                var send = new int[size * chunk];
                for (int q = 0; q < size; q++)
                for (int i = 0; i < chunk; i++)
                    send[q * chunk + i] = Tag(g.Rank, q, i);
                var receive = new int[size * chunk];
                g.AllToAll<int>(send, receive);
                return receive;
            }
        );

        for (int q = 0; q < size; q++)
        for (int p = 0; p < size; p++)
        for (int i = 0; i < chunk; i++)
            Assert.Equal(Tag(p, q, i), received[q][p * chunk + i]);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void AllToAllV_DeliversVariableChunksRankMajor_IncludingEmptyOnes(int size)
    {
        // Rank p sends (p + q) % 3 elements to q: zero-length chunks on every rank.
        int Count(int p, int q) => (p + q) % 3;
        var received = InProcessWorld.Run(size, g => AllToAllVWithCounts(g, Count));

        for (int q = 0; q < size; q++)
        {
            var expected = Enumerable
                .Range(0, size)
                .SelectMany(p => Enumerable.Range(0, Count(p, q)).Select(i => Tag(p, q, i)));
            Assert.Equal(expected, received[q]);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void AllToAllV_WithNothingToSend_Completes(int size)
    {
        var received = InProcessWorld.Run(size, g => AllToAllVWithCounts(g, (_, _) => 0));
        Assert.All(received, Assert.Empty);
    }

    [Fact]
    public void AllToAllV_LeavesElementsPastTheCountsUntouched()
    {
        var received = InProcessWorld.Run(
            2,
            g =>
            {
                var send = new[] { 10 * g.Rank, 10 * g.Rank + 1, -7 };
                var receive = new[] { -1, -1, -1 };
                g.AllToAllV<int>(send, [1, 1], receive, [1, 1]);
                return receive;
            }
        );

        Assert.Equal([0, 10, -1], received[0]);
        Assert.Equal([1, 11, -1], received[1]);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void AllGather_ConcatenatesEveryRanksBlockRankMajor(int size)
    {
        var gathered = InProcessWorld.Run(
            size,
            g =>
            {
                var send = Enumerable.Range(0, 4).Select(i => (double)Tag(g.Rank, 0, i)).ToArray();
                var receive = new double[4 * size];
                g.AllGather<double>(send, receive);
                return receive;
            }
        );

        var expected = Enumerable
            .Range(0, size)
            .SelectMany(p => Enumerable.Range(0, 4).Select(i => (double)Tag(p, 0, i)));
        Assert.All(gathered, r => Assert.Equal(expected, r));
    }

    [Fact]
    public void AllGather_OfEmptyBlocks_Completes()
    {
        var gathered = InProcessWorld.Run(
            3,
            g =>
            {
                var receive = Array.Empty<long>();
                g.AllGather<long>(ReadOnlySpan<long>.Empty, receive);
                return receive.Length;
            }
        );
        Assert.All(gathered, n => Assert.Equal(0, n));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void AllReduceSum_Float_AddsInRankOrder_BitwiseEqualEverywhere(int size)
    {
        // Magnitudes far apart make float addition order-sensitive; 37 values cover vector lanes and the tail.
        float Value(int rank, int i) => (rank % 2 == 0 ? 1e8f : 1f) * (i + 1) * (rank % 3 == 1 ? -1f : 1.37f);
        var sums = InProcessWorld.Run(
            size,
            g =>
            {
                var values = Enumerable.Range(0, 37).Select(i => Value(g.Rank, i)).ToArray();
                g.AllReduceSum(values.AsSpan());
                return values;
            }
        );

        for (int i = 0; i < 37; i++)
        {
            float expected = Value(0, i);
            for (int p = 1; p < size; p++)
                expected += Value(p, i);
            Assert.All(
                sums,
                s => Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(s[i]))
            );
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void AllReduceSum_DoubleAndLong_AddInRankOrder(int size)
    {
        var sums = InProcessWorld.Run(
            size,
            g =>
            {
                var doubles = Enumerable.Range(0, 19).Select(i => Math.Pow(10, g.Rank * 5) * 0.1 * (i + 1)).ToArray();
                var longs = Enumerable.Range(0, 19).Select(i => (long)g.Rank << 33 | (long)i).ToArray();
                g.AllReduceSum(doubles.AsSpan());
                g.AllReduceSum(longs.AsSpan());
                return (doubles, longs);
            }
        );

        for (int i = 0; i < 19; i++)
        {
            double expected = 0.1 * (i + 1);
            long expectedLong = i;
            for (int p = 1; p < size; p++)
            {
                expected += Math.Pow(10, p * 5) * 0.1 * (i + 1);
                expectedLong += (long)p << 33 | (long)i;
            }

            Assert.All(
                sums,
                s =>
                    Assert.Equal(BitConverter.DoubleToInt64Bits(expected), BitConverter.DoubleToInt64Bits(s.doubles[i]))
            );
            Assert.All(sums, s => Assert.Equal(expectedLong, s.longs[i]));
        }
    }

    [Fact]
    public void AllReduceSum_OfNoValues_Completes()
    {
        InProcessWorld.Run(3, g => g.AllReduceSum(Span<float>.Empty));
    }

    [Fact]
    public void ManyCollectivesInARow_StayInStep()
    {
        var totals = InProcessWorld.Run(
            4,
            g =>
            {
                long total = 0;
                var value = new long[1];
                var gathered = new int[4];
                for (int step = 0; step < 200; step++)
                {
                    value[0] = step * 10 + g.Rank;
                    g.AllReduceSum(value.AsSpan());
                    total += value[0];
                    g.AllGather<int>([step + g.Rank], gathered);
                    Assert.Equal(Enumerable.Range(step, 4), gathered);
                }

                return total;
            }
        );

        long expected = Enumerable.Range(0, 200).Sum(step => 4L * step * 10 + 6);
        Assert.All(totals, t => Assert.Equal(expected, t));
    }

    /// <summary>Rank g.Rank sends count(rank, q) tagged elements to each q; returns what it received.</summary>
    internal static int[] AllToAllVWithCounts(IProcessGroup g, Func<int, int, int> count)
    {
        int size = g.Size,
            me = g.Rank;
        int[] sendCounts = Enumerable.Range(0, size).Select(q => count(me, q)).ToArray();
        int[] receiveCounts = Enumerable.Range(0, size).Select(p => count(p, me)).ToArray();
        var send = Enumerable
            .Range(0, size)
            .SelectMany(q => Enumerable.Range(0, sendCounts[q]).Select(i => Tag(me, q, i)))
            .ToArray();
        var receive = new int[receiveCounts.Sum()];
        g.AllToAllV<int>(send, sendCounts, receive, receiveCounts);
        return receive;
    }
}
