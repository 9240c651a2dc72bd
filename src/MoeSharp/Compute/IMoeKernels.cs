using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The backend seam: where a dispatcher's tensors live and the local kernels it needs over them. Dispatch
/// logic is written once against this interface; <see cref="HostMoeKernels"/> is the host implementation
/// and the CUDA backend another. Every kernel is deterministic: the same inputs give the same bits however
/// the work is split over cores or threads, and no kernel contracts a multiply and an add into one rounding.
/// </summary>
/// <remarks>
/// Three members, two of them narrow seams: <see cref="Device"/> (name, allocator, transfers, synchronisation),
/// <see cref="Entries"/> (the routing-entry side: scan, count messages, sort, local layout, permutation; int32 maps
/// built from the routing) and <see cref="Rows"/> (the row side: clears, copies, gathers, the scatter, the combine
/// and the score gradients, over float32 or bfloat16 rows). An implementation may implement both seams itself and
/// return <c>this</c> from both. The kernels' wider inputs come as small records (<see cref="ShardEntries"/>,
/// <see cref="SortedEntries"/>, <see cref="LocalLayoutMaps"/>, <see cref="TokenScatter"/>, <see cref="TokenGather"/>,
/// <see cref="RowPairs"/>, <see cref="CountMessages"/>).
/// Shapes use the design's letters: N routed entries (shard rows × K), E experts, D row length, T_s tokens of
/// the shard. Host-side results (counts, the first invalid entry) are the only data a kernel hands back to
/// the host: one small device-to-host copy per dispatch.
/// </remarks>
public interface IMoeKernels
{
    /// <summary>Where the tensors live: the device's name, allocator, transfers and synchronisation.</summary>
    IComputeDevice Device { get; }

    /// <summary>
    /// The routing-entry kernels: they read the router's ids and scores and build the dispatch's int32 maps
    /// (counts, order, local layout, permutation). Their tensors live on <see cref="Device"/>.
    /// </summary>
    IEntryKernels Entries { get; }

    /// <summary>
    /// The row kernels: they move, scale and reduce the token rows (float32 or bfloat16) along those maps. Their
    /// tensors live on <see cref="Device"/>.
    /// </summary>
    IRowKernels Rows { get; }
}

/// <summary>
/// The routing-entry half of <see cref="IMoeKernels"/>: validating and counting a shard's routing entries, the count
/// exchange's messages, the stable sort by expert and the int32 maps of the local layout and the expert-major
/// permutation. Deterministic, like every kernel of the seam.
/// </summary>
public interface IEntryKernels
{
    /// <summary>
    /// Reads a shard's routing entries (<see cref="ShardEntries"/>), validates them and counts them per expert (the
    /// histogram), writing each entry's id and score to <paramref name="entries"/>.
    /// </summary>
    /// <param name="shard">Which rows of the routing are the shard's, and how many pad entries follow them.</param>
    /// <param name="entries"><c>[N]</c> ids and scores, overwritten.</param>
    /// <returns>
    /// Counts per expert and the first invalid entry (an id outside <c>[0, E)</c> or a non-finite score), if any;
    /// when there is one, the counts and outputs are unspecified.
    /// </returns>
    EntryScan PrepareEntries(ShardEntries shard, EntryColumns entries);

    /// <summary>
    /// <see cref="IEntryKernels.PrepareEntries"/> without bringing the result to the host: the scan is written in the
    /// <see cref="EntryScanWords"/> layout to int32 <paramref name="scan"/> from element <paramref name="scanOffset"/>,
    /// so a device count exchange can send it on and the host read everything in one copy afterwards.
    /// </summary>
    /// <param name="shard">Which rows of the routing are the shard's, and how many pad entries follow them.</param>
    /// <param name="entries"><c>[N]</c> ids and scores, overwritten.</param>
    /// <param name="scan">int32, at least <c>scanOffset + EntryScanWords.Length(E)</c> elements.</param>
    /// <param name="scanOffset">First element of the scan.</param>
    void ScanEntries(ShardEntries shard, EntryColumns entries, Tensor scan, int scanOffset);

