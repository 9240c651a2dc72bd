using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The backend seam: the local kernels a token dispatcher needs, over tensors that live on the
/// backend's device. Dispatch logic is written once against this interface; the host implementation is
/// <see cref="HostMoeKernels"/>. Every kernel is deterministic: the same inputs give the same bits
/// however the work is split over cores.
/// </summary>
public interface IMoeKernels
{
    /// <summary>
    /// Histogram of expert ids: <c>counts[e]</c> = entries of <paramref name="expertIds"/> equal to e.
    /// </summary>
    /// <param name="expertIds"><c>[N]</c> int32, each in <c>[0, E)</c> (validated by the caller).</param>
    /// <param name="counts"><c>[E]</c>, overwritten.</param>
    void ExpertHistogram(Tensor expertIds, Span<int> counts);

    /// <summary>
    /// Stable counting sort by expert: <c>order[i]</c> is the entry that lands at sorted position i, entries
    /// of one expert keeping their original order. O(N + E).
    /// </summary>
    /// <param name="expertIds"><c>[N]</c> int32.</param>
    /// <param name="counts"><c>[E]</c> from <see cref="ExpertHistogram"/>.</param>
    /// <param name="order"><c>[N]</c> int32, overwritten.</param>
    void StableSortByExpert(Tensor expertIds, ReadOnlySpan<int> counts, Tensor order);

    /// <summary>
    /// Row gather with optional scale: <c>destination[i] = source[sourceRowOffset + rowOf[i]] · scale[i]</c> (one float32
    /// multiply, rounded once), or a zero row where <c>rowOf[i] &lt; 0</c>. Every destination row is written.
    /// </summary>
    /// <param name="source"><c>[Rs, D]</c> float32.</param>
    /// <param name="sourceRowOffset">Added to every non-negative entry of <paramref name="rowOf"/>.</param>
    /// <param name="rowOf"><c>[Rd]</c> int32 source row of each destination row, or -1.</param>
    /// <param name="scale"><c>[Rd]</c> float32, or null for a plain copy.</param>
    /// <param name="destination"><c>[Rd, D]</c> float32.</param>
    void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination);

    /// <summary>
    /// Ordered gather-reduce (combine): for each token t,
    /// <c>destination[offset + t] = ((init[t] + rows[p0]·scale[p0]) + rows[p1]·scale[p1]) + …</c> over its
    /// positions <c>p0 &lt; p1 &lt; …</c> (ascending, so ascending expert id), starting from +0 when
    /// <paramref name="initial"/> is null. Each product is rounded before the add: no fused multiply-add.
    /// No atomics: each destination row is owned by one token.
    /// </summary>
    /// <param name="rows"><c>[N, D]</c> float32 rows in expert-sorted order.</param>
    /// <param name="positions"><c>[n, K]</c> int32, each token's rows in ascending order; -1 entries are skipped.</param>
    /// <param name="scale"><c>[N]</c> float32 per row, or null.</param>
    /// <param name="initial"><c>[n, D]</c> float32 starting values (the shared experts' output), or null.</param>
    /// <param name="destination"><c>[*, D]</c> float32; rows <c>[offset, offset + n)</c> are overwritten.</param>
    /// <param name="destinationOffset">Row of <paramref name="destination"/> that token 0 goes to.</param>
    void GatherReduce(Tensor rows, Tensor positions, Tensor? scale, Tensor? initial, Tensor destination, int destinationOffset);

    /// <summary>
    /// Row dot products: <c>result[i] = Σ_d a[aRow[i], d] · b[bRow[i], d]</c>, accumulated in float64 in
    /// ascending d and rounded to float32 once; 0 where either row index is negative.
    /// </summary>
    void RowDots(Tensor a, ReadOnlySpan<int> aRow, Tensor b, ReadOnlySpan<int> bRow, Span<float> result);
}
