using System.Diagnostics;

namespace MoeSharp.Collectives;

/// <summary>
/// The state one in-process group shares between its ranks: its members and its open collective slots,
/// and the protocol every collective follows on every rank:
/// <list type="number">
/// <item><b>Arrive</b>: publish the contribution in the slot for this sequence number; the last arrival
/// checks that every rank called the same collective with consistent chunk sizes.</item>
/// <item><b>Work</b>: once all have arrived, read what this rank needs from its peers' buffers.</item>
/// <item><b>Complete</b>: wait until every rank's work is done, so no peer still reads this rank's
/// buffers, then leave.</item>
/// </list>
/// Every wait ends on success, on a world failure, or at the timeout (which aborts the world).
/// </summary>
internal sealed class InProcessGroupState
{
    private readonly Dictionary<long, CollectiveSlot> _slots = [];
    private readonly int[] _worldRanks;

    public InProcessGroupState(InProcessWorldState world, int[] worldRanks, string name)
    {
        World = world;
        _worldRanks = worldRanks;
        Name = name;
        world.Register(this);
    }

    public InProcessWorldState World { get; }

    public IReadOnlyList<int> WorldRanks => _worldRanks;

    public int Size => _worldRanks.Length;

    /// <summary>How messages name the group: "world" or "group [0, 2, 4]" (world ranks).</summary>
    public string Name { get; }

    private object Sync => World.Sync;

    /// <summary>Phase 1: publishes <paramref name="c"/> in slot <paramref name="sequence"/>.</summary>
    /// <exception cref="CollectiveException">The world is aborted, or this call does not match its peers'.</exception>
    public CollectiveSlot Arrive(RankContribution c, long sequence)
    {
        lock (Sync)
        {
            if (World.Failure is { } failure)
                throw Aborted(c, sequence, failure);
            if (!_slots.TryGetValue(sequence, out var slot))
            {
                slot = new CollectiveSlot(sequence, Size);
                _slots.Add(sequence, slot);
            }

            if (slot.First is { } first && (first.Kind != c.Kind || first.ElementType != c.ElementType))
            {
                throw FailLocked(
                    c,
                    sequence,
                    new CollectiveException(
                        $"collective mismatch at #{sequence} of {Name}: rank {c.WorldRank} called {c.Signature} "
                            + $"but rank {first.WorldRank} called {first.Signature}",
                        c.WorldRank
                    )
                );
            }

            slot.First ??= c;
            slot.Members[c.GroupRank] = c;
            slot.Arrived++;
            if (c.Async is { } pending && World.Timeout != System.Threading.Timeout.InfiniteTimeSpan)
            {
                pending.Timer = new Timer(
                    _ => OnAsyncTimeout(slot, c),
                    null,
                    World.Timeout,
                    System.Threading.Timeout.InfiniteTimeSpan
                );
            }

            if (!slot.AllArrived)
            {
                CheckExitedLocked(slot);
                return slot;
            }

            if (CheckLayouts(slot) is { } mismatch)
            {
                // Nobody has started copying: the contributions disagree, so none of them can be trusted.
                throw FailLocked(c, sequence, new CollectiveException(mismatch, c.WorldRank));
            }

            foreach (var member in slot.Members)
            {
                if (member!.Async is not null)
                {
                    // The asynchronous rank's caller is busy computing: its copy runs on the pool.
                    ThreadPool.UnsafeQueueUserWorkItem(_ => RunAsyncWork(slot, member), null);
                }
            }

            Monitor.PulseAll(Sync);
            return slot;
        }
    }

    /// <summary>Blocks until every rank has arrived at <paramref name="slot"/>.</summary>
    public void WaitAllArrived(CollectiveSlot slot, RankContribution c)
    {
        lock (Sync)
        {
            while (true)
            {
                // Arrival first: a barrier that every rank entered has succeeded everywhere, even if a rank
                // failed right after; exchanges still see the failure when they begin their work.
                if (slot.AllArrived)
                    return;
                if (World.Failure is { } failure)
                    throw LeaveFailedLocked(slot, c, failure);
                WaitOrTimeOutLocked(slot, c);
            }
        }
    }

    /// <summary>
    /// Phase 2 begins: this rank is about to read peers' buffers (they stay valid until <see cref="EndWork"/>).
    /// </summary>
    public void BeginWork(CollectiveSlot slot, RankContribution c)
    {
        lock (Sync)
        {
            if (World.Failure is { } failure)
                throw LeaveFailedLocked(slot, c, failure);
            slot.InFlight++;
        }
    }

