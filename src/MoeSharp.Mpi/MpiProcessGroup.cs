using System.Buffers;
using System.Runtime.CompilerServices;
using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Mpi;

/// <summary>
/// A process group over MPI: one process per rank, on one machine or many, launched by <c>mpiexec</c>.
/// Works with Open MPI (<c>libmpi.so.40</c>) and MPICH-family libraries (<c>libmpi.so.12</c>,
/// Debian's <c>libmpich.so.12</c>), loaded at run time; no MPI package is needed at build time.
/// </summary>
/// <remarks>
/// <para><b>Failures.</b> MPI cannot make the other ranks' pending collectives throw. Instead a failing rank
/// calls <see cref="Abort"/>, which prints <c>rank R failed: message</c> to stderr and ends the whole job with
/// <c>MPI_Abort</c>, so that no rank hangs; <see cref="RunOrAbort"/> does this for a rank's body. Every MPI
/// error code is thrown as an <see cref="MpiException"/> naming the function and the code.</para>
/// <para><b>Timeouts.</b> A blocking MPI call cannot be cancelled. A collective that has not completed within
/// <see cref="Timeout"/> aborts the job (message on stderr naming the rank and the collective);
/// <see cref="Timeout.InfiniteTimeSpan"/> disables this.</para>
/// <para><b>Threads.</b> MPI is initialized with <c>MPI_THREAD_MULTIPLE</c>, because asynchronous exchanges
/// complete on another thread. If the library only grants <c>MPI_THREAD_SERIALIZED</c>, every MPI call is
/// made under one lock instead (see <see cref="ThreadLevel"/>); lower levels are rejected.</para>
/// <para><b>Large messages.</b> MPI counts are 32-bit; chunks too large for one collective travel as
/// point-to-point pieces of at most 1 GiB, so exchanges over 2^31 bytes work.</para>
/// </remarks>
public sealed unsafe class MpiProcessGroup : IProcessGroup
{
    /// <summary>The timeout used when <see cref="InitWorld"/> is given none.</summary>
    public static TimeSpan DefaultTimeout { get; } = TimeSpan.FromMinutes(5);

    private readonly MpiRuntime _runtime;
    private readonly nint _comm;
    private readonly bool _isWorld;
    private readonly ExchangeLimits _limits;
    private int _disposed;

    private MpiProcessGroup(
        MpiRuntime runtime,
        nint comm,
        bool isWorld,
        int rank,
        int size,
        int[] worldRanks,
        TimeSpan timeout,
        ExchangeLimits limits
    )
    {
        _runtime = runtime;
        _comm = comm;
        _isWorld = isWorld;
        Rank = rank;
        Size = size;
        WorldRanks = worldRanks;
        Timeout = timeout;
        _limits = limits;
    }

    /// <summary>
    /// Initializes MPI (<c>MPI_Init_thread</c>) and returns the world group: every process started by
    /// <c>mpiexec</c> is one rank. Call once per process; disposing the world group calls <c>MPI_Finalize</c>.
    /// </summary>
    /// <param name="timeout">How long a collective may wait for its peers before the job is aborted
    /// (default <see cref="DefaultTimeout"/>; <see cref="Timeout.InfiniteTimeSpan"/> never aborts).</param>
    /// <exception cref="DllNotFoundException">No MPI library is installed; the message says how to install
    /// one.</exception>
    /// <exception cref="InvalidOperationException">MPI was already initialized or finalized in this
    /// process.</exception>
    /// <exception cref="NotSupportedException">The MPI library lacks thread support.</exception>
    public static MpiProcessGroup InitWorld(TimeSpan? timeout = null) =>
        InitWorldWithLimits(timeout, ExchangeLimits.Mpi);

