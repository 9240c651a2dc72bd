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
                int r = 0,
                    c = column + t;
                // Eight rows' loads are issued before any store to shared memory: loaded and stored one row at a
                // time, a load cannot start before the store ahead of it unless the compiler proves they do not
                // alias, and the combine phase of the qwen3 backward (this kernel and one gather-reduce that needs
                // about 0.35 ms) took 2.6 ms on an H200.
                for (; r + 8 <= rows; r += 8)
                {
                    TElement a0 = a[aStart[r] + c],
                        a1 = a[aStart[r + 1] + c],
                        a2 = a[aStart[r + 2] + c],
                        a3 = a[aStart[r + 3] + c],
                        a4 = a[aStart[r + 4] + c],
                        a5 = a[aStart[r + 5] + c],
                        a6 = a[aStart[r + 6] + c],
                        a7 = a[aStart[r + 7] + c];
                    TElement b0 = b[bStart[r] + c],
                        b1 = b[bStart[r + 1] + c],
                        b2 = b[bStart[r + 2] + c],
                        b3 = b[bStart[r + 3] + c],
                        b4 = b[bStart[r + 4] + c],
                        b5 = b[bStart[r + 5] + c],
                        b6 = b[bStart[r + 6] + c],
                        b7 = b[bStart[r + 7] + c];
                    int at = (r * Pitch) + t;
                    sa[at] = row.Widen(a0);
                    sa[at + Pitch] = row.Widen(a1);
                    sa[at + (2 * Pitch)] = row.Widen(a2);
                    sa[at + (3 * Pitch)] = row.Widen(a3);
                    sa[at + (4 * Pitch)] = row.Widen(a4);
                    sa[at + (5 * Pitch)] = row.Widen(a5);
                    sa[at + (6 * Pitch)] = row.Widen(a6);
                    sa[at + (7 * Pitch)] = row.Widen(a7);
                    sb[at] = row.Widen(b0);
                    sb[at + Pitch] = row.Widen(b1);
                    sb[at + (2 * Pitch)] = row.Widen(b2);
                    sb[at + (3 * Pitch)] = row.Widen(b3);
                    sb[at + (4 * Pitch)] = row.Widen(b4);
                    sb[at + (5 * Pitch)] = row.Widen(b5);
                    sb[at + (6 * Pitch)] = row.Widen(b6);
                    sb[at + (7 * Pitch)] = row.Widen(b7);
                }
                for (; r < rows; r++)
                {
                    sa[(r * Pitch) + t] = row.Widen(a[aStart[r] + c]);
                    sb[(r * Pitch) + t] = row.Widen(b[bStart[r] + c]);
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
