namespace MoeSharp.Collectives;

/// <summary>
/// A group of ranks that run collectives together, in the same order on every rank (as in MPI and
/// NCCL). Rank <c>r</c>'s chunk for peer <c>q</c> is the <c>q</c>-th block of its send buffer.
/// </summary>
/// <remarks>
/// Every collective either completes on every rank or throws on every rank: when a rank fails (its
/// code throws and the runtime aborts the group) or a collective exceeds <see cref="Timeout"/>, the
/// pending and later collectives of every member throw a <see cref="CollectiveException"/> that names
/// the failing rank. Buffers passed to a collective must not be touched until it completes.
/// <para>The span collectives below move small host values (counts, statistics); a rank's rows move as tensors through
/// the members of <see cref="ITensorCollectives"/>, which every group implements for the memory its ranks use.</para>
/// </remarks>
public interface IProcessGroup : ITensorCollectives, IDisposable
{
    /// <summary>This rank's index in the group, in <c>[0, Size)</c>.</summary>
    int Rank { get; }

    /// <summary>Number of ranks in the group.</summary>
    int Size { get; }

    /// <summary>Rank of each member in the world group (index = rank in this group).</summary>
    IReadOnlyList<int> WorldRanks { get; }

    /// <summary>How long a collective may wait for its peers before the group is aborted.</summary>
    TimeSpan Timeout { get; }

    /// <summary>
    /// Collective: splits the group like <c>MPI_Comm_split</c>. Ranks passing the same
    /// <paramref name="color"/> form one sub-group, ordered by <paramref name="key"/> then by rank.
    /// </summary>
    IProcessGroup Split(int color, int key);

    /// <summary>Collective: returns when every rank has entered it.</summary>
    void Barrier();

    /// <summary>
    /// Collective all-to-all of equal chunks: <paramref name="send"/> and <paramref name="receive"/> hold
    /// <c>Size</c> chunks of <c>send.Length / Size</c> elements; chunk <c>q</c> of the send buffer lands
    /// in chunk <c>Rank</c> of rank q's receive buffer.
    /// </summary>
    void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged;

    /// <summary>
    /// Collective all-to-all with variable chunk sizes (in elements): the first
    /// <c>sendCounts[0]</c> elements go to rank 0, the next <c>sendCounts[1]</c> to rank 1, and so on;
    /// the receive buffer holds the chunks from rank 0, 1, … back to back (<paramref name="receiveCounts"/>).
    /// </summary>
    void AllToAllV<T>(
        ReadOnlySpan<T> send,
        ReadOnlySpan<int> sendCounts,
        Span<T> receive,
        ReadOnlySpan<int> receiveCounts
    )
        where T : unmanaged;

    /// <summary>
    /// Starts <see cref="AllToAllV{T}"/> and returns at once, so the caller can compute while rows move.
    /// The buffers belong to the exchange until the returned request completes.
    /// </summary>
    CollectiveRequest AllToAllVAsync<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        Memory<T> receive,
        int[] receiveCounts
    )
        where T : unmanaged;

    /// <summary>
    /// Collective: every rank receives every rank's <paramref name="send"/> (equal lengths), rank-major.
    /// </summary>
    void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged;

    /// <summary>
    /// Collective: element-wise sum over the ranks, in place. The sum is taken in rank order
    /// (<c>((v0 + v1) + v2) + …</c>) on every rank, so the result is bitwise identical everywhere and
    /// between implementations.
    /// </summary>
    void AllReduceSum(Span<float> values);

    /// <inheritdoc cref="AllReduceSum(Span{float})"/>
    void AllReduceSum(Span<double> values);

    /// <inheritdoc cref="AllReduceSum(Span{float})"/>
    void AllReduceSum(Span<long> values);

    /// <summary>
    /// Marks this group (and every group sharing its world) as failed because of <paramref name="error"/>
    /// on this rank: every pending and later collective of every member throws.
    /// </summary>
    void Abort(Exception error);
}
