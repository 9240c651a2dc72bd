using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The device kernels of capacity mode (<see cref="DispatchCapacity"/>): everything the normal mode computes on the
/// host from the routing counts (the counts, the sort's expert starts, where each entry lands, the count messages, the
/// receive permutation and the rows per expert) computed where the tensors live, so a dispatch reads no count to the
/// host. Every tensor is int32 on the kernels' device unless said otherwise. Deterministic: integer atomics only where
/// the result does not depend on their order.
/// </summary>
internal interface ICapacityKernels
{
    /// <summary>
    /// As <see cref="IEntryKernels.ScanEntries"/>, but an invalid entry (id outside <c>[0, E)</c> or a non-finite
    /// score) is written as expert 0 with score 0 and counted there, so the maps built from the counts stay in bounds;
    /// the first invalid entry is recorded in <paramref name="status"/> words 0–3 (the <see cref="EntryScanWords"/>
    /// header). Pad entries are expert 0, score 0, counted on expert 0.
    /// </summary>
    /// <param name="shard">The shard's routing entries.</param>
    /// <param name="entries"><c>[N]</c> ids and scores, overwritten.</param>
    /// <param name="counts"><c>[E]</c> entries per expert, overwritten.</param>
    /// <param name="status"><c>[CapacityStatus.Length]</c>, overwritten (words after the header zeroed).</param>
    void Scan(ShardEntries shard, EntryColumns entries, Tensor counts, Tensor status);

    /// <summary>Stable counting sort by expert (<see cref="IEntryKernels.StableSortByExpert"/>) from counts left on
    /// the device.</summary>
    void SortByExpert(Tensor expertIds, Tensor counts, Tensor order);

    /// <summary>
    /// <c>[N]</c>: the local-layout row of each expert-sorted position. With one rank (rows do not move): each
    /// expert's run padded to the alignment, the routed layout. Otherwise sorted position i, the o-th entry for rank q,
    /// goes to slot row <c>q·C + o</c> when <c>o &lt; C</c>, else to the overflow region after the <c>S·C</c> slots:
    /// row <c>S·C + (overflow of ranks before q) + (o − C)</c>.
    /// </summary>
    void LocalRows(Tensor counts, CapacityShape shape, Tensor rowOfSorted);

    /// <summary>
    /// The count messages (<see cref="CapacityMessages"/>): message q holds this rank's counts for rank q's experts,
    /// then C, whether any of this rank's slots overflows, whether its scan found an invalid entry, and its T.
    /// </summary>
    void PackMessages(Tensor counts, Tensor status, CapacityShape shape, Tensor send);

    /// <summary>
    /// Reads every rank's received message into <paramref name="status"/> words 4–7 (<see cref="CapacityStatus"/>):
    /// the first rank with an invalid entry, whether any rank overflowed, the first rank whose C differs from rank
    /// 0's, the first rank whose T differs from its SP group's. Every rank computes the same words from the same
    /// messages.
    /// </summary>
    void ReadMessages(Tensor received, CapacityShape shape, Tensor status);

    /// <summary>
    /// From the received messages: the rows per local expert, padded to the alignment
    /// (<paramref name="tokensPerLocalExpert"/>, <c>[e]</c>), and the maps between the received rows (slots then the
    /// overflow rows, rank-major) and the expert-major routed rows: <paramref name="rankMajorRowOf"/> is each received
    /// row's routed row (-1 for an empty slot), <paramref name="expertMajorRowOf"/> each routed row's received row (-1
    /// for padding and the unused rows at the end).
    /// </summary>
    void ReceivePermutation(
        Tensor received,
        CapacityShape shape,
        Tensor expertMajorRowOf,
        Tensor rankMajorRowOf,
        Tensor tokensPerLocalExpert
    );

    /// <summary>
    /// <c>positions[i] = rowOfSorted[positions[i]]</c> (-1 stays -1): each token's positions among the sorted entries,
    /// in ascending expert id, become rows of the local layout in the same order. Needed when the overflow rows break
    /// the layout's row order, since combine adds a token's terms in the order of its positions.
    /// </summary>
    void RemapPositions(Tensor positions, Tensor rowOfSorted);

    /// <summary>One rank: <c>tokensPerExpert[j] = counts[j]</c> rounded up to the alignment.</summary>
    void AlignedExpertRows(Tensor counts, int alignment, Tensor tokensPerExpert);
}

/// <summary>Implemented by kernels that bring their own <see cref="ICapacityKernels"/> (device backends).</summary>
internal interface ICapacityKernelSource
{
    /// <summary>The capacity kernels over this backend's tensors.</summary>
    ICapacityKernels CapacityKernels { get; }
}

/// <summary>The sizes capacity mode's kernels share.</summary>
/// <param name="Ranks">S: ranks of the EP group.</param>
/// <param name="LocalExperts">e = E/S.</param>
/// <param name="RowsPerPeer">C: rows of each peer's slot.</param>
/// <param name="Alignment">A: the expert alignment.</param>
/// <param name="SpSize">Ranks of each SP group (consecutive ranks), for the check of T.</param>
/// <param name="Tokens">T of this rank's SP group, sent in the messages.</param>
internal readonly record struct CapacityShape(
    int Ranks,
    int LocalExperts,
    int RowsPerPeer,
    int Alignment,
    int SpSize = 1,
    int Tokens = 0
)
{
    /// <summary>E = S·e.</summary>
    public int Experts => Ranks * LocalExperts;
}

/// <summary>
/// The layout of a capacity-mode count message: e counts, C, the overflow flag, the invalid flag, the sender's T.
/// </summary>
internal static class CapacityMessages
{
    /// <summary>int32 values of one message over <paramref name="localExperts"/> experts.</summary>
    public static int Length(int localExperts) => localExperts + 4;

    /// <summary>Offset of C.</summary>
    public static int CapacityOffset(int localExperts) => localExperts;

    /// <summary>Offset of the sender's overflow flag.</summary>
    public static int OverflowOffset(int localExperts) => localExperts + 1;

    /// <summary>Offset of the sender's invalid-entry flag.</summary>
    public static int InvalidOffset(int localExperts) => localExperts + 2;

    /// <summary>Offset of the sender's T (its SP group's token count).</summary>
    public static int TokensOffset(int localExperts) => localExperts + 3;
}

/// <summary>
/// The status block of a capacity-mode dispatch, the only thing it reads to the host without an overflow: words 0–3
/// the scan's first invalid entry (<see cref="EntryScanWords"/> header), then the first rank with an invalid entry
/// (-1 for none), whether any rank overflowed (0 or 1), the first rank whose C differs from rank 0's (-1), and the
/// first rank whose T differs from its SP group's first rank's (-1).
/// </summary>
internal static class CapacityStatus
{
    /// <summary>Words of the block.</summary>
    public const int Length = 8;

    /// <summary>Word of the first rank with an invalid entry.</summary>
    public const int InvalidRank = 4;

    /// <summary>Word of the overflow flag.</summary>
    public const int Overflow = 5;

    /// <summary>Word of the first rank whose capacity differs.</summary>
    public const int CapacityMismatchRank = 6;

    /// <summary>Word of the first rank whose T differs from its SP group's.</summary>
    public const int TokensMismatchRank = 7;
}
