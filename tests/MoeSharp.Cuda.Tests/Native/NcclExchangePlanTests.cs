using CsCheck;
using MoeSharp.Cuda.Nccl;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>The per-peer send/receive offsets of the NCCL all-to-all-v, against a direct definition.</summary>
public class NcclExchangePlanTests
{
    [Fact]
    public void Offsets_ArePrefixSumsInBytes_ForRandomSplits()
    {
        Gen.Select(Gen.Int[1, 9], Gen.Int[1, 8], Gen.Int)
            .Sample(
                (size, elementSize, seed) =>
                {
                    var random = new Random(seed);
                    int[] send = Enumerable.Range(0, size).Select(_ => random.Next(0, 50)).ToArray();
                    int[] receive = Enumerable.Range(0, size).Select(_ => random.Next(0, 50)).ToArray();
                    var plan = NcclExchangePlan.Create(
                        send,
                        receive,
                        size,
                        elementSize,
                        send.Sum(),
                        receive.Sum() + random.Next(0, 3)
                    );

                    Assert.Equal(size, plan.Peers.Count);
                    Assert.Equal(send.Sum(), plan.SendTotal);
                    Assert.Equal(receive.Sum(), plan.ReceiveTotal);
                    for (int q = 0; q < size; q++)
                    {
                        PeerTransfer p = plan.Peers[q];
                        Assert.Equal(q, p.Peer);
                        Assert.Equal(send[q], p.SendCount);
                        Assert.Equal(receive[q], p.ReceiveCount);
                        Assert.Equal((long)send.Take(q).Sum() * elementSize, p.SendOffsetBytes);
                        Assert.Equal((long)receive.Take(q).Sum() * elementSize, p.ReceiveOffsetBytes);
                    }
                }
            );
    }

    [Fact]
    public void Chunks_TileTheBuffersWithoutGapsOrOverlap()
    {
        var plan = NcclExchangePlan.Create([2, 0, 3], [1, 4, 0], 3, 4, 5, 5);
        long sendEnd = 0,
            receiveEnd = 0;
        foreach (PeerTransfer p in plan.Peers)
        {
            Assert.Equal(sendEnd, p.SendOffsetBytes);
            Assert.Equal(receiveEnd, p.ReceiveOffsetBytes);
            sendEnd += p.SendCount * 4;
            receiveEnd += p.ReceiveCount * 4;
        }
        Assert.Equal(20, sendEnd);
        Assert.Equal(20, receiveEnd);
    }

    [Fact]
    public void BadCounts_NameTheArgumentAndTheRank()
    {
        var wrongLength = Assert.Throws<ArgumentException>(() =>
            NcclExchangePlan.Create([1, 2], [1, 2, 3], 3, 4, 10, 10)
        );
        Assert.Equal("sendCounts", wrongLength.ParamName);
        var negative = Assert.Throws<ArgumentOutOfRangeException>(() =>
            NcclExchangePlan.Create([1, -2, 0], [0, 0, 0], 3, 4, 10, 10)
        );
        Assert.Contains("rank 1", negative.Message);
        var overflow = Assert.Throws<ArgumentException>(() => NcclExchangePlan.Create([0, 0], [6, 5], 2, 4, 10, 10));
        Assert.Equal("receiveCounts", overflow.ParamName);
        Assert.Contains("11", overflow.Message);
    }
}