    /// <summary>As <see cref="InitWorld(TimeSpan?)"/>, with lowered message limits for tests.</summary>
    internal static MpiProcessGroup InitWorldWithLimits(TimeSpan? timeout, ExchangeLimits limits)
    {
        TimeSpan t = timeout ?? DefaultTimeout;
        if (t <= TimeSpan.Zero && t != System.Threading.Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(
                nameof(timeout),
                t,
                "The timeout must be positive or Timeout.InfiniteTimeSpan."
            );
        MpiRuntime runtime = MpiRuntime.Initialize();
        int[] worldRanks = Enumerable.Range(0, runtime.WorldSize).ToArray();
        return new MpiProcessGroup(
            runtime,
            runtime.Abi.CommWorld,
            isWorld: true,
            runtime.WorldRank,
            runtime.WorldSize,
            worldRanks,
            t,
            limits
        );
    }

    /// <summary>
    /// Runs one rank's <paramref name="body"/> on the MPI world group and finalizes MPI afterwards. If the body
    /// throws, prints <c>rank R failed: message</c> and aborts the whole job (<see cref="Abort"/>), so the other
    /// ranks do not wait forever for this one. Returns 0 (the process exit code) when the body succeeds.
    /// </summary>
    public static int RunOrAbort(Action<IProcessGroup> body, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        using MpiProcessGroup world = InitWorld(timeout);
        try
        {
            body(world);
        }
        catch (Exception ex)
        {
            world.Abort(ex);
        }
        return 0;
    }

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <inheritdoc/>
    public IReadOnlyList<int> WorldRanks { get; }

    /// <inheritdoc/>
    public TimeSpan Timeout { get; }

    /// <summary>The MPI implementation and library in use, e.g. <c>Open MPI (libmpi.so.40)</c>.</summary>
    public string Implementation => $"{_runtime.Abi.Flavor} ({_runtime.Abi.LibraryName})";

    /// <summary>The thread support MPI granted: <see cref="MpiThreadLevel.Multiple"/>, or
    /// <see cref="MpiThreadLevel.Serialized"/> when every MPI call is made under one lock.</summary>
    public MpiThreadLevel ThreadLevel => _runtime.ThreadLevel;

    /// <inheritdoc/>
    public IProcessGroup Split(int color, int key)
    {
        ThrowIfDisposed();
        // MPI_UNDEFINED (a negative color) would leave this rank without a group, which IProcessGroup cannot express.
        ArgumentOutOfRangeException.ThrowIfNegative(color);
        nint comm;
        using (Watchdog.Start(_runtime, Timeout, "Split"))
        using (_runtime.Enter())
            _runtime.Check(_runtime.Abi.CommSplit(_comm, color, key, out comm), "MPI_Comm_split");

        int rank,
            size;
        using (_runtime.Enter())
        {
            _runtime.Check(_runtime.Abi.CommRank(comm, out rank), "MPI_Comm_rank");
            _runtime.Check(_runtime.Abi.CommSize(comm, out size), "MPI_Comm_size");
        }
        var group = new MpiProcessGroup(_runtime, comm, isWorld: false, rank, size, new int[size], Timeout, _limits);
        // Each member contributes its world rank; cheaper to write than MPI_Group_translate_ranks and exact.
        int worldRank = _runtime.WorldRank;
        group.AllGather(new ReadOnlySpan<int>(in worldRank), (int[])group.WorldRanks);
        return group;
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        ThrowIfDisposed();
        using (Watchdog.Start(_runtime, Timeout, "Barrier"))
        using (_runtime.Enter())
            _runtime.Check(_runtime.Abi.Barrier(_comm), "MPI_Barrier");
    }

    /// <inheritdoc/>
    public void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged
    {
        ThrowIfDisposed();
        if (send.Length % Size != 0)
            throw new ArgumentException(
                $"send.Length {send.Length} is not a multiple of the group size {Size} (rank {Rank}).",
                nameof(send)
            );
        if (receive.Length != send.Length)
            throw new ArgumentException(
                $"receive.Length {receive.Length} differs from send.Length {send.Length} (rank {Rank}).",
                nameof(receive)
            );

        T[]? copy = Detach(ref send, receive);
        long total = (long)send.Length * sizeof(T);
        if (total > _limits.MaxCollectiveBytes)
        {
            // MPI_Alltoall's count is an int: take the all-to-all-v path, which splits large chunks.
            int[] counts = new int[Size];
            Array.Fill(counts, send.Length / Size);
            ExchangeBlocking(send, receive, ExchangePlan.ForCounts(counts, counts, sizeof(T), _limits), "AllToAll");
            return;
        }

        int chunkBytes = (int)(total / Size);
        byte placeholder;
        using (Watchdog.Start(_runtime, Timeout, "AllToAll"))
        using (_runtime.Enter())
            fixed (T* s = send)
            fixed (T* r = receive)
            {
                _runtime.Check(
                    _runtime.Abi.Alltoall(
                        OrPlaceholder(s, &placeholder),
                        chunkBytes,
                        _runtime.Abi.Byte,
                        OrPlaceholder(r, &placeholder),
                        chunkBytes,
                        _runtime.Abi.Byte,
                        _comm
                    ),
                    "MPI_Alltoall"
                );
            }
        GC.KeepAlive(copy);
    }

    /// <summary>
    /// <c>MPI_Alltoallv</c> of bytes called directly, with no validation, planning or large-message handling:
    /// the baseline the benchmark compares <see cref="AllToAllV{T}"/> against. Counts and displacements in bytes.
    /// </summary>
    internal void RawAllToAllVBytes(
        ReadOnlySpan<byte> send,
        int[] sendCounts,
        int[] sendDispls,
        Span<byte> receive,
        int[] receiveCounts,
        int[] receiveDispls
    )
    {
        fixed (byte* s = send)
        fixed (byte* r = receive)
        fixed (int* sc = sendCounts)
        fixed (int* sd = sendDispls)
        fixed (int* rc = receiveCounts)
        fixed (int* rd = receiveDispls)
            using (_runtime.Enter())
            {
                _runtime.Check(
                    _runtime.Abi.Alltoallv(s, sc, sd, _runtime.Abi.Byte, r, rc, rd, _runtime.Abi.Byte, _comm),
                    "MPI_Alltoallv"
                );
            }
    }

    /// <inheritdoc/>
    public void AllToAllV<T>(
        ReadOnlySpan<T> send,
        ReadOnlySpan<int> sendCounts,
        Span<T> receive,
        ReadOnlySpan<int> receiveCounts
    )
        where T : unmanaged
    {
        ThrowIfDisposed();
        ValidateCounts(
            send.Length,
            sendCounts,
            nameof(sendCounts),
            receive.Length,
            receiveCounts,
            nameof(receiveCounts)
        );
        T[]? copy = Detach(ref send, receive);
        ExchangeBlocking(
            send,
            receive,
            ExchangePlan.ForCounts(sendCounts, receiveCounts, sizeof(T), _limits),
            "AllToAllV"
        );
        GC.KeepAlive(copy);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Starts <c>MPI_Ialltoallv</c> with both buffers pinned; a dedicated thread polls <c>MPI_Test</c> (spinning
    /// briefly, then yielding) until it completes, then unpins them. The count arrays are copied, so the caller
    /// may reuse them at once.
    /// </remarks>
    public CollectiveRequest AllToAllVAsync<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        Memory<T> receive,
        int[] receiveCounts
    )
        where T : unmanaged
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(sendCounts);
        ArgumentNullException.ThrowIfNull(receiveCounts);
        ValidateCounts(
            send.Length,
            sendCounts,
            nameof(sendCounts),
            receive.Length,
            receiveCounts,
            nameof(receiveCounts)
        );
        if (send.Span.Overlaps(receive.Span))
            send = send.ToArray();

        ExchangePlan plan = ExchangePlan.ForCounts(sendCounts, receiveCounts, sizeof(T), _limits);
        System.Buffers.MemoryHandle sendPin = send.Pin();
        System.Buffers.MemoryHandle receivePin = receive.Pin();
        PendingExchange exchange;
        try
        {
            exchange = PendingExchange.Start(
                _runtime,
                _comm,
                Rank,
                plan,
                (byte*)sendPin.Pointer,
                (byte*)receivePin.Pointer,
                nonblocking: true
            );
        }
        catch
        {
            sendPin.Dispose();
            receivePin.Dispose();
            throw;
        }

        MpiRuntime runtime = _runtime;
        TimeSpan timeout = Timeout;
        Task completion = Task.Factory.StartNew(
            () =>
            {
                try
                {
                    long start = Environment.TickCount64;
                    var spin = new SpinWait();
                    while (!exchange.Test())
                    {
                        if (
                            timeout != System.Threading.Timeout.InfiniteTimeSpan
                            && Environment.TickCount64 - start > (long)timeout.TotalMilliseconds
                        )
                            runtime.AbortJob(
                                $"rank {runtime.WorldRank}: AllToAllVAsync did not complete within {timeout} (a peer failed or never arrived); aborting the MPI job"
                            );
                        // Spins first (low latency for short exchanges), then yields and sleeps so a long exchange
                        // overlapped with compute does not take a core from it.
                        spin.SpinOnce(sleep1Threshold: 200);
                    }
                }
                finally
                {
                    sendPin.Dispose();
                    receivePin.Dispose();
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default
        );
        return new CollectiveRequest(completion);
    }

    /// <inheritdoc/>
    public void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged
    {
        ThrowIfDisposed();
        if ((long)receive.Length != (long)send.Length * Size)
            throw new ArgumentException(
                $"receive.Length {receive.Length} is not send.Length {send.Length} × group size {Size} (rank {Rank}).",
                nameof(receive)
            );
        T[]? copy = Detach(ref send, receive);
        long chunk = (long)send.Length * sizeof(T);
        if (chunk * Size > _limits.MaxCollectiveBytes)
        {
            // Every rank sends the same size, so every rank takes this path; each direction then exceeds
            // MaxCollectiveBytes / Size and travels point to point (see ExchangePlan).
            var sendOffsets = new long[Size];
            var bytes = new long[Size];
            var receiveOffsets = new long[Size];
            for (int q = 0; q < Size; q++)
            {
                bytes[q] = chunk;
                receiveOffsets[q] = q * chunk;
            }
            ExchangeBlocking(
                send,
                receive,
                ExchangePlan.Create(sendOffsets, bytes, receiveOffsets, bytes, _limits),
                "AllGather"
            );
            return;
        }

        byte placeholder;
        using (Watchdog.Start(_runtime, Timeout, "AllGather"))
        using (_runtime.Enter())
            fixed (T* s = send)
            fixed (T* r = receive)
            {
                _runtime.Check(
                    _runtime.Abi.Allgather(
                        OrPlaceholder(s, &placeholder),
                        (int)chunk,
                        _runtime.Abi.Byte,
                        OrPlaceholder(r, &placeholder),
                        (int)chunk,
                        _runtime.Abi.Byte,
                        _comm
                    ),
                    "MPI_Allgather"
                );
            }
        GC.KeepAlive(copy);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Implemented as <c>MPI_Allgather</c> followed by a local sum in rank order, not <c>MPI_Allreduce</c>:
    /// MPI leaves the reduction order to the implementation, which would break the bitwise agreement with
    /// the in-process group. The cost is <c>Size</c> times the data, fine for the small vectors reduced here.
    /// </remarks>
    public void AllReduceSum(Span<float> values) => OrderedAllReduce(values);

    /// <inheritdoc cref="AllReduceSum(Span{float})"/>
    public void AllReduceSum(Span<double> values) => OrderedAllReduce(values);

    /// <inheritdoc cref="AllReduceSum(Span{float})"/>
    public void AllReduceSum(Span<long> values) => OrderedAllReduce(values);

    /// <inheritdoc/>
    /// <remarks>
    /// Host tensors of any dtype, moved from and into their own storage by <see cref="AllToAllV{T}"/> (no staging
    /// copy unless the two tensors share storage, which MPI forbids).
    /// </remarks>
    public void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts) =>
        HostTensorCollectives.AllToAllV(this, send, sendCounts, receive, receiveCounts);

    /// <inheritdoc/>
    /// <remarks>As <see cref="AllToAllVAsync{T}"/>, on the tensors' storage.</remarks>
    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts) =>
        HostTensorCollectives.AllToAllVAsync(this, send, sendCounts, receive, receiveCounts);

    /// <inheritdoc/>
    /// <remarks>As <see cref="AllReduceSum(Span{float})"/>: an all-gather and a local sum in rank order.</remarks>
    public void AllReduceSum(Tensor values) => HostTensorCollectives.AllReduceSum(this, values);

    /// <inheritdoc/>
    public override string ToString() => $"MpiProcessGroup(rank {Rank} of {Size}, {Implementation})";

    /// <inheritdoc/>
    /// <remarks>
    /// Prints <c>rank R failed: message</c> (R is the world rank) and the exception to stderr, then calls
    /// <c>MPI_Abort(MPI_COMM_WORLD, 1)</c>: the launcher kills every rank and exits non-zero. Does not return.
    /// </remarks>
    public void Abort(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        _runtime.AbortJob($"rank {_runtime.WorldRank} failed: {error.Message}{Environment.NewLine}{error}");
    }

    /// <summary>
    /// Frees the communicator (<c>MPI_Comm_free</c>) of a split group, or finalizes MPI
    /// (<c>MPI_Finalize</c>, collective over the world) for the world group. Idempotent.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (_isWorld)
        {
            _runtime.FinalizeOnce();
        }
        else if (!_runtime.IsFinalized)
        {
            using (_runtime.Enter())
                _runtime.Check(_runtime.Abi.CommFree(_comm), "MPI_Comm_free");
        }
    }

    private void OrderedAllReduce<T>(Span<T> values)
        where T : unmanaged, System.Numerics.INumber<T>
    {
        ThrowIfDisposed();
        T[] gathered = ArrayPool<T>.Shared.Rent(values.Length * Size);
        try
        {
            Span<T> all = gathered.AsSpan(0, values.Length * Size);
            AllGather<T>(values, all);
            OrderedSum.Sum<T>(all, values);
        }
        finally
        {
            ArrayPool<T>.Shared.Return(gathered);
        }
    }

    private void ExchangeBlocking<T>(ReadOnlySpan<T> send, Span<T> receive, ExchangePlan plan, string operation)
        where T : unmanaged
    {
        using (Watchdog.Start(_runtime, Timeout, operation))
            fixed (T* s = send)
            fixed (T* r = receive)
            {
                PendingExchange.Start(_runtime, _comm, Rank, plan, (byte*)s, (byte*)r, nonblocking: false).Wait();
            }
    }

    private void ValidateCounts(
        int sendLength,
        ReadOnlySpan<int> sendCounts,
        string sendName,
        int receiveLength,
        ReadOnlySpan<int> receiveCounts,
        string receiveName
    )
    {
        Validate(sendLength, sendCounts, sendName, "send");
        Validate(receiveLength, receiveCounts, receiveName, "receive");

        void Validate(int length, ReadOnlySpan<int> counts, string name, string buffer)
        {
            if (counts.Length != Size)
                throw new ArgumentException(
                    $"{name} has {counts.Length} entries; the group has {Size} ranks (rank {Rank}).",
                    name
                );
            long sum = 0;
            for (int q = 0; q < counts.Length; q++)
            {
                if (counts[q] < 0)
                    throw new ArgumentOutOfRangeException(name, counts[q], $"{name}[{q}] is negative (rank {Rank}).");
                sum += counts[q];
            }
            if (sum > length)
                throw new ArgumentException(
                    $"{name} sum to {sum} elements but the {buffer} buffer holds {length} (rank {Rank}).",
                    name
                );
        }
    }

    // MPI forbids overlapping send and receive buffers; copying the send side keeps the caller's contract simple.
    private static T[]? Detach<T>(ref ReadOnlySpan<T> send, Span<T> receive)
    {
        if (!send.Overlaps(receive))
            return null;
        T[] copy = send.ToArray();
        send = copy;
        return copy;
    }

    // MPI may reject null buffers even with zero counts, and empty spans pin to null.
    private static void* OrPlaceholder<T>(T* p, byte* placeholder)
        where T : unmanaged => p == null ? placeholder : p;

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
