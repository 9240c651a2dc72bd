using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Nccl;

/// <summary>
/// A process group whose ranks are GPUs: device tensors move through an NCCL communicator, host values through a
/// bootstrap <see cref="IProcessGroup"/> (in-process threads — one process driving several GPUs, a thread per GPU —
/// or <c>MpiProcessGroup</c> — one process per GPU under <c>mpirun</c>).
/// </summary>
/// <remarks>
/// <para><b>Setup.</b> <see cref="Create"/> is collective over the bootstrap group: rank 0 creates the
/// <c>ncclUniqueId</c>, every rank gets it through <c>AllGather</c> (the group has no broadcast), selects its device
/// (<c>cudaSetDevice</c>) and joins with <c>ncclCommInitRank</c>.</para>
/// <para><b>Host collectives</b> (all-to-all-v of host spans, all-gather, all-reduce, barrier, split) go to the
/// bootstrap group: they carry small host values, for which staging through device memory would only add copies. The
/// dispatcher's count exchange does not come here: its count messages are built on the device and exchanged with
/// <see cref="AllToAllV"/> (int32), and one device→host copy brings them back with the rank's own scan.</para>
/// <para><b>Device collectives</b> are queued, not waited for: the host goes on queueing kernels while they run.
/// <see cref="AllToAllV"/> is grouped <c>ncclSend</c>/<c>ncclRecv</c> on the compute stream. <see
/// cref="AllToAllVAsync"/> runs the same on a second, communication stream that first waits for an event recorded on
/// the compute stream (so the send buffer is ready) and records a completion event that the request's <c>Wait</c> makes
/// the compute stream wait for, so the compute stream stays free meanwhile (shared experts overlap the exchange).
/// <see cref="AllReduceSum(Tensor)"/> sums in rank order: <c>ncclAllGather</c> into a <c>[S, n]</c> scratch, then the
/// ordered sum <c>((v0 + v1) + v2) + …</c> by a device kernel queued after it (<see cref="IRankOrderedSum"/>, the ILGPU
/// backend's) or, without one, on the host after one device→host copy and one copy back; identical float adds on every
/// rank keep the result bitwise equal everywhere and to the host and MPI groups.</para>
/// <para><b>Waiting and failure.</b> The host waits only where it reads device memory. Those waits come through
/// <see cref="Drain"/> (the device backend's <c>HostWaits</c> guard, installed by <c>DeviceRank</c>), which polls the
/// stream together with <c>ncclCommGetAsyncError</c> and <see cref="Timeout"/> instead of blocking in
/// <c>cudaStreamSynchronize</c>, which would hang if a peer died. On any failure this rank aborts its communicator
/// (<c>ncclCommAbort</c>) and the bootstrap group, so peers' collectives throw instead of hanging (a peer blocked in a
/// wait sees its own timeout or NCCL's remote error).</para>
/// <para>A group is driven by one thread at a time (NCCL group calls are per thread).</para>
/// </remarks>
public sealed class NcclProcessGroup : IProcessGroup, IStreamDrain
{
    private readonly IProcessGroup _bootstrap;
    private readonly bool _ownsBootstrap;
    private readonly CudaRuntime _cuda;
    private readonly NcclLibrary _nccl;
    private readonly bool _ownsComputeStream;
    private readonly Action? _bindContext;
    private readonly IRankOrderedSum? _orderedSum;
    private nint _comm;
    private int _aborted;
    private int _disposed;

    private NcclProcessGroup(
        IProcessGroup bootstrap,
        bool ownsBootstrap,
        CudaRuntime cuda,
        NcclLibrary nccl,
        int device,
        nint comm,
        nint computeStream,
        bool ownsComputeStream,
        nint communicationStream,
        Action? bindContext,
        IRankOrderedSum? orderedSum
    )
    {
        _bindContext = bindContext;
        _orderedSum = orderedSum;
        _bootstrap = bootstrap;
        _ownsBootstrap = ownsBootstrap;
        _cuda = cuda;
        _nccl = nccl;
        Device = device;
        _comm = comm;
        ComputeStream = computeStream;
        _ownsComputeStream = ownsComputeStream;
        CommunicationStream = communicationStream;
    }

