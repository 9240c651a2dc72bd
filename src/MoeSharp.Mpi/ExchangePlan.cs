namespace MoeSharp.Mpi;

/// <summary>
/// How one all-to-all-v exchange is carried over MPI, in bytes. Each rank decides alone, from values its peer
/// agrees on, so no extra round trip is needed:
/// <list type="bullet">
/// <item>A direction p→q whose chunk exceeds <c>MaxCollectiveBytes / Size</c> is "large": both p and q know its
/// size (p's send count equals q's receive count), so both move it out of the collective (count 0 there) and
/// into point-to-point messages of at most <c>PieceBytes</c>, or a local copy when p = q.</item>
/// <item>The remaining chunks of one side sum to at most <c>MaxCollectiveBytes</c>. If their byte displacements
/// still overflow an <c>int</c> (the buffer is larger than 2 GiB), that side is staged through a compact
/// buffer; this is local, because MPI only matches the bytes, not the displacements.</item>
/// </list>
/// </summary>
internal sealed class ExchangePlan
{
    private ExchangePlan(int size)
    {
        // Pinned: MPI_Ialltoallv reads these arrays until the exchange completes.
        SendCounts = GC.AllocateArray<int>(size, pinned: true);
        SendDispls = GC.AllocateArray<int>(size, pinned: true);
        ReceiveCounts = GC.AllocateArray<int>(size, pinned: true);
        ReceiveDispls = GC.AllocateArray<int>(size, pinned: true);
        SendOffsets = new long[size];
        SendBytes = new long[size];
        ReceiveOffsets = new long[size];
        ReceiveBytes = new long[size];
        Large = new bool[size * 2];
    }

    /// <summary>Byte counts and displacements for the collective (into the staging buffers when staged).</summary>
    public int[] SendCounts { get; }
    public int[] SendDispls { get; }
    public int[] ReceiveCounts { get; }
    public int[] ReceiveDispls { get; }

    /// <summary>Where each peer's chunk is in the caller's buffers, in bytes.</summary>
    public long[] SendOffsets { get; }
    public long[] SendBytes { get; }
    public long[] ReceiveOffsets { get; }
    public long[] ReceiveBytes { get; }

    /// <summary>Compact staging buffer sizes; 0 when that side is used in place.</summary>
    public long SendStageBytes { get; private set; }
    public long ReceiveStageBytes { get; private set; }

    /// <summary>True when some direction travels point to point.</summary>
    public bool HasLarge { get; private set; }

    /// <summary>The piece size for point-to-point messages.</summary>
    public int PieceBytes { get; private set; }

    // [q] = send to q is large; [Size + q] = receive from q is large.
    private bool[] Large { get; }

    public bool IsLargeSend(int peer) => Large[peer];

    public bool IsLargeReceive(int peer) => Large[SendCounts.Length + peer];

    /// <summary>Plans an all-to-all-v from element counts laid out back to back.</summary>
    public static ExchangePlan ForCounts(
        ReadOnlySpan<int> sendCounts,
        ReadOnlySpan<int> receiveCounts,
        int elementSize,
        ExchangeLimits limits
    )
    {
        int size = sendCounts.Length;
        var sendOffsets = new long[size];
        var sendBytes = new long[size];
        var receiveOffsets = new long[size];
        var receiveBytes = new long[size];
        long s = 0,
            r = 0;
        for (int q = 0; q < size; q++)
        {
            sendOffsets[q] = s;
            sendBytes[q] = (long)sendCounts[q] * elementSize;
            s += sendBytes[q];
            receiveOffsets[q] = r;
            receiveBytes[q] = (long)receiveCounts[q] * elementSize;
            r += receiveBytes[q];
        }
        return Create(sendOffsets, sendBytes, receiveOffsets, receiveBytes, limits);
    }

    /// <summary>Plans an exchange from explicit byte layouts (send chunks may overlap, as in an all-gather).</summary>
    public static ExchangePlan Create(
        long[] sendOffsets,
        long[] sendBytes,
        long[] receiveOffsets,
        long[] receiveBytes,
        ExchangeLimits limits
    )
    {
        int size = sendBytes.Length;
        var plan = new ExchangePlan(size) { PieceBytes = limits.PieceBytes };
        sendOffsets.CopyTo(plan.SendOffsets, 0);
        sendBytes.CopyTo(plan.SendBytes, 0);
        receiveOffsets.CopyTo(plan.ReceiveOffsets, 0);
        receiveBytes.CopyTo(plan.ReceiveBytes, 0);

        long perDirection = limits.MaxCollectiveBytes / size;
        for (int q = 0; q < size; q++)
        {
            plan.Large[q] = sendBytes[q] > perDirection;
            plan.Large[size + q] = receiveBytes[q] > perDirection;
            plan.HasLarge |= plan.Large[q] || plan.Large[size + q];
        }

        plan.SendStageBytes = Side(
            plan.Large.AsSpan(0, size),
            sendOffsets,
            sendBytes,
            plan.SendCounts,
            plan.SendDispls,
            limits
        );
        plan.ReceiveStageBytes = Side(
            plan.Large.AsSpan(size, size),
            receiveOffsets,
            receiveBytes,
            plan.ReceiveCounts,
            plan.ReceiveDispls,
            limits
        );
        return plan;
    }

    // Fills one side's collective counts and displacements; returns the staging size, or 0 for in place.
    private static long Side(
        ReadOnlySpan<bool> large,
        long[] offsets,
        long[] bytes,
        int[] counts,
        int[] displs,
        ExchangeLimits limits
    )
    {
        bool inPlace = true;
        for (int q = 0; q < bytes.Length; q++)
        {
            if (!large[q] && bytes[q] > 0 && offsets[q] + bytes[q] > limits.MaxCollectiveBytes)
                inPlace = false;
        }

        long compact = 0;
        for (int q = 0; q < bytes.Length; q++)
        {
            long n = large[q] ? 0 : bytes[q];
            counts[q] = checked((int)n);
            displs[q] = checked((int)(inPlace ? (n == 0 ? 0 : offsets[q]) : compact));
            compact += n;
        }
        return inPlace ? 0 : compact;
    }
}
