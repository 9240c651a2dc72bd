namespace MoeSharp.Collectives;

/// <summary>
/// What one rank brings to one collective: its buffers (as raw addresses, pinned by the caller for as
/// long as the collective runs), its chunk layout and, for the asynchronous form, its completion.
/// Written once by the owning rank before it arrives, then read by peers (under the world lock or after
/// observing every arrival, which orders the reads after the writes).
/// </summary>
internal sealed class RankContribution
{
    public RankContribution(int groupRank, int worldRank, CollectiveKind kind, Type? elementType, int elementSize)
    {
        GroupRank = groupRank;
        WorldRank = worldRank;
        Kind = kind;
        ElementType = elementType;
        ElementSize = elementSize;
        StartTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
    }

    /// <summary>When this rank entered the collective; the timeout counts from here.</summary>
    public long StartTimestamp { get; }

    public int GroupRank { get; }

    public int WorldRank { get; }

    public CollectiveKind Kind { get; }

    /// <summary>Element type, or null for collectives that move no data (barrier, split).</summary>
    public Type? ElementType { get; }

    public int ElementSize { get; }

    /// <summary>Start of the send buffer (or, for the all-reduce, of the values).</summary>
    public nint SendBase { get; init; }

    /// <summary>Start of the receive buffer.</summary>
    public nint ReceiveBase { get; init; }

    /// <summary>Element offset in the send buffer of the chunk for each peer (group rank).</summary>
    public long[] SendOffsets { get; init; } = [];

    /// <summary>Elements this rank sends to each peer.</summary>
    public int[] SendCounts { get; init; } = [];

    /// <summary>Element offset in the receive buffer of the chunk from each peer.</summary>
    public long[] ReceiveOffsets { get; init; } = [];

    /// <summary>Elements this rank expects from each peer.</summary>
    public int[] ReceiveCounts { get; init; } = [];

    /// <summary>Where the chunk for each peer lies when not at <see cref="SendOffsets"/> in one run; null when it
    /// does.</summary>
    public ChunkBlocks? SendBlocks { get; init; }

    /// <summary>Where the chunk from each peer goes when not at <see cref="ReceiveOffsets"/> in one run; null when it
    /// does.</summary>
    public ChunkBlocks? ReceiveBlocks { get; init; }

    /// <summary>All-reduce: number of values.</summary>
    public int Length { get; init; }

    /// <summary>Split: the color and key passed by this rank.</summary>
    public int Color { get; init; }

    /// <inheritdoc cref="Color"/>
    public int Key { get; init; }

    /// <summary>Set for the asynchronous exchange: completes the caller's request.</summary>
    public AsyncExchange? Async { get; init; }

    /// <summary>Threads this rank's copies may use (its share of <c>HostThreads</c>, read when it arrived).</summary>
    public int Threads { get; init; } = Compute.HostThreads.Current;

    /// <summary>This rank has finished its work phase (copied or reduced what it needs from peers).</summary>
    public bool Worked { get; set; }

    /// <summary>This rank has left the collective (returned, threw, or its request completed).</summary>
    public bool Finished { get; set; }

    /// <summary>Name used in messages, e.g. <c>AllToAllV&lt;Single&gt;</c>.</summary>
    public string Signature => ElementType is null ? Kind.ToString() : $"{Kind}<{ElementType.Name}>";
}
