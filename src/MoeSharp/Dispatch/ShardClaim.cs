namespace MoeSharp.Dispatch;

/// <summary>
/// What a rank knows of its shard before the count exchange. Usually the whole <see cref="SequenceShard"/>: the
/// replicated layout, SP = 1, or a declared T give it. In the sharded layout with balanced sharding over SP &gt; 1 and
/// no T, a rank knows only how many rows it holds; the count exchange then learns T and where the shard starts from
/// the SP group's row counts (<see cref="ITokenExchange.CountEntries"/>).
/// </summary>
internal readonly record struct ShardClaim
{
    private ShardClaim(SequenceShard? shard, int rows)
    {
        Shard = shard;
        RealRows = rows;
    }

    /// <summary>The whole shard, or null while T and the start are not yet known.</summary>
    public SequenceShard? Shard { get; }

    /// <summary>Tokens of the shard that exist (known either way).</summary>
    public int RealRows { get; }

    /// <summary>Pad rows after them (none when the start is not yet known: only balanced sharding leaves it
    /// open).</summary>
    public int PadRows => Shard?.PadRows ?? 0;

    /// <summary>Rows the shard routes: real plus pad.</summary>
    public int Rows => RealRows + PadRows;

    /// <summary>A shard this rank knows completely.</summary>
    public static ShardClaim Known(SequenceShard shard) => new(shard, shard.RealRows);

    /// <summary><paramref name="rows"/> tokens whose place in a sequence of unknown length the exchange will
    /// tell.</summary>
    public static ShardClaim StartUnknown(int rows) => new(null, rows);
}
