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
                // Sixteen rows' loads are issued before any store to shared memory. ILGPU's loads are generic (they
                // could address shared memory), so loaded and stored one row at a time each load waited for the store
                // before it, and the combine phase of the qwen3 backward (this kernel and one gather-reduce that needs
                // about 0.35 ms) took 2.6 ms on an H200.
                for (; r + 16 <= rows; r += 16)
                {
                    Eight<TElement> a0 = Eight<TElement>.Load(a, aStart, r, c),
                        a1 = Eight<TElement>.Load(a, aStart, r + 8, c),
                        b0 = Eight<TElement>.Load(b, bStart, r, c),
                        b1 = Eight<TElement>.Load(b, bStart, r + 8, c);
                    int at = (r * Pitch) + t;
                    a0.Store<TRow>(sa, at);
                    a1.Store<TRow>(sa, at + (8 * Pitch));
                    b0.Store<TRow>(sb, at);
                    b1.Store<TRow>(sb, at + (8 * Pitch));
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

    /// <summary>Column c of eight consecutive rows of a group, held in registers between the loads and the
    /// stores.</summary>
    private struct Eight<TElement>
        where TElement : unmanaged
    {
        private TElement _v0,
            _v1,
            _v2,
            _v3,
            _v4,
            _v5,
            _v6,
            _v7;

        /// <summary>Element c of the rows starting at <c>start[r]</c> … <c>start[r + 7]</c>.</summary>
        public static Eight<TElement> Load(ArrayView<TElement> values, ArrayView<long> start, int r, int c) =>
            new()
            {
                _v0 = values[start[r] + c],
                _v1 = values[start[r + 1] + c],
                _v2 = values[start[r + 2] + c],
                _v3 = values[start[r + 3] + c],
                _v4 = values[start[r + 4] + c],
                _v5 = values[start[r + 5] + c],
                _v6 = values[start[r + 6] + c],
                _v7 = values[start[r + 7] + c],
            };

        /// <summary>The eight values widened, at <paramref name="at"/> and the next seven rows of the tile.</summary>
        public readonly void Store<TRow>(ArrayView<float> tile, int at)
            where TRow : struct, IDeviceRow<TElement>
        {
            TRow row = default;
            tile[at] = row.Widen(_v0);
            tile[at + Pitch] = row.Widen(_v1);
            tile[at + (2 * Pitch)] = row.Widen(_v2);
            tile[at + (3 * Pitch)] = row.Widen(_v3);
            tile[at + (4 * Pitch)] = row.Widen(_v4);
            tile[at + (5 * Pitch)] = row.Widen(_v5);
            tile[at + (6 * Pitch)] = row.Widen(_v6);
            tile[at + (7 * Pitch)] = row.Widen(_v7);
        }
    }
}
