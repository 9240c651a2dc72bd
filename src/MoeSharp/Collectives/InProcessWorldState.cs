namespace MoeSharp.Collectives;

/// <summary>
/// What every group of one in-process world shares: the lock that guards all collective slots, the
/// timeout, the failure that aborted the world (first one wins), and which ranks have exited.
/// </summary>
/// <remarks>
/// One lock for the whole world keeps abort simple and race-free: a failure in any group wakes every
/// waiter of every group with one <see cref="Monitor.PulseAll"/>. Ranks hold it only for bookkeeping,
/// never while copying, so contention stays small.
/// </remarks>
internal sealed class InProcessWorldState
{
    private readonly List<InProcessGroupState> _groups = [];
    private readonly bool[] _exited;

    public InProcessWorldState(int size, TimeSpan timeout)
    {
        Size = size;
        Timeout = timeout;
        _exited = new bool[size];
    }

    /// <summary>Guards every slot of every group of this world, and the fields below.</summary>
    public object Sync { get; } = new();

    public int Size { get; }

    public TimeSpan Timeout { get; }

    /// <summary>Why the world was aborted; null while it is healthy.</summary>
    public CollectiveException? Failure { get; private set; }

    /// <summary>
    /// World rank that reported <see cref="Failure"/> (the rank that threw, timed out or saw a mismatch).
    /// </summary>
    public int FailureOrigin { get; private set; } = -1;

    /// <summary>
    /// The contribution whose rank detected the failure (timeout, mismatch); that rank throws
    /// <see cref="Failure"/> itself, every other rank a wrapper naming its own collective.
    /// </summary>
    public object? FailureSource { get; private set; }

    public void Register(InProcessGroupState group)
    {
        lock (Sync)
            _groups.Add(group);
    }

    /// <summary>
    /// Aborts the world unless it already is: records the failure, completes every pending asynchronous
    /// exchange that no longer has copies in flight, and wakes every waiter. Caller holds <see cref="Sync"/>.
    /// </summary>
    /// <returns>The failure now in force (the earlier one if the world was already aborted).</returns>
    public CollectiveException FailLocked(CollectiveException failure, int originWorldRank, object? source = null)
    {
        if (Failure is not null)
            return Failure;
        Failure = failure;
        FailureOrigin = originWorldRank;
        FailureSource = source;
        foreach (var group in _groups)
            group.OnWorldFailedLocked();
        Monitor.PulseAll(Sync);
        return failure;
    }

    /// <summary>Takes the lock and aborts the world (see <see cref="FailLocked"/>).</summary>
    public CollectiveException Fail(CollectiveException failure, int originWorldRank)
    {
        lock (Sync)
            return FailLocked(failure, originWorldRank);
    }

    /// <summary>
    /// Records that a rank's code has returned, so peers still waiting for it in a collective fail at
    /// once instead of at the timeout.
    /// </summary>
    public void MarkExited(int worldRank)
    {
        lock (Sync)
        {
            _exited[worldRank] = true;
            foreach (var group in _groups)
                group.CheckExitedLocked();
        }
    }

    public bool HasExited(int worldRank) => _exited[worldRank];
}
