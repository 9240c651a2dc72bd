using MoeSharp.Collectives;

namespace MoeSharp.Tests.Collectives;

/// <summary>The asynchronous all-to-all-v: progress without Wait, overlap with later collectives.</summary>
public class AsyncExchangeTests
{
    private static (int[] Send, int[] SendCounts, int[] Receive, int[] ReceiveCounts) Buffers(IProcessGroup g, int rows)
    {
        // Every rank sends `rows` elements to every rank, tagged with source, destination and a round.
        var send = Enumerable
            .Range(0, g.Size)
            .SelectMany(q => Enumerable.Range(0, rows).Select(i => g.Rank * 1000 + q * 10 + i))
            .ToArray();
        var counts = Enumerable.Repeat(rows, g.Size).ToArray();
        return (send, counts, new int[rows * g.Size], counts);
    }

    private static int[] Expected(int me, int size, int rows) =>
        Enumerable
            .Range(0, size)
            .SelectMany(p => Enumerable.Range(0, rows).Select(i => p * 1000 + me * 10 + i))
            .ToArray();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(7)]
    public void LaterSyncCollectives_RunWhileTheExchangeIsOutstanding(int size)
    {
        var results = InProcessWorld.Run(
            size,
            g =>
            {
                var (send, sendCounts, receive, receiveCounts) = Buffers(g, 3);
                var request = g.AllToAllVAsync<int>(send, sendCounts, receive, receiveCounts);

                // Sequence numbers keep these apart from the exchange still in flight.
                var sum = new long[] { g.Rank };
                g.AllReduceSum(sum.AsSpan());
                g.Barrier();
                var gathered = new int[g.Size];
                g.AllGather<int>([g.Rank], gathered);

                request.Wait();
                Assert.True(request.IsCompleted);
                return (receive, sum[0], gathered);
            }
        );

        for (int r = 0; r < size; r++)
        {
            Assert.Equal(Expected(r, size, 3), results[r].receive);
            Assert.Equal(size * (size - 1) / 2, results[r].Item2);
            Assert.Equal(Enumerable.Range(0, size), results[r].gathered);
        }
    }

    [Fact]
    public void Exchange_CompletesWithoutTheCallerWaiting()
    {
        // Rank 0 never calls Wait until the request reports completion: the copy must progress on its own.
        var results = InProcessWorld.Run(
            3,
            g =>
            {
                var (send, sendCounts, receive, receiveCounts) = Buffers(g, 2);
                if (g.Rank == 0)
                {
                    var request = g.AllToAllVAsync<int>(send, sendCounts, receive, receiveCounts);
                    var spin = new SpinWait();
                    while (!request.IsCompleted && g is InProcessProcessGroup { Failure: null })
                        spin.SpinOnce();
                    request.Wait();
                }
                else
                {
                    g.AllToAllV<int>(send, sendCounts, receive, receiveCounts);
                }

                return receive;
            },
            TimeSpan.FromSeconds(20)
        );

        for (int r = 0; r < 3; r++)
            Assert.Equal(Expected(r, 3, 2), results[r]);
    }

    [Fact]
    public void SeveralOutstandingExchanges_CompleteInAnyWaitOrder()
    {
        var results = InProcessWorld.Run(
            4,
            g =>
            {
                var first = Buffers(g, 1);
                var second = Buffers(g, 5);
                var a = g.AllToAllVAsync<int>(first.Send, first.SendCounts, first.Receive, first.ReceiveCounts);
                var b = g.AllToAllVAsync<int>(second.Send, second.SendCounts, second.Receive, second.ReceiveCounts);
                b.Wait();
                a.Wait();
                return (first.Receive, second.Receive);
            }
        );

        for (int r = 0; r < 4; r++)
        {
            Assert.Equal(Expected(r, 4, 1), results[r].Item1);
            Assert.Equal(Expected(r, 4, 5), results[r].Item2);
        }
    }

    [Fact]
    public void SlicesOfOneArray_CanBeExchanged()
    {
        var results = InProcessWorld.Run(
            2,
            g =>
            {
                var storage = new float[10];
                for (int i = 0; i < 4; i++)
                    storage[i] = g.Rank * 10 + i;
                var request = g.AllToAllVAsync<float>(storage.AsMemory(0, 4), [2, 2], storage.AsMemory(4, 4), [2, 2]);
                request.AsTask().Wait(TimeSpan.FromSeconds(20));
                request.Wait();
                return storage;
            }
        );

        Assert.Equal([0f, 1, 2, 3, 0, 1, 10, 11, 0, 0], results[0]);
        Assert.Equal([10f, 11, 12, 13, 2, 3, 12, 13, 0, 0], results[1]);
    }

    [Fact]
    public void DeviceOrderedRequest_OrdersOnce_AndCountsAsCompletedAfterwards()
    {
        int ordered = 0;
        var request = CollectiveRequest.OrderedOnDevice(() => ordered++);
        Assert.False(request.IsCompleted);
        request.Wait();
        request.Wait();
        Assert.Equal(1, ordered);
        Assert.True(request.IsCompleted);
    }

    [Fact]
    public void DeviceOrderedRequest_ReportsAFailedOrderingAsACollectiveError()
    {
        var request = CollectiveRequest.OrderedOnDevice(() =>
            throw new InvalidOperationException("cudaStreamWaitEvent failed")
        );
        var ex = Assert.Throws<CollectiveException>(request.Wait);
        Assert.Contains("cudaStreamWaitEvent failed", ex.Message);
        Assert.IsType<InvalidOperationException>(ex.InnerException);
    }
}
