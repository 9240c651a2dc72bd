using MoeSharp.Collectives;
using MoeSharp.Compute;

namespace MoeSharp.Tests.Collectives;

/// <summary>
/// The in-process exchange with a rank's copies spread over several threads (its share of <see cref="HostThreads"/>):
/// byte ranges that cut across peers' chunks must still land every element where the serial copy puts it.
/// </summary>
[Collection("HostThreads.Count")] // tests that set the process-wide budget never run at the same time
public sealed class ParallelCopyTests
{
    [Fact]
    public void Uneven_large_all_to_all_v_on_several_threads_per_rank_delivers_every_element()
    {
        int before = HostThreads.Count;
        // 12 threads over 3 ranks: 4 copy threads per rank, whatever this machine's core count (results never depend on
        // it).
        HostThreads.Count = 12;
        try
        {
            const int world = 3;
            // Rank r sends (r + 1) · (p + 2) · 100_003 floats to rank p: several MiB, unequal, not multiples of
            // anything.
            static int Count(int from, int to) => (from + 1) * (to + 2) * 100_003;
            var received = InProcessWorld.Run(
                world,
                group =>
                {
                    int me = group.Rank;
                    int[] sendCounts = Enumerable.Range(0, world).Select(p => Count(me, p)).ToArray();
                    int[] receiveCounts = Enumerable.Range(0, world).Select(p => Count(p, me)).ToArray();
                    var send = new float[sendCounts.Sum()];
                    int at = 0;
                    for (int p = 0; p < world; p++)
                    {
                        for (int i = 0; i < sendCounts[p]; i++)
                            send[at++] = (me * 1e7f) + (p * 1e6f) + (i % 999_983);
                    }
                    // One spare element past the counts must stay untouched.
                    var receive = new float[receiveCounts.Sum() + 1];
                    receive[^1] = -1f;
                    group.AllToAllV<float>(send, sendCounts, receive, receiveCounts);
                    return (receive, receiveCounts);
                }
            );
            for (int me = 0; me < world; me++)
            {
                var (receive, counts) = received[me];
                int at = 0;
                for (int p = 0; p < world; p++)
                {
                    for (int i = 0; i < counts[p]; i++, at++)
                    {
                        float expected = (p * 1e7f) + (me * 1e6f) + (i % 999_983);
                        if (receive[at] != expected)
                            Assert.Fail($"rank {me}, from {p}, element {i}: {receive[at]} != {expected}");
                    }
                }
                Assert.Equal(-1f, receive[^1]);
            }
        }
        finally
        {
            HostThreads.Count = before;
        }
    }
}