    /// <summary>
    /// Collective over <paramref name="bootstrap"/>: creates this rank's NCCL communicator on <paramref
    /// name="device"/>.
    /// </summary>
    /// <param name="bootstrap">Host group whose ranks become this group's ranks (same rank numbers).</param>
    /// <param name="device">This rank's CUDA device ordinal (its local GPU).</param>
    /// <param name="computeStream">
    /// The stream this rank's kernels run on (e.g. the ILGPU accelerator stream's native pointer); device collectives
    /// are ordered on it. 0 creates a non-blocking stream owned by the group (<see cref="ComputeStream"/>).
    /// </param>
    /// <param name="ownsBootstrap">Dispose <paramref name="bootstrap"/> with this group.</param>
    /// <param name="bindContext">
    /// Makes the rank's CUDA context current on the calling thread. Null selects the device's primary context
    /// (<c>cudaSetDevice</c>); a backend with its own driver-API context (ILGPU creates one) passes its bind, so NCCL
    /// and the kernels share one context and its memory.
    /// </param>
    /// <param name="computeStreamIsLegacyDefault">
    /// The kernels run on the legacy default stream (pointer 0, as ILGPU's default stream is): use it as the compute
    /// stream instead of creating one.
    /// </param>
    /// <param name="orderedSum">
    /// The device kernel and scratch for <see cref="AllReduceSum(Tensor)"/> (sub-groups from <see cref="Split"/> keep
    /// it); null sums on the host.
    /// </param>
    public static NcclProcessGroup Create(
        IProcessGroup bootstrap,
        int device,
        nint computeStream = 0,
        bool ownsBootstrap = false,
        Action? bindContext = null,
        bool computeStreamIsLegacyDefault = false,
        IRankOrderedSum? orderedSum = null
    )
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        int rank = bootstrap.Rank;
        nint ownedCompute = 0,
            communication = 0;
        CudaRuntime? cuda = null;
        NcclProcessGroup? group = null;
        try
        {
            cuda = CudaRuntime.Shared;
            NcclLibrary nccl = NcclLibrary.Shared;
            int devices = cuda.DeviceCount();
            if (device < 0 || device >= devices)
                throw new ArgumentOutOfRangeException(
                    nameof(device),
                    device,
                    $"rank {rank}: device {device} does not exist ({devices} CUDA devices visible)"
                );
            if (bindContext is null)
                cuda.SetDevice(device);
            else
                bindContext();

            var mine = new byte[NcclConstants.UniqueIdBytes];
            if (rank == 0)
                mine = nccl.GetUniqueId(rank).ToArray();
            var all = new byte[NcclConstants.UniqueIdBytes * bootstrap.Size];
            bootstrap.AllGather<byte>(mine, all);
            NcclUniqueId id = NcclUniqueId.FromBytes(all.AsSpan(0, NcclConstants.UniqueIdBytes));

            if (computeStream == 0 && !computeStreamIsLegacyDefault)
                computeStream = ownedCompute = cuda.StreamCreate(CudaConstants.StreamNonBlocking);
            communication = cuda.StreamCreate(CudaConstants.StreamNonBlocking);
            nint comm = nccl.CommInitRank(bootstrap.Size, id, rank);
            group = new NcclProcessGroup(
                bootstrap,
                ownsBootstrap,
                cuda,
                nccl,
                device,
                comm,
                computeStream,
                ownedCompute != 0,
                communication,
                bindContext,
                orderedSum
            );
            ownedCompute = communication = 0; // the group owns its streams now
            group.ConnectPeers();
            return group;
        }
        catch (Exception ex)
        {
            if (cuda is not null)
            {
                if (ownedCompute != 0)
                    cuda.StreamDestroy(ownedCompute);
                if (communication != 0)
                    cuda.StreamDestroy(communication);
            }
            // Peers wait in the id exchange, in ncclCommInitRank or in the connecting exchange; aborting the bootstrap
            // group releases the first, aborting the communicator the others.
            bootstrap.Abort(ex);
            if (group is not null)
            {
                group.AbortCommunicator();
                group.Dispose();
            }
            throw;
        }
    }

    /// <summary>
    /// NCCL connects to a peer lazily, inside the group call of the first exchange with it, and blocks there until the
    /// peer takes part: a rank that failed before its first exchange would leave the others stuck in
    /// <c>ncclGroupEnd</c>, where no timeout reaches. Creating the group is collective anyway, so every rank connects
    /// here, once: one int32 to and from every peer (the all-to-all's point-to-point connections) and an all-gather of
    /// one (the collectives' ring).
    /// </summary>
    private void ConnectPeers()
    {
        int n = Size;
        using var scratch = new CudaDeviceBuffer(_cuda, Device, 4L * n * sizeof(int));
        try
        {
            BindDevice();
            nint comm = Comm,
                bytes = scratch.Pointer;
            Post(
                NcclExchangePlan.Create(
                    Enumerable.Repeat(1, n).ToArray(),
                    Enumerable.Repeat(1, n).ToArray(),
                    n,
                    sizeof(int),
                    n,
                    n
                ),
                bytes,
                bytes + n * sizeof(int),
                NcclConstants.Int32,
                ComputeStream
            );
            _nccl.AllGather(bytes, bytes + 2 * n * sizeof(int), 1, NcclConstants.Int32, comm, ComputeStream, Rank);
            WaitUntil(() => _cuda.StreamQuery(ComputeStream), "connecting the NCCL peers");
        }
        catch
        {
            // Before the scratch is freed: freeing waits for the device, where the exchange may be stuck on a dead
            // peer.
            AbortCommunicator();
            throw;
        }
    }

    /// <summary>This rank's CUDA device ordinal.</summary>
    public int Device { get; }

    /// <summary>The stream device collectives are ordered on.</summary>
    public nint ComputeStream { get; }

    /// <summary>The stream asynchronous exchanges run on.</summary>
    public nint CommunicationStream { get; }

    /// <inheritdoc/>
    public int Rank => _bootstrap.Rank;

    /// <inheritdoc/>
    public int Size => _bootstrap.Size;

    /// <inheritdoc/>
    public IReadOnlyList<int> WorldRanks => _bootstrap.WorldRanks;

    /// <inheritdoc/>
    public TimeSpan Timeout => _bootstrap.Timeout;

    /// <summary>
    /// Collective: splits the bootstrap group and builds an NCCL communicator for each sub-group (same device and
    /// compute stream).
    /// </summary>
    public IProcessGroup Split(int color, int key)
    {
        ThrowIfUnusable();
        IProcessGroup sub = _bootstrap.Split(color, key);
        return Create(
            sub,
            Device,
            ComputeStream,
            ownsBootstrap: true,
            _bindContext,
            computeStreamIsLegacyDefault: ComputeStream == 0,
            _orderedSum
        );
    }

    /// <inheritdoc/>
    public void Barrier() => _bootstrap.Barrier();

    /// <summary>
    /// Makes this rank's context current on the calling thread (see <see cref="Create"/>'s bindContext).
    /// </summary>
    private void BindDevice()
    {
        if (_bindContext is null)
            _cuda.SetDevice(Device);
        else
            _bindContext();
    }

    /// <inheritdoc/>
    public void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged => _bootstrap.AllToAll(send, receive);

    /// <inheritdoc/>
    public void AllToAllV<T>(
        ReadOnlySpan<T> send,
        ReadOnlySpan<int> sendCounts,
        Span<T> receive,
        ReadOnlySpan<int> receiveCounts
    )
        where T : unmanaged => _bootstrap.AllToAllV(send, sendCounts, receive, receiveCounts);

    /// <inheritdoc/>
    public CollectiveRequest AllToAllVAsync<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        Memory<T> receive,
        int[] receiveCounts
    )
        where T : unmanaged => _bootstrap.AllToAllVAsync(send, sendCounts, receive, receiveCounts);

    /// <inheritdoc/>
    public void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged => _bootstrap.AllGather(send, receive);

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values) => _bootstrap.AllReduceSum(values);

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values) => _bootstrap.AllReduceSum(values);

    /// <inheritdoc/>
    public void AllReduceSum(Span<long> values) => _bootstrap.AllReduceSum(values);

    /// <summary>
    /// Device all-to-all-v (counts in elements) as grouped <c>ncclSend</c>/<c>ncclRecv</c> queued on
    /// <see cref="ComputeStream"/>; returns without waiting for it. Work queued on that stream afterwards sees the
    /// received elements; the host reads them after <see cref="Drain"/> (the ILGPU backend's copies call it through
    /// their
    /// <c>HostWaits</c> guard; a caller with buffers of its own calls it), which is also where a failure of the
    /// exchange surfaces.
    /// </summary>
    public void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts)
    {
        ThrowIfUnusable();
        try
        {
            (nint sendPtr, nint receivePtr, int type, NcclExchangePlan plan) = Prepare(
                send,
                sendCounts,
                receive,
                receiveCounts
            );
            BindDevice();
            Post(plan, sendPtr, receivePtr, type, ComputeStream);
        }
        catch (Exception ex)
        {
            Exception failure = Fail(ex);
            if (ReferenceEquals(failure, ex))
                throw;
            throw failure;
        }
    }

    /// <summary>
    /// Starts <see cref="AllToAllV"/> on <see cref="CommunicationStream"/> after the work already queued on
    /// <see cref="ComputeStream"/>, and returns at once, so work queued on the compute stream meanwhile (the shared
    /// experts) runs beside the exchange. The request is ordered on the device: its <see
    /// cref="CollectiveRequest.Wait"/> makes the compute stream wait for the exchange (<c>cudaStreamWaitEvent</c>)
    /// without blocking the host; until then neither buffer may be touched by work on the compute stream.
    /// </summary>
    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts)
    {
        ThrowIfUnusable();
        nint done;
        try
        {
            ArgumentNullException.ThrowIfNull(sendCounts);
            ArgumentNullException.ThrowIfNull(receiveCounts);
            (nint sendPtr, nint receivePtr, int type, NcclExchangePlan plan) = Prepare(
                send,
                sendCounts,
                receive,
                receiveCounts
            );
            BindDevice();
            nint ready = _cuda.EventCreate(CudaConstants.EventDisableTiming);
            try
            {
                _cuda.EventRecord(ready, ComputeStream);
                _cuda.StreamWaitEvent(CommunicationStream, ready);
            }
            finally
            {
                // Destroying a recorded event is allowed: CUDA releases it once the wait is satisfied.
                _cuda.EventDestroy(ready);
            }
            Post(plan, sendPtr, receivePtr, type, CommunicationStream);
            done = _cuda.EventCreate(CudaConstants.EventDisableTiming);
            _cuda.EventRecord(done, CommunicationStream);
        }
        catch (Exception ex)
        {
            Exception failure = Fail(ex);
            if (ReferenceEquals(failure, ex))
                throw;
            throw failure;
        }

        return CollectiveRequest.OrderedOnDevice(() =>
        {
            try
            {
                BindDevice();
                _cuda.StreamWaitEvent(ComputeStream, done);
            }
            catch (Exception ex)
            {
                Exception failure = Fail(ex);
                if (ReferenceEquals(failure, ex))
                    throw;
                throw failure;
            }
            finally
            {
                // Allowed while the wait is pending: CUDA releases the event once the wait is satisfied.
                _cuda.EventDestroy(done);
            }
        });
    }

    /// <summary>
    /// Returns once everything queued on <see cref="ComputeStream"/> (exchanges included) has run, polling the stream
    /// with
    /// <c>ncclCommGetAsyncError</c>, this group's abort and <see cref="Timeout"/>; on a failure aborts the communicator
    /// and throws. The device backend calls it before each blocking host wait (<c>HostWaits</c>).
    /// </summary>
    public void Drain(string operation)
    {
        ThrowIfUnusable();
        try
        {
            BindDevice();
            WaitUntil(() => _cuda.StreamQuery(ComputeStream), operation);
        }
        catch (Exception ex)
        {
            Exception failure = Fail(ex);
            if (ReferenceEquals(failure, ex))
                throw;
            throw failure;
        }
    }

    /// <summary>
    /// Element-wise sum over the ranks, in place, in rank order: <c>ncclAllGather</c> into a device scratch
    /// <c>[S, n]</c>, then the ordered float32 sum on the device (or, without an <see cref="IRankOrderedSum"/>, on the
    /// host and a copy back; see the class remarks). bfloat16 values are widened, summed in float32 and rounded once.
    /// </summary>
    public void AllReduceSum(Tensor values)
    {
        ThrowIfUnusable();
        try
        {
            RequireOnDevice(values, nameof(values));
            CollectiveTensorChecks.RequireSummable(this, values);
            IDevicePointer target = DevicePointers.Of(values, nameof(values));
            CheckDevice(target, nameof(values));
            int n = values.ElementCount;
            if (n == 0)
                return;
            if (_orderedSum is not null)
            {
                // Gather and sum on the device: the kernel is queued on the compute stream after the gather.
                Tensor copies = _orderedSum.RentGathered(values.DType, checked(Size * n));
                try
                {
                    BindDevice();
                    _nccl.AllGather(
                        target.Pointer,
                        DevicePointers.Of(copies, nameof(copies)).Pointer,
                        n,
                        NcclDataTypes.For(values.DType),
                        Comm,
                        ComputeStream,
                        Rank
                    );
                    _orderedSum.SumInRankOrder(copies, Size, values);
                }
                finally
                {
                    _orderedSum.ReturnGathered(copies);
                }
                return;
            }
            int size = values.DType.SizeOf();
            using var scratch = new CudaDeviceBuffer(_cuda, Device, (long)Size * n * size);
            BindDevice();
            _nccl.AllGather(
                target.Pointer,
                scratch.Pointer,
                n,
                NcclDataTypes.For(values.DType),
                Comm,
                ComputeStream,
                Rank
            );
            WaitUntil(() => _cuda.StreamQuery(ComputeStream), "AllReduceSum");

            var gathered = Tensor.Uninitialized(values.DType, Size * n);
            scratch.CopyToHost(0, gathered.AsBytes());
            float[] all =
                values.DType == DType.BFloat16
                    ? BFloat16Rows.Widen(gathered.AsSpan<BFloat16>())
                    : gathered.AsSpan<float>().ToArray();
            var sum = all.AsSpan(0, n).ToArray();
            for (int r = 1; r < Size; r++)
            {
                ReadOnlySpan<float> v = all.AsSpan(r * n, n);
                for (int i = 0; i < n; i++)
                    sum[i] += v[i];
            }
            var result = Tensor.FromArray(sum, n);
            if (values.DType == DType.BFloat16)
                result = result.ToBFloat16();
            values.DeviceBuffer!.CopyFromHost(result.AsBytes(), 0);
        }
        catch (Exception ex)
        {
            Exception failure = Fail(ex);
            if (ReferenceEquals(failure, ex))
                throw;
            throw failure;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"NcclProcessGroup(rank {Rank} of {Size}, cuda:{Device})";

    /// <summary>
    /// Marks this rank failed: aborts the NCCL communicator (pending device work is cancelled) and the bootstrap group,
    /// so every peer's collectives throw.
    /// </summary>
    public void Abort(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        AbortCommunicator();
        _bootstrap.Abort(error);
    }

    /// <summary>
    /// Destroys the communicator (unless aborted), the streams this group created, and an owned bootstrap group.
    /// Exchanges still queued are waited for first (<c>ncclCommDestroy</c> would wait for them without a timeout); if
    /// they cannot finish (a peer failed) the communicator is aborted instead. Never throws for that: the failure has
    /// its own rank.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        BindDevice();
        if (Volatile.Read(ref _aborted) == 0)
        {
            try
            {
                WaitUntil(() => _cuda.StreamQuery(ComputeStream) && _cuda.StreamQuery(CommunicationStream), "Dispose");
            }
            catch (Exception ex) when (ex is CollectiveException or NcclException or CudaException)
            {
                AbortCommunicator();
            }
        }
        nint comm = Interlocked.Exchange(ref _comm, 0);
        if (comm != 0 && Volatile.Read(ref _aborted) == 0)
            _nccl.CommDestroy(comm);
        _cuda.StreamDestroy(CommunicationStream);
        if (_ownsComputeStream)
            _cuda.StreamDestroy(ComputeStream);
        if (_ownsBootstrap)
            _bootstrap.Dispose();
    }

    private (nint Send, nint Receive, int Type, NcclExchangePlan Plan) Prepare(
        Tensor send,
        ReadOnlySpan<int> sendCounts,
        Tensor receive,
        ReadOnlySpan<int> receiveCounts
    )
    {
        RequireOnDevice(send, nameof(send));
        RequireOnDevice(receive, nameof(receive));
        CollectiveTensorChecks.RequireSameDType(this, send, receive);
        IDevicePointer s = DevicePointers.Of(send, nameof(send));
        IDevicePointer r = DevicePointers.Of(receive, nameof(receive));
        CheckDevice(s, nameof(send));
        CheckDevice(r, nameof(receive));
        var plan = NcclExchangePlan.Create(
            sendCounts,
            receiveCounts,
            Size,
            send.DType.SizeOf(),
            send.ElementCount,
            receive.ElementCount
        );
        return (s.Pointer, r.Pointer, NcclDataTypes.For(send.DType), plan);
    }

    /// <summary>A host tensor gets the collectives' one error naming its device and this group.</summary>
    private void RequireOnDevice(Tensor tensor, string argument)
    {
        ArgumentNullException.ThrowIfNull(tensor, argument);
        if (tensor.IsOnHost)
            throw CollectiveTensorChecks.Unreachable(this, tensor, argument, $"tensors on cuda:{Device}");
    }

    private void CheckDevice(IDevicePointer pointer, string argument)
    {
        if (pointer.DeviceOrdinal != Device)
            throw new ArgumentException(
                $"rank {Rank}: {argument} is on cuda:{pointer.DeviceOrdinal}, this rank's GPU is cuda:{Device}",
                argument
            );
    }

    private void Post(NcclExchangePlan plan, nint send, nint receive, int type, nint stream)
    {
        nint comm = Comm;
        _nccl.GroupStart(Rank);
        try
        {
            foreach (PeerTransfer p in plan.Peers)
            {
                if (p.SendCount > 0)
                    _nccl.Send(send + (nint)p.SendOffsetBytes, p.SendCount, type, p.Peer, comm, stream, Rank);
                if (p.ReceiveCount > 0)
                    _nccl.Recv(receive + (nint)p.ReceiveOffsetBytes, p.ReceiveCount, type, p.Peer, comm, stream, Rank);
            }
        }
        catch
        {
            // Close the group even though a call inside failed; the first error is the one reported.
            try
            {
                _nccl.GroupEnd(Rank);
            }
            catch (NcclException) { }
            throw;
        }
        _nccl.GroupEnd(Rank);
    }

    private void WaitUntil(Func<bool> completed, string operation)
    {
        long deadline = Environment.TickCount64 + (long)Timeout.TotalMilliseconds;
        var spin = new SpinWait();
        while (!completed())
        {
            if (Volatile.Read(ref _aborted) != 0)
                throw new CollectiveException($"rank {Rank}: {operation} interrupted because the group was aborted");
            int asyncError = _nccl.CommGetAsyncError(Comm, Rank);
            if (asyncError != NcclConstants.Success && asyncError != NcclConstants.InProgress)
                throw new NcclException("ncclCommGetAsyncError", asyncError, _nccl.ErrorString(asyncError), Rank);
            if (Environment.TickCount64 > deadline)
                throw new CollectiveException(
                    $"rank {Rank}: {operation} did not complete within {Timeout} (a peer failed or never arrived)"
                );
            // Yield rather than sleep: exchanges take microseconds to milliseconds, and Sleep(1) would dominate.
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>
    /// Aborts the communicator and the bootstrap group; returns what to throw (the error itself when it already is a
    /// collective or argument error).
    /// </summary>
    private Exception Fail(Exception error)
    {
        AbortCommunicator();
        try
        {
            _bootstrap.Abort(error);
        }
        catch (Exception abortError)
        {
            return new AggregateException(error, abortError);
        }
        return error is CollectiveException or ArgumentException
            ? error
            : new CollectiveException($"rank {Rank}: {error.Message}", error);
    }

    private void AbortCommunicator()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
            return;
        nint comm = Interlocked.Exchange(ref _comm, 0);
        if (comm != 0)
            _nccl.CommAbort(comm);
    }

    private nint Comm =>
        Volatile.Read(ref _comm) is var comm && comm != 0
            ? comm
            : throw new CollectiveException($"rank {Rank}: the NCCL communicator was aborted or disposed");

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _aborted) != 0)
            throw new CollectiveException($"rank {Rank}: this NCCL group was aborted after an earlier failure");
    }
}
