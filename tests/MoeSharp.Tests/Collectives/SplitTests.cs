using MoeSharp.Collectives;

namespace MoeSharp.Tests.Collectives;

/// <summary>Sub-groups made by Split, used alongside the world.</summary>
public class SplitTests
{
    [Fact]
    public void SplitByPairs_FormsGroupsOrderedByKeyThenRank()
    {
        var results = InProcessWorld.Run(
            8,
            g =>
            {
                using var pair = g.Split(g.Rank / 2, 0);
                using var parity = g.Split(g.Rank % 2, -g.Rank); // reverse order by key
                return (
                    pair.Rank,
                    pair.Size,
                    Pair: pair.WorldRanks.ToArray(),
                    parity.Rank,
                    Parity: parity.WorldRanks.ToArray()
                );
            }
        );

        for (int r = 0; r < 8; r++)
        {
            Assert.Equal(r % 2, results[r].Item1);
            Assert.Equal(2, results[r].Size);
            Assert.Equal([r / 2 * 2, r / 2 * 2 + 1], results[r].Pair);
            int[] parity = r % 2 == 0 ? [6, 4, 2, 0] : [7, 5, 3, 1];
            Assert.Equal(parity, results[r].Parity);
            Assert.Equal(Array.IndexOf(parity, r), results[r].Item4);
        }
    }

    [Fact]
    public void SubGroupAndWorldCollectives_Interleave()
    {
        var results = InProcessWorld.Run(
            8,
            g =>
            {
                var pair = g.Split(g.Rank / 2, 0);
                var quad = g.Split(g.Rank / 4, g.Rank);
                var outputs = new List<long>();
                for (int step = 0; step < 20; step++)
                {
                    var v = new long[] { g.Rank + step };
                    pair.AllReduceSum(v.AsSpan());
                    outputs.Add(v[0]);

                    var gathered = new int[4];
                    quad.AllGather<int>([g.Rank], gathered);
                    Assert.Equal(Enumerable.Range(g.Rank / 4 * 4, 4), gathered);

                    var w = new long[] { 1 };
                    g.AllReduceSum(w.AsSpan());
                    outputs.Add(w[0]);

                    var toPeers = new int[] { g.Rank, g.Rank };
                    var fromPeers = new int[2];
                    pair.AllToAll<int>(toPeers, fromPeers);
                    Assert.Equal([g.Rank / 2 * 2, g.Rank / 2 * 2 + 1], fromPeers);
                }

                return outputs.ToArray();
            }
        );

        for (int r = 0; r < 8; r++)
        {
            int first = r / 2 * 2;
            var expected = Enumerable.Range(0, 20).SelectMany(step => new long[] { 2 * step + 2 * first + 1, 8 });
            Assert.Equal(expected, results[r]);
        }
    }

    [Fact]
    public void SplitOfASubGroup_MapsToWorldRanks()
    {
        var results = InProcessWorld.Run(
            8,
            g =>
            {
                var half = g.Split(g.Rank / 4, 0);
                var quarter = half.Split(half.Rank / 2, 0);
                var sum = new long[] { g.Rank };
                quarter.AllReduceSum(sum.AsSpan());
                return (quarter.WorldRanks.ToArray(), sum[0]);
            }
        );

        for (int r = 0; r < 8; r++)
        {
            int first = r / 2 * 2;
            Assert.Equal([first, first + 1], results[r].Item1);
            Assert.Equal(2 * first + 1, results[r].Item2);
        }
    }

    [Fact]
    public void AsyncExchangeOnASubGroup_OverlapsWorldCollectives()
    {
        var results = InProcessWorld.Run(
            4,
            g =>
            {
                var pair = g.Split(g.Rank / 2, 0);
                var send = new[] { g.Rank * 10, g.Rank * 10 + 1 };
                var receive = new int[2];
                var request = pair.AllToAllVAsync<int>(send, [1, 1], receive, [1, 1]);
                g.Barrier();
                var w = new double[] { g.Rank };
                g.AllReduceSum(w.AsSpan());
                request.Wait();
                return (receive, w[0]);
            }
        );

        for (int r = 0; r < 4; r++)
        {
            int first = r / 2 * 2;
            Assert.Equal([first * 10 + r % 2, (first + 1) * 10 + r % 2], results[r].receive);
            Assert.Equal(6.0, results[r].Item2);
        }
    }
}
