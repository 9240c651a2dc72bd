namespace MoeSharp.Cuda.Nccl;

/// <summary>One peer's part of an all-to-all-v: what this rank sends it and receives from it.</summary>
/// <param name="Peer">The peer's rank.</param>
/// <param name="SendOffsetBytes">Byte offset of the chunk for the peer in the send buffer.</param>
/// <param name="SendCount">Elements sent to the peer.</param>
/// <param name="ReceiveOffsetBytes">Byte offset of the peer's chunk in the receive buffer.</param>
/// <param name="ReceiveCount">Elements received from the peer.</param>
internal readonly record struct PeerTransfer(
    int Peer,
    long SendOffsetBytes,
    long SendCount,
    long ReceiveOffsetBytes,
    long ReceiveCount
);

/// <summary>
/// The grouped <c>ncclSend</c>/<c>ncclRecv</c> calls of one all-to-all-v: chunk q of the send buffer goes to rank q,
/// the chunk from rank p lands at p's offset in the receive buffer (prefix sums of the counts).
/// </summary>
internal sealed class NcclExchangePlan
{
    private NcclExchangePlan(PeerTransfer[] peers, long sendTotal, long receiveTotal)
    {
        Peers = peers;
        SendTotal = sendTotal;
        ReceiveTotal = receiveTotal;
    }

    /// <summary>One entry per peer, in rank order.</summary>
    public IReadOnlyList<PeerTransfer> Peers { get; }

    /// <summary>Elements sent in all.</summary>
    public long SendTotal { get; }

    /// <summary>Elements received in all.</summary>
    public long ReceiveTotal { get; }

    /// <summary>
    /// Validates the counts (one per rank, none negative, totals within the buffers) and computes each peer's offsets.
    /// </summary>
    /// <param name="sendCounts">Elements for each rank, in rank order.</param>
    /// <param name="receiveCounts">Elements from each rank, in rank order.</param>
    /// <param name="groupSize">Ranks in the group.</param>
    /// <param name="elementSize">Bytes per element.</param>
    /// <param name="sendCapacity">Elements the send buffer holds.</param>
    /// <param name="receiveCapacity">Elements the receive buffer holds.</param>
    public static NcclExchangePlan Create(
        ReadOnlySpan<int> sendCounts,
        ReadOnlySpan<int> receiveCounts,
        int groupSize,
        int elementSize,
        long sendCapacity,
        long receiveCapacity
    )
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(groupSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(elementSize, 1);
        if (sendCounts.Length != groupSize)
            throw new ArgumentException(
                $"{sendCounts.Length} send counts for a group of {groupSize}",
                nameof(sendCounts)
            );
        if (receiveCounts.Length != groupSize)
            throw new ArgumentException(
                $"{receiveCounts.Length} receive counts for a group of {groupSize}",
                nameof(receiveCounts)
            );

        var peers = new PeerTransfer[groupSize];
        long send = 0,
            receive = 0;
        for (int q = 0; q < groupSize; q++)
        {
            if (sendCounts[q] < 0)
                throw new ArgumentOutOfRangeException(
                    nameof(sendCounts),
                    sendCounts[q],
                    $"negative send count for rank {q}"
                );
            if (receiveCounts[q] < 0)
                throw new ArgumentOutOfRangeException(
                    nameof(receiveCounts),
                    receiveCounts[q],
                    $"negative receive count from rank {q}"
                );
            peers[q] = new PeerTransfer(q, send * elementSize, sendCounts[q], receive * elementSize, receiveCounts[q]);
            send += sendCounts[q];
            receive += receiveCounts[q];
        }
        if (send > sendCapacity)
            throw new ArgumentException(
                $"send counts total {send} elements, the send buffer holds {sendCapacity}",
                nameof(sendCounts)
            );
        if (receive > receiveCapacity)
            throw new ArgumentException(
                $"receive counts total {receive} elements, the receive buffer holds {receiveCapacity}",
                nameof(receiveCounts)
            );
        return new NcclExchangePlan(peers, send, receive);
    }
}
