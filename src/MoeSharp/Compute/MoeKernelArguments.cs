using System.Collections.Immutable;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The routing entries of one shard, as <see cref="IEntryKernels.PrepareEntries"/> and
/// <see cref="IEntryKernels.ScanEntries"/> read them: entries <c>[0, RealTokens·K)</c> are rows
/// <c>[RowOffset, RowOffset + RealTokens)</c> of <see cref="ExpertIds"/>/<see cref="TopScores"/> flattened token-major
/// (K = their row length); the <c>PadTokens·K</c> entries after them are the SP pad rows' entries, expert 0 with
/// score 0.
/// </summary>
/// <param name="TopScores"><c>[T, K]</c> float32 routing scores.</param>
/// <param name="ExpertIds"><c>[T, K]</c> int32 or int64 expert ids.</param>
/// <param name="RowOffset">First row of the shard in the routing tensors.</param>
/// <param name="RealTokens">Tokens of the shard (T_s).</param>
/// <param name="PadTokens">Pad rows after them (pad-to-multiple sharding only).</param>
/// <param name="NumExperts">E: valid ids are <c>[0, E)</c>.</param>
public sealed record ShardEntries(
    Tensor TopScores,
    Tensor ExpertIds,
    int RowOffset,
    int RealTokens,
    int PadTokens,
    int NumExperts
);

/// <summary>
/// A shard's routing entries flattened to one id and one score each (N = (T_s + pad)·K entries), which the entry scan
/// writes and the sort and the local layout read.
/// </summary>
/// <param name="Ids"><c>[N]</c> int32 expert id of each entry.</param>
/// <param name="Scores"><c>[N]</c> float32 score of each entry.</param>
public sealed record EntryColumns(Tensor Ids, Tensor Scores);

/// <summary>
/// The wire format of the count exchange (<see cref="IEntryKernels.PackCountMessages"/> writes it on a device; the
/// exchange reads it on the host): <see cref="Ranks"/> messages of <see cref="Length"/> int32 each, message q (sent to
/// rank q) holding the sender's counts of experts <c>[q·e, (q+1)·e)</c> (its <see cref="PadEntries"/> counted on
/// expert 0), then <see cref="Header"/>, then a flag at <see cref="FlagOffset"/>: 1 when the sender's scan found an
/// invalid entry, else 0. The flag lets every rank learn of a bad entry anywhere and throw, instead of some waiting.
/// </summary>
/// <param name="Ranks">S: messages, one per rank of the EP group.</param>
/// <param name="ExpertsPerRank">e = E/S: counts per message.</param>
/// <param name="PadEntries">Pad entries of the sender's shard, counted on expert 0 (the scan leaves them out).</param>
/// <param name="Header">Values every message carries after its counts (what they mean is the exchange's
/// business).</param>
public sealed record CountMessages(int Ranks, int ExpertsPerRank, int PadEntries, ImmutableArray<int> Header)
{
    /// <summary>int32 values of one message: the counts, the header and the flag.</summary>
    public int Length => ExpertsPerRank + Header.Length + 1;

    /// <summary>int32 values of all <see cref="Ranks"/> messages.</summary>
    public int TotalLength => Ranks * Length;

    /// <summary>Offset of the header within a message.</summary>
    public int HeaderOffset => ExpertsPerRank;

    /// <summary>Offset of the invalid-entry flag within a message (its last value).</summary>
    public int FlagOffset => Length - 1;
}

/// <summary>
/// The entries in expert order, input of <see cref="IEntryKernels.BuildLocalLayout"/>: sorted position i holds entry
/// <c>Order[i]</c> and lands in row <c>RowOfSorted[i]</c> of the local layout (row i when there is no map).
/// </summary>
/// <param name="Order"><c>[N]</c> int32 from <see cref="IEntryKernels.StableSortByExpert"/>.</param>
/// <param name="Scores"><c>[N]</c> float32 score of each entry (in entry order, from the scan).</param>
/// <param name="RealTokens">T_s: entries <c>[0, T_s·K)</c> are real, the rest SP pad entries.</param>
/// <param name="TopK">K.</param>
/// <param name="RowOfSorted">
/// <c>[N]</c> int32 row of each sorted position when each expert's rows are padded to the alignment, or null for the
/// identity.
/// </param>
public sealed record SortedEntries(Tensor Order, Tensor Scores, int RealTokens, int TopK, Tensor? RowOfSorted);

