using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The row kernels of <see cref="IlgpuMoeKernels"/> one value per thread, for any row length, written once over the
/// row type (the <c>TRow</c> type parameter of each): values widen exactly to float32, products and sums are
/// <see cref="IStrictFloat"/> float32 operations, results are rounded once, so they match <c>HostMoeKernels</c> bit
/// for bit. Flags are ints (kernel scalars); an absent optional view is replaced by any valid view with its flag off.
/// </summary>
internal static class RowKernelBodies
{
    /// <summary>
    /// Thread i (element j of destination row r): <c>source[offset + rowOf[r], j] · scale[r]</c>, one rounding,
    /// or +0.
    /// </summary>
    public static void GatherRows<TFloat, TElement, TRow>(
        Index1D i,
        ArrayView<TElement> source,
        int sourceRowOffset,
        ArrayView<int> rowOf,
        ArrayView<float> scale,
        int hasScale,
        int d,
        ArrayView<TElement> destination
    )
        where TFloat : struct, IStrictFloat
        where TElement : unmanaged
        where TRow : struct, IDeviceRow<TElement>
    {
        int r = i / d,
            j = i - r * d;
        int from = rowOf[r];
        if (from < 0)
        {
            destination[i] = default;
            return;
        }
        TRow row = default;
        TElement v = source[(long)(from + sourceRowOffset) * d + j];
        destination[i] = hasScale != 0 ? row.Narrow(default(TFloat).Mul(row.Widen(v), scale[r])) : v;
    }

    /// <summary>
    /// Thread i (element j of token t): the ordered float32 sum <c>((init + rows[p0]·s[p0]) + rows[p1]·s[p1]) + …</c>
    /// over the token's positions in ascending order, each product rounded before its add, rounded once.
    /// </summary>
    public static void GatherReduce<TFloat, TElement, TRow>(
        Index1D i,
        ArrayView<TElement> rows,
        ArrayView<int> positions,
        int k,
        ArrayView<float> scale,
        int hasScale,
        ArrayView<TElement> initial,
        int hasInitial,
        int d,
        ArrayView<TElement> destination,
        int destinationOffset
    )
        where TFloat : struct, IStrictFloat
        where TElement : unmanaged
        where TRow : struct, IDeviceRow<TElement>
    {
        TFloat f = default;
        TRow row = default;
        int t = i / d,
            j = i - t * d;
        float acc = hasInitial != 0 ? row.Widen(initial[i]) : 0f;
        // Slots in blocks of four: the four rows are loaded before the first add, so four loads are in flight at
        // once (the adds must stay in slot order).
        for (int slot = 0; slot < k; slot += 4)
        {
            int p0 = positions[t * k + slot];
            int p1 = slot + 1 < k ? positions[t * k + slot + 1] : -1;
            int p2 = slot + 2 < k ? positions[t * k + slot + 2] : -1;
            int p3 = slot + 3 < k ? positions[t * k + slot + 3] : -1;
            float v0 = p0 >= 0 ? row.Widen(rows[(long)p0 * d + j]) : 0f;
            float v1 = p1 >= 0 ? row.Widen(rows[(long)p1 * d + j]) : 0f;
            float v2 = p2 >= 0 ? row.Widen(rows[(long)p2 * d + j]) : 0f;
            float v3 = p3 >= 0 ? row.Widen(rows[(long)p3 * d + j]) : 0f;
            if (p0 >= 0)
                acc = f.Add(acc, hasScale != 0 ? f.Mul(v0, scale[p0]) : v0);
            if (p1 >= 0)
                acc = f.Add(acc, hasScale != 0 ? f.Mul(v1, scale[p1]) : v1);
            if (p2 >= 0)
                acc = f.Add(acc, hasScale != 0 ? f.Mul(v2, scale[p2]) : v2);
            if (p3 >= 0)
                acc = f.Add(acc, hasScale != 0 ? f.Mul(v3, scale[p3]) : v3);
        }
        destination[(long)(destinationOffset + t) * d + j] = row.Narrow(acc);
    }

    /// <summary>
    /// Thread i: <c>values[i] = ((g[0·n + i] + g[1·n + i]) + …)</c>, widened, float32 adds in rank order (no multiply
    /// to fuse), rounded once.
    /// </summary>
    public static void SumRanks<TElement, TRow>(
        Index1D i,
        ArrayView<TElement> gathered,
        int n,
        int ranks,
        ArrayView<TElement> values
    )
        where TElement : unmanaged
        where TRow : struct, IDeviceRow<TElement>
    {
        TRow row = default;
        float sum = row.Widen(gathered[i]);
        for (int r = 1; r < ranks; r++)
            sum += row.Widen(gathered[(long)r * n + i]);
        values[i] = row.Narrow(sum);
    }
}