    /// <summary>
    /// Writes the count exchange's messages (<see cref="CountMessages"/>, the wire format) from a scan left on the
    /// device by <see cref="ScanEntries"/>, so the counts never visit the host before they are exchanged.
    /// </summary>
    /// <param name="scan">
    /// int32 holding a scan in the <see cref="EntryScanWords"/> layout at <paramref name="scanOffset"/>.
    /// </param>
    /// <param name="scanOffset">First element of the scan.</param>
    /// <param name="messages">The messages' layout and header.</param>
    /// <param name="send">int32, at least <see cref="CountMessages.TotalLength"/> elements.</param>
    void PackCountMessages(Tensor scan, int scanOffset, CountMessages messages, Tensor send);

    /// <summary>
    /// Stable counting sort by expert: <c>order[i]</c> is the entry that lands at sorted position i, entries
    /// of one expert keeping their original order. O(N + E).
    /// </summary>
    /// <param name="expertIds"><c>[N]</c> int32.</param>
    /// <param name="counts"><c>[E]</c> from <see cref="IEntryKernels.PrepareEntries"/>.</param>
    /// <param name="order"><c>[N]</c> int32, overwritten.</param>
    void StableSortByExpert(Tensor expertIds, ReadOnlySpan<int> counts, Tensor order);

    /// <summary>
    /// The per-row maps of the local layout (<see cref="LocalLayoutMaps"/>). Sorted position i holds entry
    /// <c>e = Order[i]</c> and lands in row <c>r = RowOfSorted[i]</c> (or i): <c>RowToken[r] = e / K</c> for a real
    /// entry (<c>e &lt; RealTokens·K</c>), else -1; <c>RowScore[r] = Scores[e]</c>; <c>EntryRow[e] = r</c>; rows no
    /// entry lands in get token -1 and score 0. <c>TokenPositions[t]</c> is token t's K rows in ascending order
    /// (= ascending expert id): the combine order.
    /// </summary>
    /// <param name="sortedEntries">The entries in expert order and where each sorted position lands.</param>
    /// <param name="maps">The four maps, overwritten.</param>
    void BuildLocalLayout(SortedEntries sortedEntries, LocalLayoutMaps maps);

    /// <summary>
    /// The maps between the received rank-major rows and the expert-major routed rows, built from per-block runs:
    /// received rows <c>[blockStart[b], blockStart[b + 1])</c> are expert-major rows <c>blockDestination[b] + 0, 1,
    /// …</c>.
    /// <c>rankMajorRowOf[r]</c> is received row r's routed row; <c>expertMajorRowOf[q]</c> is routed row q's received
    /// row, or -1 for a row no block covers (alignment padding).
    /// </summary>
    /// <param name="blockStart"><c>[B + 1]</c> ascending; the last entry is the number of received rows.</param>
    /// <param name="blockDestination"><c>[B]</c> first routed row of each block.</param>
    /// <param name="expertMajorRowOf"><c>[R]</c> int32, overwritten.</param>
    /// <param name="rankMajorRowOf"><c>[blockStart[B]]</c> int32, overwritten.</param>
    void BuildPermutation(
        ReadOnlySpan<int> blockStart,
        ReadOnlySpan<int> blockDestination,
        Tensor expertMajorRowOf,
        Tensor rankMajorRowOf
    );
}

/// <summary>
/// The row half of <see cref="IMoeKernels"/>: clears, copies, gathers, the token scatter, the ordered combine and the
/// score gradients over float32 or bfloat16 rows, along maps the entry kernels built. Deterministic, like every
/// kernel of the seam: no atomics, no fused multiply-add.
/// </summary>
public interface IRowKernels
{
    /// <summary>Sets every element to zero.</summary>
    void Clear(Tensor tensor);

    /// <summary>
    /// Copies <paramref name="rows"/> rows of <paramref name="source"/> into <paramref name="destination"/>.
    /// </summary>
    void CopyRows(Tensor source, int sourceRow, Tensor destination, int destinationRow, int rows);