/// <summary>
/// The per-row maps of a dispatch's local layout (see <c>docs/architecture.md</c>), which
/// <see cref="IEntryKernels.BuildLocalLayout"/> writes. Four maps because the combine is an ordered reduce without
/// atomics: rows are found from tokens (<see cref="EntryRow"/>, <see cref="TokenPositions"/>) as well as tokens from
/// rows (<see cref="RowToken"/>, <see cref="RowScore"/>), so each kernel is written by one owner per output row.
/// </summary>
/// <param name="RowToken"><c>[Rows]</c> int32 shard-local token of each row; -1 for SP pad and alignment rows.</param>
/// <param name="RowScore"><c>[Rows]</c> float32 score of each row; 0 for alignment rows.</param>
/// <param name="EntryRow"><c>[T_s·K]</c> int32 row of each real entry (token, slot), in slot order.</param>
/// <param name="TokenPositions">
/// <c>[T_s, K]</c> int32 each real token's K rows in ascending order, which is ascending expert id: the combine order.
/// </param>
public sealed record LocalLayoutMaps(Tensor RowToken, Tensor RowScore, Tensor EntryRow, Tensor TokenPositions);

/// <summary>
/// How <see cref="IRowKernels.ScatterTokenRows"/> places token rows: token t's row goes to rows
/// <c>EntryRow[t·K .. t·K + K)</c>, multiplied by <see cref="Scale"/> there; rows whose <see cref="RowToken"/> is
/// -1 get zeros.
/// </summary>
/// <param name="RowToken"><c>[Rd]</c> int32 token of each destination row, or -1.</param>
/// <param name="EntryRow"><c>[T_s·K]</c> int32 destination row of each (token, slot).</param>
/// <param name="TopK">K.</param>
/// <param name="Scale"><c>[Rd]</c> float32 per destination row, or null for a plain copy.</param>
public sealed record TokenScatter(Tensor RowToken, Tensor EntryRow, int TopK, Tensor? Scale);

/// <summary>
/// What <see cref="IRowKernels.GatherReduce"/> combines: token t's rows are <c>Rows[Positions[t, j]]</c> for its K
/// positions in ascending order, each multiplied by <see cref="Scale"/>, summed onto <see cref="Initial"/> (the inverse
/// of <see cref="TokenScatter"/>).
/// </summary>
/// <param name="Rows"><c>[N, D]</c> float32 or bfloat16 rows in the local layout.</param>
/// <param name="Positions"><c>[T_s, K]</c> int32, each token's rows in ascending order; -1 entries are skipped.</param>
/// <param name="Scale"><c>[N]</c> float32 per row, or null.</param>
/// <param name="Initial">
/// <c>[T_s, D]</c> starting values (the shared experts' output) in the rows' dtype, or null for +0.
/// </param>
public sealed record TokenGather(Tensor Rows, Tensor Positions, Tensor? Scale, Tensor? Initial);

/// <summary>
/// The row pairs of <see cref="IRowKernels.RowDots"/>: result i dots row <c>ARow[i]</c> of <see cref="A"/> with row
/// <c>BRowOffset + i / EntriesPerBRow</c> of <see cref="B"/>.
/// </summary>
/// <param name="A"><c>[N, D]</c> float32 or bfloat16 rows in the local layout (widened exactly).</param>
/// <param name="ARow"><c>[M]</c> int32 row of <see cref="A"/> for each result.</param>
/// <param name="B"><c>[*, D]</c> token rows, the dtype of <see cref="A"/>.</param>
/// <param name="BRowOffset">Row of <see cref="B"/> for result 0.</param>
/// <param name="EntriesPerBRow">Consecutive results that share a row of <see cref="B"/> (K).</param>
public sealed record RowPairs(Tensor A, Tensor ARow, Tensor B, int BRowOffset, int EntriesPerBRow);
