using CsCheck;
using MoeSharp.Collectives;

namespace MoeSharp.Tests.Collectives;

/// <summary>All-to-all-v over random worlds and random (often zero) chunk sizes, sync and async.</summary>
public class AllToAllVPropertyTests
{
    /// <summary>A world size, a row length, and the rows rank p sends to rank q at [p * size + q].</summary>
    private static readonly Gen<(int Size, int RowLength, int[] Rows)> Layouts =
        from size in Gen.Int[1, 8]
        from rowLength in Gen.Int[1, 4]
        from rows in Gen.Frequency((1, Gen.Const(0)), (2, Gen.Int[0, 6])).Array[size * size]
        select (size, rowLength, rows);

    [Fact]
    public void EveryRowArrivesAtItsDestination_InSourceOrder()
    {
        Layouts.Sample(layout => Check(layout, useAsync: false), iter: 40, threads: 1);
    }

    [Fact]
    public void AsyncForm_MovesTheSameRows()
    {
        Layouts.Sample(layout => Check(layout, useAsync: true), iter: 40, threads: 1);
    }

    private static void Check((int Size, int RowLength, int[] Rows) layout, bool useAsync)
    {
        var (size, d, rows) = layout;
        float Value(int p, int q, int i) => p * 10_000 + q * 100 + i + 0.5f;

        var received = InProcessWorld.Run(
            size,
            g =>
            {
                int me = g.Rank;
                int[] sendCounts = Enumerable.Range(0, size).Select(q => rows[me * size + q] * d).ToArray();
                int[] receiveCounts = Enumerable.Range(0, size).Select(p => rows[p * size + me] * d).ToArray();
                var send = Enumerable
                    .Range(0, size)
                    .SelectMany(q => Enumerable.Range(0, sendCounts[q]).Select(i => Value(me, q, i)))
                    .ToArray();
                var receive = new float[receiveCounts.Sum()];
                if (useAsync)
                    g.AllToAllVAsync<float>(send, sendCounts, receive, receiveCounts).Wait();
                else
                    g.AllToAllV<float>(send, sendCounts, receive, receiveCounts);
                return receive;
            },
            TimeSpan.FromSeconds(20)
        );

        for (int q = 0; q < size; q++)
        {
            var expected = Enumerable
                .Range(0, size)
                .SelectMany(p => Enumerable.Range(0, rows[p * size + q] * d).Select(i => Value(p, q, i)));
            Assert.Equal(expected, received[q]);
        }
    }
}
