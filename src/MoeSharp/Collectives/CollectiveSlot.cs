namespace MoeSharp.Collectives;

/// <summary>
/// One collective of one group, identified by its sequence number (every rank counts the collectives it
/// calls on the group, so the n-th call of every rank meets in slot n). Keeping slots apart by number
/// lets an asynchronous exchange stay in flight while later collectives run. All fields are guarded by
/// the world lock.
/// </summary>
internal sealed class CollectiveSlot
{
    public CollectiveSlot(long sequence, int size)
    {
        Sequence = sequence;
        Members = new RankContribution?[size];
    }

    public long Sequence { get; }

    /// <summary>Each rank's contribution, by group rank; null until that rank arrives.</summary>
    public RankContribution?[] Members { get; }

    /// <summary>The first arrival, whose kind and element type every later arrival must match.</summary>
    public RankContribution? First { get; set; }

    public int Arrived { get; set; }

    /// <summary>Ranks whose work phase (reading peers' buffers) is over.</summary>
    public int Worked { get; set; }

    /// <summary>Work phases running right now, outside the lock; buffers stay valid until this is zero.</summary>
    public int InFlight { get; set; }

    public int Finished { get; set; }

    /// <summary>Split: the sub-group state for each color, created once by the first rank to need it.</summary>
    public Dictionary<int, InProcessGroupState>? SplitGroups { get; set; }

    public bool AllArrived => Arrived == Members.Length;

    public bool AllWorked => Worked == Members.Length;
}
