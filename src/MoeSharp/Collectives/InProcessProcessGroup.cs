using System.Buffers;
using System.Numerics;
using MoeSharp.Tensors;

namespace MoeSharp.Collectives;

/// <summary>
/// A process group whose ranks are threads of one process (the embedded default): collectives move data
/// by memory copy straight between the ranks' buffers, with no serialization and no staging copy.
/// </summary>
/// <remarks>
/// <para>Create a world with <see cref="CreateWorld"/> (or let <see cref="InProcessWorld.Run{T}"/> do it)
/// and hand each rank its group object. A group object belongs to its rank: call it from one thread at a
/// time, the way an MPI rank calls its communicator.</para>
/// <para>Each rank numbers the collectives it calls on a group; the n-th call of every rank meets the
/// others' n-th call. So an <see cref="AllToAllVAsync{T}"/> can stay in flight while the same ranks run
/// later collectives, and calls that do not match (another collective or element type, or chunk sizes a
/// peer does not expect) fail on every rank with a <see cref="CollectiveException"/> naming the ranks.</para>
/// <para>On failure, data already copied into receive buffers stays there: a failed exchange may leave a
/// receive buffer partly written. <see cref="AllReduceSum(Span{float})"/> writes its values only on
/// success. Send buffers are never written.</para>
/// </remarks>
public sealed class InProcessProcessGroup : IProcessGroup
{
    private readonly InProcessGroupState _state;
    private long _nextSequence;
    private bool _disposed;

    private InProcessProcessGroup(InProcessGroupState state, int rank)
    {
        _state = state;
        Rank = rank;
    }

    /// <summary>
    /// Creates a world of <paramref name="size"/> ranks: element <c>r</c> is rank r's group, to be used
    /// from rank r's own thread.
    /// </summary>
    /// <param name="size">Number of ranks, at least 1.</param>
    /// <param name="timeout">How long a collective may wait for its peers (default 60 s);
    /// <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> waits forever.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> &lt; 1, or the timeout is not
    /// positive or exceeds <see cref="int.MaxValue"/> milliseconds.</exception>
    public static InProcessProcessGroup[] CreateWorld(int size, TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var wait = timeout ?? TimeSpan.FromSeconds(60);
        // Monitor.Wait and Timer take at most int.MaxValue milliseconds (about 24 days).
        if (
            wait != System.Threading.Timeout.InfiniteTimeSpan
            && (wait <= TimeSpan.Zero || wait.TotalMilliseconds > int.MaxValue)
        )
        {
            throw new ArgumentOutOfRangeException(
                nameof(timeout),
                wait,
                "the timeout must be positive and at most int.MaxValue ms, or infinite"
            );
        }

        var world = new InProcessWorldState(size, wait);
        var state = new InProcessGroupState(world, Enumerable.Range(0, size).ToArray(), "world");
        return Enumerable.Range(0, size).Select(r => new InProcessProcessGroup(state, r)).ToArray();
    }

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size => _state.Size;

    /// <inheritdoc/>
    public IReadOnlyList<int> WorldRanks => _state.WorldRanks;

    /// <inheritdoc/>
    public TimeSpan Timeout => _state.World.Timeout;

    private int WorldRank => _state.WorldRanks[Rank];

    /// <summary>Why this group's world was aborted, or null while it is healthy.</summary>
    public CollectiveException? Failure
    {
        get
        {
            lock (_state.World.Sync)
                return _state.World.Failure;
        }
    }

    /// <summary>World rank that first reported the failure in <see cref="Failure"/>, or -1.</summary>
    internal int FailureOrigin
    {
        get
        {
            lock (_state.World.Sync)
                return _state.World.FailureOrigin;
        }
    }

    /// <summary>
    /// Tells the world that this rank's code has returned: a collective still waiting for it fails at once
    /// instead of at the timeout.
    /// </summary>
    internal void MarkExited() => _state.World.MarkExited(WorldRank);

