using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Result i: <c>Σ_d a[aRow[i], d] · b[bRowOffset + i / perB, d]</c>, values widened, in float64, ascending d, rounded
/// once (a float64 product of two float32 values is exact, so a contraction into <c>fma.rn.f64</c> gives the same
/// bits), with coalesced loads: one thread sums one result in that order (so the bits are those of one thread per
/// row), but a group of
/// <see cref="Tile"/> threads loads its <see cref="Tile"/> rows' next <see cref="Tile"/> columns together, a warp
/// reading 128 contiguous bytes of one row at a time, into shared memory that each thread then reads its row from.
/// One thread per row read its own row alone (a warp touching 32 rows per load) and, grouped automatically in 1024s,
/// ran on 16 multiprocessors at the small preset.
/// </summary>
internal static class RowDotsKernelBodies
{
    /// <summary>Rows per group and columns per step; the group's size on CUDA (smaller groups use a corner).</summary>
    public const int Tile = 32;

    // One padding column, so thread t reading element c of row t hits bank (t + c) mod 32: no conflicts.
    private const int Pitch = Tile + 1;

    /// <summary>
    /// Group g, thread t: result <c>g·n + t</c> (n = the group's size ≤ <see cref="Tile"/>) of
    /// <c>Σ_d a[aRow[i], d] · b[bRowOffset + i / perB, d]</c>, values widened, in float64, ascending d, rounded
    /// once.
    /// </summary>
    public static void RowDotsTiled<TElement, TRow>(
        ArrayView<TElement> a,
        ArrayView<int> aRow,
        ArrayView<TElement> b,
        int bRowOffset,
        int perB,
        int d,
        int m,
        ArrayView<float> result,
        int resultOffset
    )
        where TElement : unmanaged
        where TRow : struct, IDeviceRow<TElement>
    {
        ArrayView<float> sa = SharedMemory.Allocate<float>(Tile * Pitch);
        ArrayView<float> sb = SharedMemory.Allocate<float>(Tile * Pitch);
        ArrayView<long> aStart = SharedMemory.Allocate<long>(Tile);
        ArrayView<long> bStart = SharedMemory.Allocate<long>(Tile);
        TRow row = default;
        int t = Group.IdxX,
            n = Group.DimX,
            first = Grid.IdxX * n,
            own = first + t;
        if (own < m)
        {
            aStart[t] = (long)aRow[own] * d;
            bStart[t] = (long)(bRowOffset + (own / perB)) * d;
        }
        Group.Barrier();
        int rows = m - first < n ? m - first : n;
        double sum = 0;
        for (int column = 0; column < d; column += n)
        {
            int width = d - column < n ? d - column : n;
            if (t < width)
            {
                for (int r = 0; r < rows; r++)
                {
                    sa[(r * Pitch) + t] = row.Widen(a[aStart[r] + column + t]);
                    sb[(r * Pitch) + t] = row.Widen(b[bStart[r] + column + t]);
                }
            }
            Group.Barrier();
            if (own < m)
            {
                for (int c = 0; c < width; c++)
                    sum += (double)sa[(t * Pitch) + c] * sb[(t * Pitch) + c];
            }
            Group.Barrier();
        }
        if (own < m)
            result[resultOffset + own] = (float)sum;
    }
}
