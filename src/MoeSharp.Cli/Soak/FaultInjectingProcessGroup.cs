using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Soak;

/// <summary>
/// A decorator around a rank's <see cref="IProcessGroup"/> that injects one planned fault into one collective call and
/// otherwise delegates unchanged, so the soak exercises the production process groups and dispatcher as they are.
/// Sub-groups from <see cref="Split"/> are decorated too and share the rank's call counter.
/// </summary>
internal sealed class FaultInjectingProcessGroup : IProcessGroup
{
    private readonly IProcessGroup _inner;
    private readonly FaultPlan? _plan;
    private readonly FaultState _state;

    /// <summary>
    /// Decorates <paramref name="inner"/>; with a null <paramref name="plan"/> (or another rank's) it only counts
    /// calls.
    /// </summary>
    public FaultInjectingProcessGroup(IProcessGroup inner, FaultPlan? plan)
        : this(inner, plan, new FaultState()) { }

    private FaultInjectingProcessGroup(IProcessGroup inner, FaultPlan? plan, FaultState state)
    {
        _inner = inner;
        _plan = plan;
        _state = state;
    }

    /// <summary>Whether the planned fault was injected on this rank.</summary>
    public bool Fired => _state.Fired;

    /// <summary>When the planned fault was injected (<see cref="System.Diagnostics.Stopwatch"/> ticks), or 0.</summary>
    public long FiredAt => _state.FiredAt;

    /// <summary>This rank's collective calls so far (splits excluded), with the fault kinds each could take.</summary>
    public IReadOnlyList<EligibleCall> Calls => _state.Eligible;

    /// <inheritdoc/>
    public int Rank => _inner.Rank;

    /// <inheritdoc/>
    public int Size => _inner.Size;

    /// <inheritdoc/>
    public IReadOnlyList<int> WorldRanks => _inner.WorldRanks;

    /// <inheritdoc/>
    public TimeSpan Timeout => _inner.Timeout;

    /// <inheritdoc/>
    public IProcessGroup Split(int color, int key)
    {
        _state.Calls++;
        return new FaultInjectingProcessGroup(_inner.Split(color, key), _plan, _state);
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        if (Fault(shapes: false, counts: false) is not FaultKind.ReturnEarly)
            _inner.Barrier();
    }

    /// <inheritdoc/>
    public void AllToAll<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged
    {
        switch (Fault(shapes: send.Length > 0, counts: false))
        {
            case FaultKind.ReturnEarly:
                return;
            case FaultKind.MismatchedShapes:
                _inner.AllToAll(send[..^1], receive[..^1]);
                return;
            default:
                _inner.AllToAll(send, receive);
                return;
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
        switch (Fault(shapes: CanShorten(receive.Length, receiveCounts), counts: CanCorrupt(sendCounts)))
        {
            case FaultKind.ReturnEarly:
                return;
            case FaultKind.MismatchedShapes:
                _inner.AllToAllV(send, sendCounts, receive[..^1], receiveCounts);
                return;
            case FaultKind.CorruptCounts:
                _inner.AllToAllV(send, Corrupt(sendCounts), receive, receiveCounts);
                return;
            default:
                _inner.AllToAllV(send, sendCounts, receive, receiveCounts);
                return;
        }
    }

    /// <inheritdoc/>
    public CollectiveRequest AllToAllVAsync<T>(
        ReadOnlyMemory<T> send,
        int[] sendCounts,
        Memory<T> receive,
        int[] receiveCounts
    )
        where T : unmanaged
    {
        return Fault(shapes: CanShorten(receive.Length, receiveCounts), counts: CanCorrupt(sendCounts)) switch
        {
            FaultKind.ReturnEarly => CollectiveRequest.Completed,
            FaultKind.MismatchedShapes => _inner.AllToAllVAsync(send, sendCounts, receive[..^1], receiveCounts),
            FaultKind.CorruptCounts => _inner.AllToAllVAsync(send, Corrupt(sendCounts), receive, receiveCounts),
            _ => _inner.AllToAllVAsync(send, sendCounts, receive, receiveCounts),
        };
    }

    /// <inheritdoc/>
    public void AllGather<T>(ReadOnlySpan<T> send, Span<T> receive)
        where T : unmanaged
    {
        switch (Fault(shapes: send.Length > 0, counts: false))
        {
            case FaultKind.ReturnEarly:
                return;
            case FaultKind.MismatchedShapes:
                _inner.AllGather(send[..^1], receive[..^Size]);
                return;
            default:
                _inner.AllGather(send, receive);
                return;
        }
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values) => ReduceWithFault(values, _inner.AllReduceSum);

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values) => ReduceWithFault(values, _inner.AllReduceSum);

    /// <inheritdoc/>
    public void AllReduceSum(Span<long> values) => ReduceWithFault(values, _inner.AllReduceSum);

    /// <summary>
    /// An element-wise sum of the inner group with this call's fault: skipped, one element short, or none.
    /// </summary>
    private void ReduceWithFault<T>(Span<T> values, SpanReduce<T> reduce)
    {
        switch (Fault(shapes: values.Length > 0, counts: false))
        {
            case FaultKind.ReturnEarly:
                return;
            case FaultKind.MismatchedShapes:
                reduce(values[..^1]);
                return;
            default:
                reduce(values);
                return;
        }
    }