    /// <inheritdoc/>
    /// <remarks>Every rank gets a group, whatever its color (there is no "undefined" color).</remarks>
    public IProcessGroup Split(int color, int key)
    {
        ThrowIfDisposed();
        var c = new RankContribution(Rank, WorldRank, CollectiveKind.Split, null, 0) { Color = color, Key = key };
        var slot = _state.Arrive(c, _nextSequence++);
        _state.WaitAllArrived(slot, c);
        var (group, rank) = _state.SplitResult(slot, c);
        _state.Leave(slot, c);
        return new InProcessProcessGroup(group, rank);
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        ThrowIfDisposed();
        var c = new RankContribution(Rank, WorldRank, CollectiveKind.Barrier, null, 0);
        var slot = _state.Arrive(c, _nextSequence++);
        _state.WaitAllArrived(slot, c);
        _state.Leave(slot, c);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException"><paramref name="send"/>'s length is not a multiple of
    /// <see cref="Size"/>, or <paramref name="receive"/>'s length differs from it.</exception>
    public unsafe void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged
    {
        ThrowIfDisposed();
        if (send.Length % Size != 0)
        {
            throw new ArgumentException(
                $"rank {WorldRank}: send has {send.Length} elements, not a multiple of the group size {Size}",
                nameof(send)
            );
        }

        if (receive.Length != send.Length)
        {
            throw new ArgumentException(
                $"rank {WorldRank}: receive has {receive.Length} elements but send has {send.Length}; all-to-all needs equal lengths",
                nameof(receive)
            );
        }

        int[] counts = Enumerable.Repeat(send.Length / Size, Size).ToArray();
        long[] offsets = PrefixSums(counts);
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            Exchange(CollectiveKind.AllToAll, typeof(T), sizeof(T), (nint)s, offsets, counts, (nint)r, offsets, counts);
        }
    }

    /// <inheritdoc/>
    /// <remarks>The buffers may be longer than their counts add up to; elements past the counts are
    /// untouched.</remarks>
    /// <exception cref="ArgumentException">A count array does not have <see cref="Size"/> entries, holds a
    /// negative count, or adds up to more than its buffer holds.</exception>
    public unsafe void AllToAllV<T>(
        ReadOnlySpan<T> send,
        ReadOnlySpan<int> sendCounts,
        Span<T> receive,
        ReadOnlySpan<int> receiveCounts
    )
        where T : unmanaged
    {
        ThrowIfDisposed();
        long[] sendOffsets = CheckCounts(sendCounts, send.Length, nameof(sendCounts), nameof(send));
        long[] receiveOffsets = CheckCounts(receiveCounts, receive.Length, nameof(receiveCounts), nameof(receive));
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            Exchange(
                CollectiveKind.AllToAllV,
                typeof(T),
                sizeof(T),
                (nint)s,
                sendOffsets,
                sendCounts.ToArray(),
                (nint)r,
                receiveOffsets,
                receiveCounts.ToArray()
            );
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The copies into this rank's receive buffer run on the thread pool as soon as every rank has called
    /// its side. The count arrays are read at once (the caller may reuse them). Throws at once if the world
    /// is already aborted; a later failure or timeout surfaces from <see cref="CollectiveRequest.Wait"/>.
    /// </remarks>
    /// <exception cref="ArgumentException">As for <see cref="AllToAllV{T}"/>.</exception>
    public CollectiveRequest AllToAllVAsync<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        Memory<T> receive,
        int[] receiveCounts
    )
        where T : unmanaged => AllToAllVBlocks(send, sendCounts, null, receive, receiveCounts, null, wait: false);

