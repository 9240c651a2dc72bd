namespace MoeSharp.Collectives;

/// <summary>
/// A collective could not complete: a rank of the group failed, a peer did not arrive within the
/// timeout, or the ranks called mismatched collectives. Thrown on every member of the group.
/// </summary>
public class CollectiveException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CollectiveException(string message, Exception? inner = null)
        : base(message, inner) { }

    /// <summary>Creates the exception naming the world rank that failed first.</summary>
    public CollectiveException(string message, int failedRank, Exception? inner = null)
        : base(message, inner) => FailedRank = failedRank;

    /// <summary>World rank whose failure or absence caused this, when known.</summary>
    public int? FailedRank { get; }
}
