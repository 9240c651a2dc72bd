namespace MoeSharp.Collectives;

/// <summary>
/// Moves one rank's incoming chunks of an exchange (all-to-all, all-to-all-v, all-gather): the receiver
/// pulls each chunk straight from the sender's buffer into its own, one memory copy per peer.
/// </summary>
internal static class ChunkCopier
{
    /// <summary>
    /// Copies into <paramref name="receiver"/>'s receive buffer the chunk each peer of
    /// <paramref name="slot"/> sends it. Every member must have arrived and the layouts must be checked.
    /// </summary>
    public static unsafe void Pull(CollectiveSlot slot, RankContribution receiver)
    {
        var members = slot.Members;
        int size = members.Length,
            me = receiver.GroupRank;
        long elementSize = receiver.ElementSize;
        long total = 0;
        for (int p = 0; p < size; p++)
            total += receiver.ReceiveCounts[p] * elementSize;
        int threads = (int)Math.Min(receiver.Threads, total / MinBytesPerThread);
        if (threads <= 1)
        {
            for (int i = 0; i < size; i++)
            {
                // Start with a different peer on every rank so the ranks do not all read the same buffer at once.
                int p = (me + i) % size;
                long bytes = receiver.ReceiveCounts[p] * elementSize;
                if (bytes != 0)
                    Copy(members[p]!, receiver, p, me, elementSize, 0, bytes);
            }
            return;
        }

        // This rank's share of the cores: the receive buffer is cut into equal byte ranges, one per task, each
        // copied straight from the senders' buffers (a range may span several peers' chunks).
        int tasks = threads * 4;
        Parallel.For(
            0,
            tasks,
            new ParallelOptions { MaxDegreeOfParallelism = threads },
            t =>
            {
                long begin = total * t / tasks,
                    end = total * (t + 1) / tasks;
                long chunkStart = 0;
                for (int p = 0; p < size && chunkStart < end; p++)
                {
                    long bytes = receiver.ReceiveCounts[p] * elementSize;
                    long from = Math.Max(begin, chunkStart),
                        to = Math.Min(end, chunkStart + bytes);
                    if (to > from)
                        Copy(members[p]!, receiver, p, me, elementSize, from - chunkStart, to - from);
                    chunkStart += bytes;
                }
            }
        );
    }

    /// <summary>Below this many bytes per thread, one thread copies (the hand-off costs more than it saves).</summary>
    private const long MinBytesPerThread = 1 << 20;

    private static unsafe void Copy(
        RankContribution sender,
        RankContribution receiver,
        int p,
        int me,
        long elementSize,
        long skip,
        long bytes
    )
    {
        byte* source = (byte*)sender.SendBase + (sender.SendOffsets[me] * elementSize) + skip;
        byte* destination = (byte*)receiver.ReceiveBase + (receiver.ReceiveOffsets[p] * elementSize) + skip;
        Buffer.MemoryCopy(source, destination, bytes, bytes);
    }
}
