using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The row kernels of <see cref="IlgpuMoeKernels"/> a 16-byte pack per thread (four floats, or eight bfloat16 values),
/// for rows whose length is a whole number of packs: a quarter (or an eighth) of the threads and index arithmetic of
/// <see cref="RowKernelBodies"/> (2.75 TB/s against 1.47 TB/s for one float per thread on an H100). Rows of a
/// whole number of packs start on 16-byte boundaries (buffers are 256-byte aligned). Written once over the row type.
/// </summary>
internal static class PackedRowKernelBodies
{
    /// <summary>
    /// Thread i is pack j of destination row r: the source row's pack, scaled and rounded when
    /// <paramref name="hasScale"/> is set, or zeros where <c>rowOf[r] &lt; 0</c>.
    /// </summary>
    public static void GatherRows<TFloat, TRow>(
        Index1D i,
        ArrayView<UInt4> source,
        int sourceRowOffset,
        ArrayView<int> rowOf,
        ArrayView<float> scale,
        int hasScale,
        int packs,
        ArrayView<UInt4> destination
    )
        where TFloat : struct, IStrictFloat
        where TRow : struct, IDeviceWord
    {
        int r = i / packs,
            j = i - r * packs;
        int from = rowOf[r];
        if (from < 0)
        {
            destination[i] = default;
            return;
        }
        UInt4 v = source[(long)(from + sourceRowOffset) * packs + j];
        if (hasScale != 0)
        {
            float s = scale[r];
            v = new UInt4(
                RowWords.Scale<TFloat, TRow>(v.A, s),
                RowWords.Scale<TFloat, TRow>(v.B, s),
                RowWords.Scale<TFloat, TRow>(v.C, s),
                RowWords.Scale<TFloat, TRow>(v.D, s)
            );
        }
        destination[i] = v;
    }

    /// <summary>
    /// Thread i is pack j of token t: for each value, the ordered float32 sum
    /// <c>((init + rows[p0]·s[p0]) + rows[p1]·s[p1]) + …</c> over the token's positions in ascending order, each
    /// product rounded before its add, rounded once. Two slots' packs are loaded before their adds, so 32 bytes per
    /// thread are in flight while the adds stay in slot order.
    /// </summary>
    public static void GatherReduce<TFloat, TRow>(
        Index1D i,
        ArrayView<UInt4> rows,
        ArrayView<int> positions,
        int k,
        ArrayView<float> scale,
        int hasScale,
        ArrayView<UInt4> initial,
        int hasInitial,
        int packs,
        ArrayView<UInt4> destination,
        int destinationOffset
    )
        where TFloat : struct, IStrictFloat
        where TRow : struct, IDeviceWord
    {
        int t = i / packs,
            j = i - t * packs;
        UInt4 init = hasInitial != 0 ? initial[i] : default;
        var acc = new RowWords.PackSums<TFloat, TRow>(init);
        for (int slot = 0; slot < k; slot += 2)
        {
            int p0 = positions[t * k + slot];
            int p1 = slot + 1 < k ? positions[t * k + slot + 1] : -1;
            UInt4 v0 = p0 >= 0 ? rows[(long)p0 * packs + j] : default;
            UInt4 v1 = p1 >= 0 ? rows[(long)p1 * packs + j] : default;
            if (p0 >= 0)
                acc.Add(v0, hasScale != 0 ? scale[p0] : 1f, hasScale);
            if (p1 >= 0)
                acc.Add(v1, hasScale != 0 ? scale[p1] : 1f, hasScale);
        }
        destination[(long)(destinationOffset + t) * packs + j] = acc.Round();
    }
}