    /// <summary>
    /// One of the inner group's <c>AllReduceSum</c> overloads (a span cannot be a type argument of Action).
    /// </summary>
    private delegate void SpanReduce<T>(Span<T> values);

    /// <inheritdoc/>
    public void AllToAllV(Tensor send, ReadOnlySpan<int> sendCounts, Tensor receive, ReadOnlySpan<int> receiveCounts)
    {
        bool shapes = receive.IsOnHost && CanShorten(receive.ElementCount, receiveCounts);
        switch (Fault(shapes, counts: CanCorrupt(sendCounts)))
        {
            case FaultKind.ReturnEarly:
                return;
            case FaultKind.MismatchedShapes:
                _inner.AllToAllV(send, sendCounts, OneShorter(receive), receiveCounts);
                return;
            case FaultKind.CorruptCounts:
                _inner.AllToAllV(send, Corrupt(sendCounts), receive, receiveCounts);
                return;
            default:
                _inner.AllToAllV(send, sendCounts, receive, receiveCounts);
                return;
        }
    }

    /// <inheritdoc/>
    public CollectiveRequest AllToAllVAsync(Tensor send, int[] sendCounts, Tensor receive, int[] receiveCounts)
    {
        bool shapes = receive.IsOnHost && CanShorten(receive.ElementCount, receiveCounts);
        return Fault(shapes, counts: CanCorrupt(sendCounts)) switch
        {
            FaultKind.ReturnEarly => CollectiveRequest.Completed,
            FaultKind.MismatchedShapes => _inner.AllToAllVAsync(send, sendCounts, OneShorter(receive), receiveCounts),
            FaultKind.CorruptCounts => _inner.AllToAllVAsync(send, Corrupt(sendCounts), receive, receiveCounts),
            _ => _inner.AllToAllVAsync(send, sendCounts, receive, receiveCounts),
        };
    }

    /// <inheritdoc/>
    public void AllReduceSum(Tensor values)
    {
        switch (Fault(shapes: values.IsOnHost && values.ElementCount > 0, counts: false))
        {
            case FaultKind.ReturnEarly:
                return;
            case FaultKind.MismatchedShapes:
                _inner.AllReduceSum(OneShorter(values));
                return;
            default:
                _inner.AllReduceSum(values);
                return;
        }
    }

    /// <inheritdoc/>
    public void Abort(Exception error) => _inner.Abort(error);

    /// <inheritdoc/>
    public void Dispose() => _inner.Dispose();

    /// <summary>
    /// Counts this call and returns the fault to apply to it, or null. A planned fault fires at the first call from its
    /// index on where it can apply (a count corruption needs an all-to-all-v with a peer; a shorter buffer needs one).
    /// </summary>
    private FaultKind? Fault(bool shapes, bool counts)
    {
        int call = _state.Calls++;
        _state.Eligible.Add(new EligibleCall(call, shapes, counts));
        if (_plan is null || _state.Fired || call < _plan.Collective || WorldRanks[Rank] != _plan.Rank)
            return null;
        if (_plan.Kind == FaultKind.CorruptCounts && !counts)
            return null;
        if (_plan.Kind == FaultKind.MismatchedShapes && !shapes)
            return null;
        _state.Fired = true;
        _state.FiredAt = System.Diagnostics.Stopwatch.GetTimestamp();
        switch (_plan.Kind)
        {
            case FaultKind.Throw:
                throw new InjectedFaultException(
                    $"injected fault: rank {_plan.Rank} threw at its collective call #{call}"
                );
            case FaultKind.DelayPastTimeout:
                Thread.Sleep(Timeout + TimeSpan.FromMilliseconds(200));
                return null;
            default:
                return _plan.Kind;
        }
    }

    /// <summary>
    /// An all-to-all-v buffer may be longer than its counts (the device path stages into padded buffers); one element
    /// off it is a fault only when the counts fill it exactly.
    /// </summary>
    private static bool CanShorten(int length, ReadOnlySpan<int> counts)
    {
        long total = 0;
        foreach (int count in counts)
            total += count;
        return length > 0 && length == total;
    }

    /// <summary>
    /// A view of a host tensor without its last element: the tensor form of a buffer one element shorter (a device
    /// tensor has no such view, so tensor calls are eligible for this fault only on the host).
    /// </summary>
    private static Tensor OneShorter(Tensor tensor)
    {
        int n = tensor.ElementCount - 1;
        return tensor.DType switch
        {
            DType.Float32 => Tensor.FromMemory(tensor.AsMemory<float>()[..n], n),
            DType.BFloat16 => Tensor.FromMemory(tensor.AsMemory<BFloat16>()[..n], n),
            DType.Int32 => Tensor.FromMemory(tensor.AsMemory<int>()[..n], n),
            _ => Tensor.FromMemory(tensor.AsMemory<long>()[..n], n),
        };
    }

    private bool CanCorrupt(ReadOnlySpan<int> sendCounts) => Size > 1 && sendCounts[^1] > 0;

    private static int[] Corrupt(ReadOnlySpan<int> sendCounts)
    {
        int[] counts = sendCounts.ToArray();
        counts[0]++;
        counts[^1]--;
        return counts;
    }

    private sealed class FaultState
    {
        public int Calls;
        public bool Fired;
        public long FiredAt;
        public readonly List<EligibleCall> Eligible = [];
    }
}
