using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// The in-process all-to-all-v of host tensors whose chunks may be lists of blocks
/// (<see cref="InProcessProcessGroup.AllToAllVBlocks{T}"/>): the dtype switch, once.
/// </summary>
internal static class InProcessBlockExchange
{
    /// <summary>
    /// Moves <paramref name="sendCounts"/>[q] elements of <paramref name="send"/> to rank q (from
    /// <paramref name="sendBlocks"/>, or the run at the counts' prefix sum when null) and
    /// <paramref name="receiveCounts"/>[p] elements from rank p into <paramref name="receive"/> (into
    /// <paramref name="receiveBlocks"/>, or one run). Waits with <paramref name="wait"/>, else returns at once.
    /// </summary>
    public static CollectiveRequest AllToAllV(
        InProcessProcessGroup group,
        Tensor send,
        int[] sendCounts,
        ChunkBlocks? sendBlocks,
        Tensor receive,
        int[] receiveCounts,
        ChunkBlocks? receiveBlocks,
        bool wait
    )
    {
        CollectiveTensorChecks.RequireHost(group, send, nameof(send));
        CollectiveTensorChecks.RequireHost(group, receive, nameof(receive));
        CollectiveTensorChecks.RequireSameDType(group, send, receive);
        return send.DType switch
        {
            DType.Float32 => Move<float>(
                group,
                send,
                sendCounts,
                sendBlocks,
                receive,
                receiveCounts,
                receiveBlocks,
                wait
            ),
            DType.BFloat16 => Move<BFloat16>(
                group,
                send,
                sendCounts,
                sendBlocks,
                receive,
                receiveCounts,
                receiveBlocks,
                wait
            ),
            DType.Int32 => Move<int>(group, send, sendCounts, sendBlocks, receive, receiveCounts, receiveBlocks, wait),
            DType.Int64 => Move<long>(group, send, sendCounts, sendBlocks, receive, receiveCounts, receiveBlocks, wait),
            _ => throw new ArgumentException(
                $"a collective cannot move {send}: unknown dtype {send.DType}",
                nameof(send)
            ),
        };
    }

    /// <summary>
    /// <see cref="InProcessProcessGroup.ReadPeerRows{T}"/> on <paramref name="send"/>'s rows (of its row length), the
    /// dtype switch once.
    /// </summary>
    public static void ReadPeerRows(
        InProcessProcessGroup group,
        Tensor send,
        int[] sendCounts,
        ChunkBlocks? sendBlocks,
        int[] receiveCounts,
        Action<nint[]> read
    )
    {
        CollectiveTensorChecks.RequireHost(group, send, nameof(send));
        int d = send.RowLength;
        switch (send.DType)
        {
            case DType.Float32:
                group.ReadPeerRows<float>(send.AsMemory<float>(), sendCounts, sendBlocks, receiveCounts, d, read);
                break;
            case DType.BFloat16:
                group.ReadPeerRows<BFloat16>(send.AsMemory<BFloat16>(), sendCounts, sendBlocks, receiveCounts, d, read);
                break;
            default:
                throw new ArgumentException($"peers cannot read rows of {send}: not float32 or bfloat16", nameof(send));
        }
    }

    private static CollectiveRequest Move<T>(
        InProcessProcessGroup group,
        Tensor send,
        int[] sendCounts,
        ChunkBlocks? sendBlocks,
        Tensor receive,
        int[] receiveCounts,
        ChunkBlocks? receiveBlocks,
        bool wait
    )
        where T : unmanaged =>
        group.AllToAllVBlocks<T>(
            send.AsMemory<T>(),
            sendCounts,
            sendBlocks,
            receive.AsMemory<T>(),
            receiveCounts,
            receiveBlocks,
            wait
        );
}
