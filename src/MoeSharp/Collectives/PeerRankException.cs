namespace MoeSharp.Collectives;

/// <summary>
/// Thrown on a rank whose own part was valid because a peer's was not (for example an expert id outside
/// <c>[0, E)</c> that only the peer's own error names): every rank throws instead of some waiting, and
/// <see cref="InProcessWorld"/> reports the peer's own error rather than this consequence.
/// </summary>
public sealed class PeerRankException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Names the peer and what it did.</param>
    /// <param name="peerWorldRank">The world rank whose input was invalid.</param>
    /// <param name="paramName">The argument that was invalid on the peer.</param>
    public PeerRankException(string message, int peerWorldRank, string? paramName = null)
        : base(message, paramName) => PeerWorldRank = peerWorldRank;

    /// <summary>The world rank whose input was invalid.</summary>
    public int PeerWorldRank { get; }
}
