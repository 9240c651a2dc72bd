using System.Collections.Immutable;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// What a dispatch exchanges with the other ranks (Megatron-Core's "exchange" phase), apart from the local steps
/// before and after it: the routing counts, the routed rows out and back, and the SP group's sum. Two
/// implementations: <see cref="LocalExchange"/> (EP = 1: nothing crosses a rank) and <see cref="AllToAllExchange"/>
/// (EP &gt; 1: torchtitan's all-to-all-v).
/// </summary>
internal interface ITokenExchange
{
    /// <summary>
    /// Whether routed rows leave this rank. When they do not, the local layout is the routed layout: dispatch and
    /// combine skip the row exchanges and the permutation.
    /// </summary>
    bool MovesRows { get; }

    /// <summary>
    /// Checks that the SP group's replicated copies of the routing agree
    /// (<see cref="TokenDispatcherConfig.CheckReplicatedInputs"/>); every rank throws the same error when they do not.
    /// </summary>
    void CheckReplicasAgree(Tensor topScores, Tensor expertIds);

    /// <summary>
    /// Scans this rank's entries (validates, flattens and counts them per expert:
    /// <see cref="IEntryKernels.PrepareEntries"/>) and, when they are valid, exchanges the counts: each rank learns how
    /// many rows every rank sends it per local expert, and where its shard lies when <paramref name="claim"/> left that
    /// open. The SP group's agreement on T is checked on the way, so every rank throws the same error instead of some
    /// waiting.
    /// </summary>
    /// <param name="shard">This rank's routing entries.</param>
    /// <param name="entries"><c>[N]</c> ids and scores, overwritten by the scan.</param>
    /// <param name="claim">What this rank knows of its shard.</param>
    /// <param name="declaredTotalTokens">T as the caller declared it, if it did.</param>
    /// <exception cref="PeerRankException">This rank's entries are valid but another rank's are not.</exception>
    CountedEntries CountEntries(ShardEntries shard, EntryColumns entries, ShardClaim claim, int? declaredTotalTokens);

    /// <summary>All-to-all-v of rows: <paramref name="sendRows"/>[q] rows to rank q, <paramref name="receiveRows"/>[p]
    /// from rank p.</summary>
    void ExchangeRows(Tensor send, ImmutableArray<int> sendRows, Tensor receive, ImmutableArray<int> receiveRows);

    /// <summary>Starts <see cref="ExchangeRows"/> and returns at once, so the caller computes while rows
    /// move.</summary>
    CollectiveRequest StartExchangeRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        Tensor receive,
        ImmutableArray<int> receiveRows
    );

    /// <summary>
    /// Bytes the last <see cref="ExchangeRows"/> or <see cref="StartExchangeRows"/> handed to the all-to-all-v from
    /// this rank (its rows for every rank, its own included: element counts × the send tensor's element size); 0
    /// where rows never move.
    /// </summary>
    long LastRowBytesSent { get; }

    /// <summary>
    /// Milliseconds the last <see cref="CountEntries"/> spent in its collective (the count messages' exchange, not the
    /// scan); timed only when <see cref="TokenDispatcherConfig.CollectTraffic"/> is on, 0 otherwise and for one rank.
    /// </summary>
    double LastCountExchangeMilliseconds { get; }

    /// <summary>When the last <see cref="CountEntries"/> entered its collective (a
    /// <see cref="System.Diagnostics.Stopwatch"/> timestamp), under the same conditions; 0 otherwise.</summary>
    long LastCountExchangeStarted { get; }

    /// <summary>Every rank's row of <paramref name="partial"/> over the EP group, the same report on every rank, with
    /// the per-peer waits derived from <paramref name="arrivals"/> (<see cref="TrafficCollection.Gather"/>).</summary>
    TrafficReport GatherTraffic(TrafficReport partial, ReadOnlySpan<long> arrivals);

    /// <summary>Sums <paramref name="values"/> over the SP group in place, in SP-rank order (every rank gets the same
    /// bits).</summary>
    void SumOverSequenceParallel(Tensor values);
}

/// <summary>What <see cref="ITokenExchange.CountEntries"/> found.</summary>
/// <param name="Scan">This rank's scan: its per-expert counts, or its first invalid entry.</param>
/// <param name="Exchanged">The exchanged counts; null exactly when <paramref name="Scan"/> found an invalid
/// entry.</param>
internal sealed record CountedEntries(EntryScan Scan, ExchangedCounts? Exchanged);

/// <summary>The counts this rank receives and its shard, after the cross-rank checks.</summary>
/// <param name="ReceiveCounts"><c>[S·e]</c>: rows rank p sends this rank for local expert j, at <c>p·e + j</c>.</param>
/// <param name="Shard">This rank's shard, its start resolved.</param>
internal sealed record ExchangedCounts(int[] ReceiveCounts, SequenceShard Shard);
