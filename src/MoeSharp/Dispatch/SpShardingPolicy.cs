namespace MoeSharp.Dispatch;

/// <summary>How the token axis is split over the ranks of a sequence-parallel (SP) group.</summary>
public enum SpShardingPolicy
{
    /// <summary>
    /// The seed (torchtitan): pad T up to <c>Tp = ceil(T/sp)·sp</c> with rows of <c>x = 0</c>, score 0 and
    /// expert id 0; SP rank s keeps rows <c>[s·Tp/sp, (s+1)·Tp/sp)</c>. Pad rows travel to expert 0 and are
    /// dropped on combine.
    /// </summary>
    PadToMultiple,

    /// <summary>
    /// No padding: shard sizes differ by at most one (the first <c>T mod sp</c> shards hold one row more),
    /// so no pad row is routed and expert 0 carries no extra load.
    /// </summary>
    Balanced,
}