    /// <summary>
    /// The all-to-all-v where either side's chunks may be lists of blocks (<see cref="ChunkBlocks"/>) instead of runs
    /// at the counts' prefix sums: each element still moves once, straight from the sender's buffer into the
    /// receiver's. With <paramref name="wait"/> it returns once this rank's data has arrived and its buffers are free
    /// (as <see cref="AllToAllV{T}"/>), else at once (as <see cref="AllToAllVAsync{T}"/>).
    /// </summary>
    /// <exception cref="ArgumentException">As for <see cref="AllToAllV{T}"/>, or blocks that do not add up to the
    /// counts or leave their buffer.</exception>
    internal unsafe CollectiveRequest AllToAllVBlocks<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        ChunkBlocks? sendBlocks,
        Memory<T> receive,
        int[] receiveCounts,
        ChunkBlocks? receiveBlocks,
        bool wait
    )
        where T : unmanaged
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(sendCounts);
        ArgumentNullException.ThrowIfNull(receiveCounts);
        // With blocks the counts need not fit the buffer as one run each (a sender may send an element twice): the
        // blocks are checked against it instead.
        long[] sendOffsets = CheckCounts(
            sendCounts,
            sendBlocks is null ? send.Length : long.MaxValue,
            nameof(sendCounts),
            nameof(send)
        );
        long[] receiveOffsets = CheckCounts(
            receiveCounts,
            receiveBlocks is null ? receive.Length : long.MaxValue,
            nameof(receiveCounts),
            nameof(receive)
        );
        CheckBlocks(sendBlocks, sendCounts, send.Length, nameof(sendBlocks));
        CheckBlocks(receiveBlocks, receiveCounts, receive.Length, nameof(receiveBlocks));
        if (wait)
        {
            using var sendHandle = send.Pin();
            using var receiveHandle = receive.Pin();
            Exchange(
                CollectiveKind.AllToAllV,
                typeof(T),
                sizeof(T),
                (nint)sendHandle.Pointer,
                sendOffsets,
                (int[])sendCounts.Clone(),
                (nint)receiveHandle.Pointer,
                receiveOffsets,
                (int[])receiveCounts.Clone(),
                sendBlocks,
                receiveBlocks
            );
            return CollectiveRequest.Completed;
        }

        // Pinned until the exchange completes: peers read and write these addresses from other threads.
        var sendPin = send.Pin();
        var receivePin = receive.Pin();
        var pending = new AsyncExchange(sendPin, receivePin);
        var c = new RankContribution(Rank, WorldRank, CollectiveKind.AllToAllV, typeof(T), sizeof(T))
        {
            SendBase = (nint)sendPin.Pointer,
            SendOffsets = sendOffsets,
            SendCounts = (int[])sendCounts.Clone(),
            ReceiveBase = (nint)receivePin.Pointer,
            ReceiveOffsets = receiveOffsets,
            ReceiveCounts = (int[])receiveCounts.Clone(),
            SendBlocks = sendBlocks,
            ReceiveBlocks = receiveBlocks,
            Async = pending,
        };
        try
        {
            _state.Arrive(c, _nextSequence++);
        }
        catch (CollectiveException ex)
        {
            pending.Complete(ex);
            throw;
        }

        return new CollectiveRequest(pending.Task);
    }

    /// <summary>
    /// The all-to-all-v without its copy: every rank offers rows of its buffer (<paramref name="sendCounts"/>[q]
    /// elements to rank q, at <paramref name="sendBlocks"/> or the counts' prefix sums); once all have arrived, this
    /// rank runs <paramref name="read"/> on the address of every row its peers offer it (rank 0's first, each in its
    /// block order: the order the all-to-all-v would have put them in), and returns when every rank's read is done, so
    /// no peer reads this rank's rows any more. A read that throws aborts the world, as a failed copy does.
    /// </summary>
    /// <param name="send">This rank's rows.</param>
    /// <param name="sendCounts">Elements offered to each rank, whole rows.</param>
    /// <param name="sendBlocks">Where each rank's rows lie, or null for one run per rank.</param>
    /// <param name="receiveCounts">Elements each rank offers this one, whole rows.</param>
    /// <param name="rowLength">Elements per row.</param>
    /// <param name="read">This rank's work on its peers' rows; the addresses are valid only during the call.</param>
    internal unsafe void ReadPeerRows<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        ChunkBlocks? sendBlocks,
        int[] receiveCounts,
        int rowLength,
        Action<nint[]> read
    )
        where T : unmanaged
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(read);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 1);
        long[] sendOffsets = CheckCounts(
            sendCounts,
            sendBlocks is null ? send.Length : long.MaxValue,
            nameof(sendCounts),
            nameof(send)
        );
        long[] receiveOffsets = CheckCounts(receiveCounts, long.MaxValue, nameof(receiveCounts), nameof(receiveCounts));
        CheckBlocks(sendBlocks, sendCounts, send.Length, nameof(sendBlocks));
        using var sendHandle = send.Pin();
        Exchange(
            CollectiveKind.ReadPeerRows,
            typeof(T),
            sizeof(T),
            (nint)sendHandle.Pointer,
            sendOffsets,
            (int[])sendCounts.Clone(),
            0,
            receiveOffsets,
            (int[])receiveCounts.Clone(),
            sendBlocks,
            null,
            (slot, c) => read(ChunkCopier.RowAddresses(slot, c, rowLength))
        );
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException"><paramref name="receive"/> does not hold exactly
    /// <see cref="Size"/> times <paramref name="send"/>'s length.</exception>
    public unsafe void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged
    {
        ThrowIfDisposed();
        if (receive.Length != (long)send.Length * Size)
        {
            throw new ArgumentException(
                $"rank {WorldRank}: receive has {receive.Length} elements but all-gather of {send.Length} elements "
                    + $"over {Size} ranks needs {(long)send.Length * Size}",
                nameof(receive)
            );
        }

        // Every peer gets the whole send buffer; the receive buffer holds one block per rank.
        int[] counts = Enumerable.Repeat(send.Length, Size).ToArray();
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            Exchange(
                CollectiveKind.AllGather,
                typeof(T),
                sizeof(T),
                (nint)s,
                new long[Size],
                counts,
                (nint)r,
                PrefixSums(counts),
                counts
            );
        }
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values) => AllReduce(values);

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values) => AllReduce(values);

    /// <inheritdoc/>
    public void AllReduceSum(Span<long> values) => AllReduce(values);

    /// <inheritdoc/>
    /// <remarks>
    /// Host tensors of any dtype; the ranks copy straight between the tensors' storage, as
    /// <see cref="AllToAllV{T}"/> does.
    /// </remarks>
    public void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts) =>
        HostTensorCollectives.AllToAllV(this, send, sendCounts, receive, receiveCounts);

    /// <inheritdoc/>
    /// <remarks>As <see cref="AllToAllVAsync{T}"/>, on the tensors' storage.</remarks>
    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts) =>
        HostTensorCollectives.AllToAllVAsync(this, send, sendCounts, receive, receiveCounts);

    /// <inheritdoc/>
    public void AllReduceSum(Tensor values) => HostTensorCollectives.AllReduceSum(this, values);

    /// <inheritdoc/>
    public void Abort(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        _state.World.Fail(
            new CollectiveException(
                $"rank {WorldRank} failed: {error.GetType().Name}: {error.Message}",
                WorldRank,
                error
            ),
            WorldRank
        );
    }

    /// <summary>
    /// Stops this rank's use of the group: later calls throw <see cref="ObjectDisposedException"/>. Does not
    /// abort the peers. Safe to call more than once.
    /// </summary>
    public void Dispose() => _disposed = true;

    /// <inheritdoc/>
    public override string ToString() => $"InProcessProcessGroup(rank {Rank} of {Size}, {_state.Name})";

    private unsafe void Exchange(
        CollectiveKind kind,
        Type elementType,
        int elementSize,
        nint send,
        long[] sendOffsets,
        int[] sendCounts,
        nint receive,
        long[] receiveOffsets,
        int[] receiveCounts,
        ChunkBlocks? sendBlocks = null,
        ChunkBlocks? receiveBlocks = null,
        Action<CollectiveSlot, RankContribution>? work = null
    )
    {
        var c = new RankContribution(Rank, WorldRank, kind, elementType, elementSize)
        {
            SendBlocks = sendBlocks,
            ReceiveBlocks = receiveBlocks,
            SendBase = send,
            SendOffsets = sendOffsets,
            SendCounts = sendCounts,
            ReceiveBase = receive,
            ReceiveOffsets = receiveOffsets,
            ReceiveCounts = receiveCounts,
        };
        var slot = _state.Arrive(c, _nextSequence++);
        _state.WaitAllArrived(slot, c);
        _state.BeginWork(slot, c);
        Exception? error = null;
        try
        {
            (work ?? ChunkCopier.Pull)(slot, c);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        _state.EndWork(slot, c, error);
        _state.WaitAllWorked(slot, c);
        _state.Leave(slot, c);
    }

    private unsafe void AllReduce<T>(Span<T> values)
        where T : unmanaged, INumber<T>
    {
        ThrowIfDisposed();
        fixed (T* p = values)
        {
            var c = new RankContribution(Rank, WorldRank, CollectiveKind.AllReduceSum, typeof(T), sizeof(T))
            {
                SendBase = (nint)p,
                Length = values.Length,
            };
            var slot = _state.Arrive(c, _nextSequence++);
            _state.WaitAllArrived(slot, c);

            // Peers read our values until every rank has summed, so the sum goes to scratch first.
            T[] sum = ArrayPool<T>.Shared.Rent(values.Length);
            try
            {
                _state.BeginWork(slot, c);
                Exception? error = null;
                try
                {
                    RankOrderSum.Sum(slot, sum.AsSpan(0, values.Length));
                }
                catch (Exception ex)
                {
                    error = ex;
                }

                _state.EndWork(slot, c, error);
                _state.WaitAllWorked(slot, c);
                sum.AsSpan(0, values.Length).CopyTo(values);
                _state.Leave(slot, c);
            }
            finally
            {
                ArrayPool<T>.Shared.Return(sum);
            }
        }
    }

    /// <summary>Validates a count array against its buffer and returns each chunk's offset.</summary>
    private long[] CheckCounts(ReadOnlySpan<int> counts, long bufferLength, string countsName, string bufferName)
    {
        if (counts.Length != Size)
        {
            throw new ArgumentException(
                $"rank {WorldRank}: {countsName} has {counts.Length} entries but the group has {Size} ranks",
                countsName
            );
        }

        var offsets = new long[Size];
        long total = 0;
        for (int i = 0; i < Size; i++)
        {
            if (counts[i] < 0)
            {
                throw new ArgumentException(
                    $"rank {WorldRank}: {countsName}[{i}] = {counts[i]} is negative",
                    countsName
                );
            }

            offsets[i] = total;
            total += counts[i];
        }

        if (total > bufferLength)
        {
            throw new ArgumentException(
                $"rank {WorldRank}: {countsName} add up to {total} elements but {bufferName} holds {bufferLength}",
                bufferName
            );
        }

        return offsets;
    }

    private void CheckBlocks(ChunkBlocks? blocks, ReadOnlySpan<int> counts, int bufferLength, string name)
    {
        if (blocks?.Check(counts, bufferLength) is { } error)
            throw new ArgumentException($"rank {WorldRank}: {name}: {error}", name);
    }

    private static long[] PrefixSums(int[] counts)
    {
        var offsets = new long[counts.Length];
        for (int i = 1; i < counts.Length; i++)
            offsets[i] = offsets[i - 1] + counts[i - 1];
        return offsets;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
