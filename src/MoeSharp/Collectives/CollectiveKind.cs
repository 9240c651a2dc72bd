namespace MoeSharp.Collectives;

/// <summary>
/// Which collective a rank called at a given sequence number. Ranks of one group must agree on it; the
/// asynchronous all-to-all-v matches the synchronous one because both move the same data.
/// </summary>
internal enum CollectiveKind
{
    Barrier,
    Split,
    AllToAll,
    AllToAllV,
    AllGather,
    AllReduceSum,
    ReadPeerRows,
}
