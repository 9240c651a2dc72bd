using System.Collections.Immutable;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// The identity exchange of EP = 1 (and SP = 1): every expert is local, so the counts this rank receives are its own,
/// no row moves, and the output is already the SP group's sum.
/// </summary>
/// <param name="kernels">Where the scan runs.</param>
internal sealed class LocalExchange(IMoeKernels kernels) : ITokenExchange
{
    /// <inheritdoc />
    public bool MovesRows => false;

    /// <inheritdoc />
    public void CheckReplicasAgree(Tensor topScores, Tensor expertIds)
    {
        // One rank holds the only copy.
    }

    /// <inheritdoc />
    public CountedEntries CountEntries(
        ShardEntries shard,
        EntryColumns entries,
        ShardClaim claim,
        int? declaredTotalTokens
    )
    {
        EntryScan scan = kernels.Entries.PrepareEntries(shard, entries);
        if (scan.FirstInvalidEntry >= 0)
            return new CountedEntries(scan, null);
        // SP = 1: the shard is the whole input, always known.
        SequenceShard known =
            claim.Shard ?? throw new InvalidOperationException("a local dispatch always knows its shard");
        return new CountedEntries(scan, new ExchangedCounts(scan.Counts, known));
    }

    /// <inheritdoc />
    /// <remarks>
    /// An all-to-all-v over one rank is a copy. The dispatcher never asks for it (<see cref="MovesRows"/> is false,
    /// so it uses the local rows in place), but the copy is what the exchange means.
    /// </remarks>
    public void ExchangeRows(Tensor send, ImmutableArray<int> sendRows, Tensor receive, ImmutableArray<int> receiveRows)
    {
        if (sendRows.Length != 1 || receiveRows.Length != 1 || sendRows[0] != receiveRows[0])
        {
            throw new ArgumentException(
                $"one rank sends itself what it receives; got {sendRows.Length} send and {receiveRows.Length} "
                    + $"receive splits"
            );
        }
        kernels.Rows.CopyRows(send, 0, receive, 0, sendRows[0]);
    }

    /// <inheritdoc />
    public CollectiveRequest StartExchangeRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        Tensor receive,
        ImmutableArray<int> receiveRows
    )
    {
        ExchangeRows(send, sendRows, receive, receiveRows);
        return CollectiveRequest.Completed;
    }

    /// <inheritdoc />
    /// <remarks>Rows never leave the rank.</remarks>
    public long LastRowBytesSent => 0;

    /// <inheritdoc />
    public double LastCountExchangeMilliseconds => 0;

    /// <inheritdoc />
    public long LastCountExchangeStarted => 0;

    /// <inheritdoc />
    public TrafficReport GatherTraffic(TrafficReport partial, ReadOnlySpan<long> arrivals) =>
        TrafficCollection.Gather(null, partial, 0, arrivals);

    /// <inheritdoc />
    public void SumOverSequenceParallel(Tensor values)
    {
        // SP = 1: the output is already the sum.
    }
}
