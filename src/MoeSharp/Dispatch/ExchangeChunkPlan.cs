namespace MoeSharp.Dispatch;

/// <summary>
/// How one row exchange is cut into chunks: every peer's block of rows is split into <see cref="Chunks"/> consecutive
/// pieces (piece c of an n-row block is rows <c>[n·c/C, n·(c+1)/C)</c>), so chunk c is an all-to-all-v of piece c of
/// every block. Sender and receiver cut a block the same way, since they agree on its length.
/// </summary>
internal sealed class ExchangeChunkPlan
{
    private readonly int[] _sendSplits;
    private readonly int[] _receiveSplits;
    private readonly int[] _sendBlockStart;
    private readonly int[] _receiveBlockStart;

    /// <summary>Plans an exchange of <paramref name="sendSplits"/>[q] rows to each rank q and <paramref name="receiveSplits"/>[p] from each rank p.</summary>
    public ExchangeChunkPlan(ReadOnlySpan<int> sendSplits, ReadOnlySpan<int> receiveSplits, int chunks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunks, 1);
        if (sendSplits.Length != receiveSplits.Length) throw new ArgumentException("one send and one receive split per rank", nameof(receiveSplits));
        Chunks = chunks;
        _sendSplits = sendSplits.ToArray();
        _receiveSplits = receiveSplits.ToArray();
        _sendBlockStart = Starts(_sendSplits);
        _receiveBlockStart = Starts(_receiveSplits);
    }

    /// <summary>C.</summary>
    public int Chunks { get; }

    /// <summary>Ranks.</summary>
    public int Ranks => _sendSplits.Length;

    /// <summary>Rows to each rank in chunk <paramref name="c"/> and where they start in the send buffer.</summary>
    public (int[] Rows, int[] Starts) Send(int c) => Piece(_sendSplits, _sendBlockStart, c);

    /// <summary>Rows from each rank in chunk <paramref name="c"/> and where they land in the receive buffer.</summary>
    public (int[] Rows, int[] Starts) Receive(int c) => Piece(_receiveSplits, _receiveBlockStart, c);

    private (int[] Rows, int[] Starts) Piece(int[] splits, int[] blockStart, int c)
    {
        var rows = new int[splits.Length];
        var starts = new int[splits.Length];
        for (int q = 0; q < splits.Length; q++)
        {
            int from = Cut(splits[q], c), to = Cut(splits[q], c + 1);
            starts[q] = blockStart[q] + from;
            rows[q] = to - from;
        }
        return (rows, starts);
    }

    private int Cut(int blockRows, int c) => (int)((long)blockRows * c / Chunks);

    private static int[] Starts(int[] splits)
    {
        var starts = new int[splits.Length];
        for (int q = 1; q < splits.Length; q++) starts[q] = starts[q - 1] + splits[q - 1];
        return starts;
    }
}
