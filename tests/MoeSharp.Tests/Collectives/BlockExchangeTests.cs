using MoeSharp.Collectives;
using MoeSharp.Compute;

namespace MoeSharp.Tests.Collectives;

/// <summary>
/// The in-process all-to-all-v whose chunks are lists of blocks on the sending side, the receiving side or both
/// (<see cref="InProcessProcessGroup.AllToAllVBlocks{T}"/>): every element must land where the same exchange into
/// contiguous chunks followed by a permuting copy would put it, on one copy thread and on several, waiting or not.
/// </summary>
[Collection("HostThreads.Count")] // tests that set the process-wide budget never run at the same time
public sealed class BlockExchangeTests
{
    [Theory]
    [InlineData(1, true, true, true)]
    [InlineData(12, true, true, true)]
    [InlineData(12, true, false, true)]
    [InlineData(12, false, true, false)]
    [InlineData(1, true, true, false)]
    public void Blocks_on_either_side_put_every_element_where_the_contiguous_exchange_would(
        int threads,
        bool sendBlocks,
        bool receiveBlocks,
        bool wait
    )
    {
        int before = HostThreads.Count;
        HostThreads.Count = threads;
        try
        {
            const int world = 3;
            // Rank r sends Count(r, p) elements to p: several MiB in all, unequal, some blocks empty.
            static int Count(int from, int to) => ((from + 1) * (to + 2) * 100_003) + (from == to ? 0 : 7);
            var outcome = InProcessWorld.Run(
                world,
                group =>
                {
                    int me = group.Rank;
                    var g = (InProcessProcessGroup)group;
                    int[] sendCounts = Enumerable.Range(0, world).Select(p => Count(me, p)).ToArray();
                    int[] receiveCounts = Enumerable.Range(0, world).Select(p => Count(p, me)).ToArray();
                    // Chunk element i of (from → to) carries a value that names it.
                    static float Value(int from, int to, int i) => (from * 1e7f) + (to * 1e6f) + (i % 999_983);
                    var random = new Random(17 + me);
                    int sendLength = sendCounts.Sum(),
                        receiveLength = receiveCounts.Sum();
                    ChunkBlocks? sb = sendBlocks ? Scattered(sendCounts, random, out sendLength) : null;
                    ChunkBlocks? rb = receiveBlocks ? Scattered(receiveCounts, random, out receiveLength) : null;
                    var send = new float[sendLength];
                    for (int p = 0, at = 0; p < world; p++)
                    {
                        for (int i = 0; i < sendCounts[p]; i++)
                            send[sb is null ? at++ : (int)Position(sb, p, i)] = Value(me, p, i);
                    }
                    var receive = new float[receiveLength + 1];
                    Array.Fill(receive, -1f);
                    g.AllToAllVBlocks<float>(send, sendCounts, sb, receive, receiveCounts, rb, wait).Wait();
                    // Where each element must be, and that nothing else was written.
                    var expected = new float[receive.Length];
                    Array.Fill(expected, -1f);
                    for (int p = 0, at = 0; p < world; p++)
                    {
                        for (int i = 0; i < receiveCounts[p]; i++)
                            expected[rb is null ? at++ : (int)Position(rb, p, i)] = Value(p, me, i);
                    }
                    return (receive, expected);
                }
            );
            for (int r = 0; r < world; r++)
            {
                var (receive, expected) = outcome[r];
                int bad = FirstDifference(receive, expected);
                Assert.True(
                    bad < 0,
                    $"rank {r}, element {bad}: {(bad < 0 ? 0 : receive[bad])} != {(bad < 0 ? 0 : expected[bad])}"
                );
            }
        }
        finally
        {
            HostThreads.Count = before;
        }
    }

    [Fact]
    public void Send_blocks_may_name_the_same_elements_several_times_as_the_dispatch_s_token_rows_do()
    {
        const int world = 3,
            row = 5;
        // Rank r holds 4 rows; it sends peer p rows p, 0, p (row 0 twice to peer 0): 3 blocks of one row each, more
        // elements in all than its buffer holds.
        var outcome = InProcessWorld.Run(
            world,
            group =>
            {
                int me = group.Rank;
                var send = Enumerable.Range(0, 4 * row).Select(i => (me * 100f) + i).ToArray();
                int[] peerStart = [0, 3, 6, 9];
                long[] offset = Enumerable
                    .Range(0, world)
                    .SelectMany(p => new long[] { p * row, 0, p * row })
                    .ToArray();
                long[] length = Enumerable.Repeat((long)row, 3 * world).ToArray();
                int[] counts = Enumerable.Repeat(3 * row, world).ToArray();
                var receive = new float[3 * row * world];
                ((InProcessProcessGroup)group)
                    .AllToAllVBlocks<float>(
                        send,
                        counts,
                        new ChunkBlocks(peerStart, offset, length),
                        receive,
                        counts,
                        null,
                        wait: true
                    )
                    .Wait();
                return receive;
            }
        );
        for (int me = 0; me < world; me++)
        {
            for (int p = 0; p < world; p++)
            {
                int[] rows = [me, 0, me];
                for (int k = 0; k < 3; k++)
                {
                    for (int i = 0; i < row; i++)
                        Assert.Equal((p * 100f) + (rows[k] * row) + i, outcome[me][(((p * 3) + k) * row) + i]);
                }
            }
        }
    }