    /// <summary>
    /// Phase 2 ends: this rank has read everything it needs (or failed with <paramref name="error"/>).
    /// </summary>
    public void EndWork(CollectiveSlot slot, RankContribution c, Exception? error = null)
    {
        lock (Sync)
        {
            slot.InFlight--;
            if (error is not null)
            {
                World.FailLocked(
                    new CollectiveException(
                        $"rank {c.WorldRank}: {c.Signature} #{slot.Sequence} of {Name} failed while copying: {error.Message}",
                        c.WorldRank,
                        error
                    ),
                    c.WorldRank
                );
            }
            else
            {
                c.Worked = true;
                slot.Worked++;
            }

            CompleteAsyncLocked(slot);
            Monitor.PulseAll(Sync);
        }
    }

    /// <summary>
    /// Phase 3: blocks until every rank has finished its work, so this rank's buffers are free again.
    /// </summary>
    public void WaitAllWorked(CollectiveSlot slot, RankContribution c)
    {
        lock (Sync)
        {
            while (true)
            {
                // Checked before the failure: once every rank has its data the collective succeeded everywhere.
                if (slot.AllWorked)
                    return;
                if (World.Failure is { } failure)
                    throw LeaveFailedLocked(slot, c, failure);
                WaitOrTimeOutLocked(slot, c);
            }
        }
    }

    /// <summary>This rank leaves <paramref name="slot"/> after a successful collective.</summary>
    public void Leave(CollectiveSlot slot, RankContribution c)
    {
        lock (Sync)
            MarkFinishedLocked(slot, c);
    }

    /// <summary>Split, after every rank has arrived: this rank's sub-group and its rank in it.</summary>
    public (InProcessGroupState Group, int Rank) SplitResult(CollectiveSlot slot, RankContribution c)
    {
        lock (Sync)
        {
            if (slot.SplitGroups is null)
            {
                // Created once, by whichever rank gets here first, so every member shares the same state.
                slot.SplitGroups = [];
                foreach (var byColor in slot.Members.Select(m => m!).GroupBy(m => m.Color))
                {
                    int[] members = byColor
                        .OrderBy(m => m.Key)
                        .ThenBy(m => m.GroupRank)
                        .Select(m => m.WorldRank)
                        .ToArray();
                    slot.SplitGroups[byColor.Key] = new InProcessGroupState(
                        World,
                        members,
                        $"group [{string.Join(", ", members)}]"
                    );
                }
            }

            var group = slot.SplitGroups[c.Color];
            return (group, Array.IndexOf(group._worldRanks, c.WorldRank));
        }
    }

    /// <summary>
    /// Called by the world, under its lock, when it is aborted: fails the pending asynchronous exchanges.
    /// </summary>
    public void OnWorldFailedLocked()
    {
        foreach (var slot in _slots.Values.ToArray())
            CompleteAsyncLocked(slot);
    }

    /// <summary>
    /// Called under the world lock when a rank exits: fails any collective still waiting for an exited rank.
    /// </summary>
    public void CheckExitedLocked()
    {
        foreach (var slot in _slots.Values.ToArray())
        {
            if (World.Failure is not null)
                return;
            CheckExitedLocked(slot);
        }
    }

    private void CheckExitedLocked(CollectiveSlot slot)
    {
        if (World.Failure is not null || slot.First is not { } first)
            return;
        for (int g = 0; g < Size; g++)
        {
            if (slot.Members[g] is null && World.HasExited(_worldRanks[g]))
            {
                World.FailLocked(
                    new CollectiveException(
                        $"{first.Signature} #{slot.Sequence} of {Name} cannot complete: rank {_worldRanks[g]} exited without calling it",
                        _worldRanks[g]
                    ),
                    _worldRanks[g]
                );
                return;
            }
        }
    }

