namespace MoeSharp.Collectives;

/// <summary>
/// Moves one rank's incoming chunks of an exchange (all-to-all, all-to-all-v, all-gather): the receiver
/// pulls each chunk straight from the sender's buffer into its own, one memory copy per element, whether the
/// chunks are single runs or lists of blocks on either side (<see cref="ChunkBlocks"/>).
/// </summary>
internal static class ChunkCopier
{
    /// <summary>
    /// Copies into <paramref name="receiver"/>'s receive buffer the chunk each peer of
    /// <paramref name="slot"/> sends it. Every member must have arrived and the layouts must be checked.
    /// </summary>
    public static unsafe void Pull(CollectiveSlot slot, RankContribution receiver)
    {
        List<Segment> segments = Segments(slot, receiver, out long total);
        int threads = (int)Math.Min(receiver.Threads, total / MinBytesPerThread);
        if (threads <= 1)
        {
            foreach (Segment s in segments)
                Buffer.MemoryCopy((void*)s.Source, (void*)s.Destination, s.Bytes, s.Bytes);
            return;
        }

        // This rank's share of the cores: the received bytes are cut into equal ranges, one per task, each copied
        // straight from the senders' buffers (a range may span several segments, of several peers).
        var starts = new long[segments.Count + 1];
        for (int i = 0; i < segments.Count; i++)
            starts[i + 1] = starts[i] + segments[i].Bytes;
        int tasks = threads * 4;
        Parallel.For(
            0,
            tasks,
            new ParallelOptions { MaxDegreeOfParallelism = threads },
            t =>
            {
                long begin = total * t / tasks,
                    end = total * (t + 1) / tasks;
                int i = Array.BinarySearch(starts, begin);
                if (i < 0)
                    i = ~i - 1;
                for (; i < segments.Count && starts[i] < end; i++)
                {
                    long from = Math.Max(begin, starts[i]),
                        to = Math.Min(end, starts[i + 1]);
                    if (to <= from)
                        continue;
                    Segment s = segments[i];
                    long skip = from - starts[i];
                    Buffer.MemoryCopy((byte*)s.Source + skip, (byte*)s.Destination + skip, to - from, to - from);
                }
            }
        );
    }

    /// <summary>Below this many bytes per thread, one thread copies (the hand-off costs more than it saves).</summary>
    private const long MinBytesPerThread = 1 << 20;

    /// <summary>One contiguous run of bytes from a sender's buffer to the receiver's.</summary>
    private readonly record struct Segment(nint Source, nint Destination, long Bytes);

    /// <summary>
    /// The receiver's copies, peer by peer: each peer's blocks for the receiver matched against the receiver's blocks
    /// for that peer. Starts with a different peer on every rank so the ranks do not all read the same buffer at once.
    /// </summary>
    private static List<Segment> Segments(CollectiveSlot slot, RankContribution receiver, out long total)
    {
        var members = slot.Members;
        int size = members.Length,
            me = receiver.GroupRank;
        long elementSize = receiver.ElementSize;
        var segments = new List<Segment>(size);
        total = 0;
        for (int i = 0; i < size; i++)
        {
            int p = (me + i) % size;
            RankContribution sender = members[p]!;
            var (sendOffsets, sendLengths, sendFirst, sendEnd) = Runs(
                sender.SendBlocks,
                me,
                sender.SendOffsets,
                sender.SendCounts
            );
            var (receiveOffsets, receiveLengths, receiveFirst, receiveEnd) = Runs(
                receiver.ReceiveBlocks,
                p,
                receiver.ReceiveOffsets,
                receiver.ReceiveCounts
            );
            int a = sendFirst,
                b = receiveFirst;
            long usedA = 0,
                usedB = 0;
            // Both sides hold the same number of elements (checked on arrival): walk them in step.
            while (a < sendEnd && b < receiveEnd)
            {
                long n = Math.Min(sendLengths[a] - usedA, receiveLengths[b] - usedB);
                if (n > 0)
                {
                    long bytes = n * elementSize;
                    segments.Add(
                        new Segment(
                            sender.SendBase + (nint)((sendOffsets[a] + usedA) * elementSize),
                            receiver.ReceiveBase + (nint)((receiveOffsets[b] + usedB) * elementSize),
                            bytes
                        )
                    );
                    total += bytes;
                }
                usedA += n;
                usedB += n;
                if (usedA == sendLengths[a])
                {
                    a++;
                    usedA = 0;
                }
                if (usedB == receiveLengths[b])
                {
                    b++;
                    usedB = 0;
                }
            }
        }
        return segments;
    }

    /// <summary>
    /// The address of every row the peers of <paramref name="slot"/> offer <paramref name="receiver"/>, rank 0's first,
    /// each peer's in its block order (the order a copy would put them in): for a read without a copy.
    /// </summary>
    /// <exception cref="InvalidOperationException">A peer's block is not a whole number of rows.</exception>
    public static nint[] RowAddresses(CollectiveSlot slot, RankContribution receiver, int rowLength)
    {
        var members = slot.Members;
        int me = receiver.GroupRank;
        long elementSize = receiver.ElementSize,
            total = 0;
        foreach (int count in receiver.ReceiveCounts)
            total += count;
        var rows = new nint[total / rowLength];
        int at = 0;
        for (int p = 0; p < members.Length; p++)
        {
            RankContribution sender = members[p]!;
            var (offsets, lengths, first, end) = Runs(sender.SendBlocks, me, sender.SendOffsets, sender.SendCounts);
            for (int b = first; b < end; b++)
            {
                if (lengths[b] % rowLength != 0)
                {
                    throw new InvalidOperationException(
                        $"rank {sender.WorldRank} offers a block of {lengths[b]} elements, not whole rows of {rowLength}"
                    );
                }
                for (long e = 0; e < lengths[b]; e += rowLength)
                    rows[at++] = sender.SendBase + (nint)((offsets[b] + e) * elementSize);
            }
        }
        return rows;
    }

    /// <summary>The runs of one side's chunk for <paramref name="peer"/>: its blocks, or its one run.</summary>
    private static (long[] Offsets, long[] Lengths, int First, int End) Runs(
        ChunkBlocks? blocks,
        int peer,
        long[] offsets,
        int[] counts
    ) =>
        blocks is null
            ? ([offsets[peer]], [counts[peer]], 0, 1)
            : (blocks.Offset, blocks.Length, blocks.PeerStart[peer], blocks.PeerStart[peer + 1]);
}
