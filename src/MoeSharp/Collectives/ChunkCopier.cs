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
        int size = members.Length, me = receiver.GroupRank;
        long elementSize = receiver.ElementSize;
        for (int i = 0; i < size; i++)
        {
            // Start with a different peer on every rank so the ranks do not all read the same buffer at once.
            int p = (me + i) % size;
            long bytes = receiver.ReceiveCounts[p] * elementSize;
            if (bytes == 0) continue;
            var sender = members[p]!;
            byte* source = (byte*)sender.SendBase + sender.SendOffsets[me] * elementSize;
            byte* destination = (byte*)receiver.ReceiveBase + receiver.ReceiveOffsets[p] * elementSize;
            Buffer.MemoryCopy(source, destination, bytes, bytes);
        }
    }
}