    /// <summary>
    /// The asynchronous work of one rank: pull its chunks from its peers. Runs on the thread pool and
    /// never blocks: it starts only once every rank has arrived.
    /// </summary>
    private void RunAsyncWork(CollectiveSlot slot, RankContribution c)
    {
        lock (Sync)
        {
            if (World.Failure is not null)
            {
                CompleteAsyncLocked(slot);
                return;
            }

            slot.InFlight++;
        }

        Exception? error = null;
        try
        {
            ChunkCopier.Pull(slot, c);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        EndWork(slot, c, error);
    }

    private void OnAsyncTimeout(CollectiveSlot slot, RankContribution c)
    {
        lock (Sync)
        {
            if (c.Finished || World.Failure is not null)
                return;
            World.FailLocked(TimeoutError(slot, c), c.WorldRank, c);
        }
    }

    /// <summary>Completes every asynchronous member whose exchange has ended, successfully or by abort.</summary>
    private void CompleteAsyncLocked(CollectiveSlot slot)
    {
        foreach (var m in slot.Members)
        {
            if (m?.Async is not { } pending || m.Finished)
                continue;
            if (slot.AllWorked)
            {
                MarkFinishedLocked(slot, m);
                pending.Complete(null);
            }
            else if (World.Failure is { } failure && slot.InFlight == 0)
            {
                // No copy touches its buffers any more, so the caller may reuse them.
                MarkFinishedLocked(slot, m);
                pending.Complete(Aborted(m, slot.Sequence, failure));
            }
        }
    }

    private void WaitOrTimeOutLocked(CollectiveSlot slot, RankContribution c)
    {
        if (World.Timeout == System.Threading.Timeout.InfiniteTimeSpan)
        {
            Monitor.Wait(Sync);
            return;
        }

        var remaining = World.Timeout - Stopwatch.GetElapsedTime(c.StartTimestamp);
        if (remaining > TimeSpan.Zero)
        {
            Monitor.Wait(Sync, remaining);
            return;
        }

        World.FailLocked(TimeoutError(slot, c), c.WorldRank, c);
    }

    private CollectiveException TimeoutError(CollectiveSlot slot, RankContribution c)
    {
        // Before everyone arrives the culprits are the absent ranks; after, the ranks still copying.
        var missing = Enumerable
            .Range(0, Size)
            .Where(g => slot.AllArrived ? !slot.Members[g]!.Worked : slot.Members[g] is null)
            .Select(g => _worldRanks[g])
            .ToArray();
        return new CollectiveException(
            $"rank {c.WorldRank}: {c.Signature} #{slot.Sequence} of {Name} timed out after "
                + $"{World.Timeout.TotalSeconds:0.###} s waiting for ranks [{string.Join(", ", missing)}]",
            missing.Length > 0 ? missing[0] : c.WorldRank
        );
    }

    /// <summary>
    /// Leaves a slot because the world failed: first waits until no peer copies from this rank's buffers
    /// (copies never block, so this is short), so the caller may reuse them once the exception is thrown.
    /// </summary>
    private CollectiveException LeaveFailedLocked(CollectiveSlot slot, RankContribution c, CollectiveException failure)
    {
        while (slot.InFlight > 0)
            Monitor.Wait(Sync);
        MarkFinishedLocked(slot, c);
        return Aborted(c, slot.Sequence, failure);
    }

    private CollectiveException FailLocked(RankContribution c, long sequence, CollectiveException failure)
    {
        return Aborted(c, sequence, World.FailLocked(failure, c.WorldRank, c));
    }

    private CollectiveException Aborted(RankContribution c, long sequence, CollectiveException failure)
    {
        // The rank that detected the failure throws it as is; every other rank names its own collective.
        if (ReferenceEquals(World.FailureSource, c))
            return failure;
        string message = $"rank {c.WorldRank}: {c.Signature} #{sequence} of {Name} aborted: {failure.Message}";
        return failure.FailedRank is { } failed
            ? new CollectiveException(message, failed, failure)
            : new CollectiveException(message, failure);
    }

    private void MarkFinishedLocked(CollectiveSlot slot, RankContribution c)
    {
        if (c.Finished)
            return;
        c.Finished = true;
        slot.Finished++;
        if (slot.Finished == Size)
            _slots.Remove(slot.Sequence);
    }

    /// <summary>Checks that what each rank sends matches what its peer expects; null when consistent.</summary>
    private string? CheckLayouts(CollectiveSlot slot)
    {
        var members = slot.Members;
        var first = slot.First!;
        switch (first.Kind)
        {
            case CollectiveKind.AllToAll:
            case CollectiveKind.AllToAllV:
            case CollectiveKind.AllGather:
            case CollectiveKind.ReadPeerRows:
                for (int p = 0; p < Size; p++)
                {
                    for (int q = 0; q < Size; q++)
                    {
                        int sends = members[p]!.SendCounts[q],
                            expects = members[q]!.ReceiveCounts[p];
                        if (sends != expects)
                        {
                            return $"{first.Signature} #{slot.Sequence} of {Name}: rank {_worldRanks[p]} sends {sends} elements "
                                + $"to rank {_worldRanks[q]} but rank {_worldRanks[q]} expects {expects} from rank {_worldRanks[p]}";
                        }
                    }
                }

                return null;
            case CollectiveKind.AllReduceSum:
                for (int p = 1; p < Size; p++)
                {
                    if (members[p]!.Length != members[0]!.Length)
                    {
                        return $"{first.Signature} #{slot.Sequence} of {Name}: rank {_worldRanks[p]} passes {members[p]!.Length} values "
                            + $"but rank {_worldRanks[0]} passes {members[0]!.Length}";
                    }
                }

                return null;
            default:
                return null;
        }
    }
}
