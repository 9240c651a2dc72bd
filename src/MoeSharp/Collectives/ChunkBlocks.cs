namespace MoeSharp.Collectives;

/// <summary>
/// Where one side's chunk for each peer lies in its buffer when the chunk is not one contiguous run: a list of blocks
/// per peer, in the order the chunk's elements are exchanged. Peer p's blocks are
/// <c>[PeerStart[p], PeerStart[p + 1])</c>; block b covers elements <c>[Offset[b], Offset[b] + Length[b])</c>.
/// </summary>
/// <remarks>
/// The dispatcher uses it to move rows straight between the rank-major order the sender keeps and the expert-major
/// order the receiver computes on, so no permuting copy follows the exchange. Offsets and lengths are in elements.
/// </remarks>
/// <param name="PeerStart"><c>[size + 1]</c>: the first block of each peer, then the number of blocks.</param>
/// <param name="Offset">Element offset of each block in the buffer.</param>
/// <param name="Length">Elements of each block.</param>
internal sealed record ChunkBlocks(int[] PeerStart, long[] Offset, long[] Length)
{
    /// <summary>
    /// The error in these blocks for a buffer of <paramref name="bufferLength"/> elements and the chunk sizes
    /// <paramref name="counts"/> (one per peer), or null when they fit: each peer's blocks add up to its count, and
    /// every block lies inside the buffer.
    /// </summary>
    public string? Check(ReadOnlySpan<int> counts, long bufferLength)
    {
        if (PeerStart.Length != counts.Length + 1 || PeerStart[0] != 0 || PeerStart[^1] != Offset.Length)
            return $"the blocks name {PeerStart.Length - 1} peers but the group has {counts.Length} ranks";
        if (Length.Length != Offset.Length)
            return $"{Offset.Length} block offsets but {Length.Length} block lengths";
        for (int p = 0; p < counts.Length; p++)
        {
            if (PeerStart[p + 1] < PeerStart[p])
                return $"the blocks of peer {p} end before they start";
            long total = 0;
            for (int b = PeerStart[p]; b < PeerStart[p + 1]; b++)
            {
                if (Offset[b] < 0 || Length[b] < 0 || Offset[b] + Length[b] > bufferLength)
                {
                    return $"block {b} ({Length[b]} elements at {Offset[b]}) of peer {p} lies outside the buffer of "
                        + $"{bufferLength}";
                }
                total += Length[b];
            }
            if (total != counts[p])
                return $"the blocks of peer {p} hold {total} elements but its count is {counts[p]}";
        }
        return null;
    }
}
