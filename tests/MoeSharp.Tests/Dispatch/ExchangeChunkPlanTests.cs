using CsCheck;
using MoeSharp.Dispatch;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// <see cref="ExchangeChunkPlan"/>: the chunks of every peer's block are consecutive, disjoint and cover the block
/// exactly, and a sender and its receiver cut a block of the same length the same way.
/// </summary>
public sealed class ExchangeChunkPlanTests
{
    [Fact]
    public void Chunks_tile_every_block_and_both_sides_agree()
    {
        Gen.Select(Gen.Int[1, 6], Gen.Int[1, 9], Gen.Int[0, int.MaxValue - 1]).Sample((ranks, chunks, seed) =>
        {
            var random = new Random(seed);
            int[] send = Enumerable.Range(0, ranks).Select(_ => random.Next(0, 40)).ToArray();
            int[] receive = Enumerable.Range(0, ranks).Select(_ => random.Next(0, 40)).ToArray();
            var plan = new ExchangeChunkPlan(send, receive, chunks);
            // The receiver of send block q sees a block of the same length: cut it with the roles swapped.
            var mirror = new ExchangeChunkPlan(receive, send, chunks);
            var sendNext = new int[ranks];
            var receiveNext = new int[ranks];
            for (int q = 1; q < ranks; q++)
            {
                sendNext[q] = sendNext[q - 1] + send[q - 1];
                receiveNext[q] = receiveNext[q - 1] + receive[q - 1];
            }
            for (int c = 0; c < chunks; c++)
            {
                var (sendRows, sendStarts) = plan.Send(c);
                var (receiveRows, receiveStarts) = plan.Receive(c);
                Assert.Equal(sendRows, mirror.Receive(c).Rows);
                for (int q = 0; q < ranks; q++)
                {
                    Assert.Equal(sendNext[q], sendStarts[q]);
                    Assert.Equal(receiveNext[q], receiveStarts[q]);
                    Assert.True(sendRows[q] >= 0 && receiveRows[q] >= 0);
                    sendNext[q] += sendRows[q];
                    receiveNext[q] += receiveRows[q];
                }
            }
            for (int q = 0; q < ranks; q++)
            {
                Assert.Equal(send.Take(q + 1).Sum(), sendNext[q]);
                Assert.Equal(receive.Take(q + 1).Sum(), receiveNext[q]);
            }
        }, iter: 200);
    }
}