    /// <summary>
    /// Row gather with optional scale: <c>destination[i] = source[sourceRowOffset + rowOf[i]] · scale[i]</c> (one
    /// float32 multiply, rounded once to the row dtype), or a zero row where <c>rowOf[i] &lt; 0</c>. Every destination
    /// row is written. Rows are float32 or bfloat16, the same dtype on both sides.
    /// </summary>
    /// <param name="source"><c>[Rs, D]</c> float32 or bfloat16.</param>
    /// <param name="sourceRowOffset">Added to every non-negative entry of <paramref name="rowOf"/>.</param>
    /// <param name="rowOf"><c>[Rd]</c> int32 source row of each destination row, or -1.</param>
    /// <param name="scale"><c>[Rd]</c> float32, or null for a plain copy.</param>
    /// <param name="destination"><c>[Rd, D]</c>, the dtype of <paramref name="source"/>.</param>
    void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination);

    /// <summary>
    /// The dispatch gather in token order: the same result as
    /// <c>GatherRows(source, sourceRowOffset, map.RowToken, map.Scale, destination)</c> — row r gets
    /// <c>source[sourceRowOffset + RowToken[r]] · Scale[r]</c>, or zeros where <c>RowToken[r] &lt; 0</c> — but each
    /// token row is read once and written to its K rows (<see cref="TokenScatter.EntryRow"/>), so a host backend
    /// streams the tokens through memory once instead of once per expert. A backend may compute it as the gather.
    /// </summary>
    /// <param name="source"><c>[Rs, D]</c> float32 or bfloat16 token rows.</param>
    /// <param name="sourceRowOffset">Row of <paramref name="source"/> of token 0.</param>
    /// <param name="map">Where each token's rows go, and their scale.</param>
    /// <param name="destination"><c>[Rd, D]</c>, the dtype of <paramref name="source"/>.</param>
    void ScatterTokenRows(Tensor source, int sourceRowOffset, TokenScatter map, Tensor destination);

    /// <summary>
    /// Ordered gather-reduce (combine): for each token t,
    /// <c>destination[offset + t] = ((init[t] + rows[p0]·scale[p0]) + rows[p1]·scale[p1]) + …</c> over its
    /// positions <c>p0 &lt; p1 &lt; …</c> (<see cref="TokenGather"/>: ascending, so ascending expert id), starting
    /// from +0 when <see cref="TokenGather.Initial"/> is null. Each product is rounded before the add: no fused
    /// multiply-add. No atomics: each destination row is owned by one token. bfloat16 rows are widened and summed
    /// in a float32 accumulator, rounded once to bfloat16 at the end.
    /// </summary>
    /// <param name="gather">The rows, each token's positions among them, their scale and the starting values.</param>
    /// <param name="destination"><c>[*, D]</c> in the rows' dtype; rows <c>[offset, offset + T_s)</c> are
    /// overwritten.</param>
    /// <param name="destinationOffset">Row of <paramref name="destination"/> that token 0 goes to.</param>
    void GatherReduce(TokenGather gather, Tensor destination, int destinationOffset);

    /// <summary>
    /// Score gradients over <see cref="RowPairs"/>:
    /// <c>result[resultOffset + i] = Σ_d A[ARow[i], d] · B[BRowOffset + i / EntriesPerBRow, d]</c>, accumulated in
    /// float64 in ascending d and rounded to float32 once.
    /// </summary>
    /// <param name="pairs">Which row of a is dotted with which row of b for each result.</param>
    /// <param name="result">float32; elements <c>[resultOffset, resultOffset + M)</c> are overwritten.</param>
    /// <param name="resultOffset">First element written.</param>
    void RowDots(RowPairs pairs, Tensor result, int resultOffset);
}

/// <summary>What <see cref="IEntryKernels.PrepareEntries"/> found.</summary>
/// <param name="Counts"><c>[E]</c> entries per expert, pad entries included.</param>
/// <param name="FirstInvalidEntry">Flat index (token-major within the shard) of the first invalid entry, or -1.</param>
/// <param name="InvalidId">That entry's expert id.</param>
/// <param name="InvalidScore">That entry's score.</param>
public sealed record EntryScan(int[] Counts, int FirstInvalidEntry, long InvalidId, float InvalidScore);
