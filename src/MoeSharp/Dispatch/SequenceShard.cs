namespace MoeSharp.Dispatch;

/// <summary>
/// The rows of the token axis one SP rank works on: <see cref="RealRows"/> tokens starting at global index
/// <see cref="Start"/>, followed by <see cref="PadRows"/> pad rows (pad-to-multiple only).
/// </summary>
/// <param name="TotalTokens">T, tokens of the whole sequence (the SP group's).</param>
/// <param name="Start">Global index of the shard's first row (clamped to T for a shard of pad rows only).</param>
/// <param name="RealRows">Tokens of the shard that exist (index &lt; T).</param>
/// <param name="PadRows">Pad rows appended to reach the padded shard size.</param>
public readonly record struct SequenceShard(int TotalTokens, int Start, int RealRows, int PadRows)
{
    /// <summary>Rows the shard routes: real plus pad.</summary>
    public int Rows => RealRows + PadRows;

    /// <summary>
    /// The shard of SP rank <paramref name="spRank"/> of <paramref name="spSize"/> for a sequence of
    /// <paramref name="totalTokens"/> tokens under <paramref name="policy"/>.
    /// </summary>
    public static SequenceShard For(SpShardingPolicy policy, int totalTokens, int spSize, int spRank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(spSize, 1);
        if ((uint)spRank >= (uint)spSize)
        {
            throw new ArgumentOutOfRangeException(nameof(spRank), spRank, $"SP rank must be in [0, {spSize})");
        }
        switch (policy)
        {
            case SpShardingPolicy.PadToMultiple:
            {
                // Tp/sp = ceil(T/sp); the shard may run past T, and the rows past T are pad rows.
                int size = (int)(((long)totalTokens + spSize - 1) / spSize);
                long start = (long)spRank * size;
                int real = (int)Math.Clamp(totalTokens - start, 0, size);
                return new SequenceShard(totalTokens, (int)Math.Min(start, totalTokens), real, size - real);
            }
            case SpShardingPolicy.Balanced:
            {
                int q = totalTokens / spSize,
                    r = totalTokens % spSize;
                int start = spRank * q + Math.Min(spRank, r);
                return new SequenceShard(totalTokens, start, q + (spRank < r ? 1 : 0), 0);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(policy), policy, "unknown SP sharding policy");
        }
    }
}