    [Fact]
    public void Reading_peer_rows_sees_every_offered_row_in_the_order_the_exchange_would_deliver_it()
    {
        const int world = 3,
            row = 4;
        // Rank r offers peer p (p + 1) rows, from blocks laid out backwards in its buffer.
        var outcome = InProcessWorld.Run(
            world,
            group =>
            {
                int me = group.Rank;
                int[] sendRows = Enumerable.Range(0, world).Select(p => p + 1).ToArray();
                int rows = sendRows.Sum();
                var send = Enumerable.Range(0, rows * row).Select(i => (me * 1000f) + i).ToArray();
                var peerStart = new int[world + 1];
                var offset = new long[rows];
                var length = new long[rows];
                for (int p = 0, b = 0; p < world; p++)
                {
                    peerStart[p + 1] = peerStart[p] + sendRows[p];
                    for (int k = 0; k < sendRows[p]; k++, b++)
                    {
                        offset[b] = (long)(rows - 1 - b) * row;
                        length[b] = row;
                    }
                }
                int[] sendCounts = sendRows.Select(n => n * row).ToArray();
                int[] receiveCounts = Enumerable.Repeat((me + 1) * row, world).ToArray();
                var seen = new List<float>();
                ((InProcessProcessGroup)group).ReadPeerRows<float>(
                    send,
                    sendCounts,
                    new ChunkBlocks(peerStart, offset, length),
                    receiveCounts,
                    row,
                    addresses =>
                    {
                        unsafe
                        {
                            foreach (nint a in addresses)
                                seen.Add(((float*)a)[0]);
                        }
                    }
                );
                return seen.ToArray();
            }
        );
        for (int me = 0; me < world; me++)
        {
            // From each peer p: its blocks for me, rows (me·(me+1)/2 + k) counted from the end of p's 6 rows.
            int before = me * (me + 1) / 2;
            var expected = Enumerable
                .Range(0, world)
                .SelectMany(p => Enumerable.Range(0, me + 1).Select(k => (p * 1000f) + ((6 - 1 - before - k) * row)))
                .ToArray();
            Assert.Equal(expected, outcome[me]);
        }
    }

    [Fact]
    public void A_read_that_throws_fails_every_rank_instead_of_leaving_them_waiting()
    {
        var error = Assert.Throws<RankFailedException>(() =>
            InProcessWorld.Run(
                2,
                group =>
                    ((InProcessProcessGroup)group).ReadPeerRows<float>(
                        new float[8],
                        [4, 4],
                        null,
                        [4, 4],
                        4,
                        _ =>
                        {
                            if (group.Rank == 1)
                                throw new InvalidOperationException("read failed on purpose");
                        }
                    ),
                TimeSpan.FromSeconds(20)
            )
        );
        Assert.Equal(1, error.Rank);
        Assert.Contains("read failed on purpose", error.ToString());
    }

    [Fact]
    public void Blocks_that_do_not_add_up_to_the_count_are_refused_before_anything_moves()
    {
        var group = InProcessProcessGroup.CreateWorld(1)[0];
        var blocks = new ChunkBlocks([0, 2], [0, 10], [3, 4]);
        var error = Assert.Throws<ArgumentException>(() =>
            group.AllToAllVBlocks<float>(new float[20], [8], blocks, new float[8], [8], null, wait: true)
        );
        Assert.Contains("hold 7 elements but its count is 8", error.Message);
        var outside = new ChunkBlocks([0, 1], [15], [8]);
        error = Assert.Throws<ArgumentException>(() =>
            group.AllToAllVBlocks<float>(new float[8], [8], null, new float[20], [8], outside, wait: true)
        );
        Assert.Contains("outside the buffer of 20", error.Message);
    }

    /// <summary>
    /// Each peer's chunk cut into 1 to 4 blocks (some empty) placed in a random order with gaps between them; the
    /// buffer's length comes back in <paramref name="length"/>.
    /// </summary>
    private static ChunkBlocks Scattered(int[] counts, Random random, out int length)
    {
        var pieces = new List<(int Peer, int Index, long Length)>();
        var peerStart = new int[counts.Length + 1];
        for (int p = 0; p < counts.Length; p++)
        {
            int n = random.Next(1, 5);
            long left = counts[p];
            for (int b = 0; b < n; b++)
            {
                long piece = b == n - 1 ? left : random.NextInt64(0, left + 1);
                pieces.Add((p, b, piece));
                left -= piece;
            }
            peerStart[p + 1] = peerStart[p] + n;
        }
        var offset = new long[pieces.Count];
        var lengths = new long[pieces.Count];
        long at = 0;
        foreach (var piece in pieces.OrderBy(_ => random.Next()))
        {
            int b = peerStart[piece.Peer] + piece.Index;
            at += random.Next(0, 5);
            offset[b] = at;
            lengths[b] = piece.Length;
            at += piece.Length;
        }
        length = (int)at + 3;
        return new ChunkBlocks(peerStart, offset, lengths);
    }

    /// <summary>Where element <paramref name="i"/> of peer <paramref name="p"/>'s chunk lies.</summary>
    private static long Position(ChunkBlocks blocks, int p, int i)
    {
        long left = i;
        for (int b = blocks.PeerStart[p]; b < blocks.PeerStart[p + 1]; b++)
        {
            if (left < blocks.Length[b])
                return blocks.Offset[b] + left;
            left -= blocks.Length[b];
        }
        throw new InvalidOperationException($"element {i} is past peer {p}'s blocks");
    }

    private static int FirstDifference(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < actual.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                return i;
        }
        return -1;
    }
}
