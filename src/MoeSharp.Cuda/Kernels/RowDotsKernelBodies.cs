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
        // The b rows widened to float64 once, where they are staged: a group's results share their b rows (K results
        // a token at the combine), so each is loaded, stored and converted once a group instead of once a result.
        ArrayView<double> sb = SharedMemory.Allocate<double>(Tile * Pitch);
        ArrayView<long> aStart = SharedMemory.Allocate<long>(Tile);
        ArrayView<long> bStart = SharedMemory.Allocate<long>(Tile);
        TRow row = default;
        int t = Group.IdxX,
            n = Group.DimX,
            first = Grid.IdxX * n,
            own = first + t;
        int rows = m - first < n ? m - first : n;
        int firstB = first / perB,
            bRows = ((first + rows - 1) / perB) - firstB + 1,
            ownB = (own / perB) - firstB;
        if (own < m)
            aStart[t] = (long)aRow[own] * d;
        if (t < bRows)
            bStart[t] = (long)(bRowOffset + firstB + t) * d;
        Group.Barrier();
        double sum = 0;
        for (int column = 0; column < d; column += n)
        {
            int width = d - column < n ? d - column : n;
            if (t < width)
            {
                int c = column + t;
                // All of a step's loads are issued before any store to shared memory. ILGPU's loads are generic (they
                // could address shared memory), so loaded and stored one row at a time each load waited for the store
                // before it, and the combine phase of the qwen3 backward (this kernel and one gather-reduce that needs
                // about 0.35 ms) took 2.6 ms on an H200.
                if (rows == n && n % 8 == 0 && bRows <= 16)
                {
                    // A whole group of 8, 16, 24 or 32 rows and at most sixteen b rows (K ≥ 2 at the combine).
                    Eight<TElement> a0 = Eight<TElement>.Load(a, aStart, 0, c),
                        a1 = n > 8 ? Eight<TElement>.Load(a, aStart, 8, c) : default,
                        a2 = n > 16 ? Eight<TElement>.Load(a, aStart, 16, c) : default,
                        a3 = n > 24 ? Eight<TElement>.Load(a, aStart, 24, c) : default,
                        b0 = Eight<TElement>.LoadFirst(b, bStart, 0, bRows < 8 ? bRows : 8, c),
                        b1 = bRows > 8 ? Eight<TElement>.LoadFirst(b, bStart, 8, bRows - 8, c) : default;
                    a0.Store<TRow>(sa, t);
                    if (n > 8)
                        a1.Store<TRow>(sa, t + (8 * Pitch));
                    if (n > 16)
                        a2.Store<TRow>(sa, t + (16 * Pitch));
                    if (n > 24)
                        a3.Store<TRow>(sa, t + (24 * Pitch));
                    b0.StoreWide<TRow>(sb, t, bRows < 8 ? bRows : 8);
                    if (bRows > 8)
                        b1.StoreWide<TRow>(sb, t + (8 * Pitch), bRows - 8);
                }
                else
                {
                    int r = 0;
                    for (; r + 16 <= rows; r += 16)
                    {
                        Eight<TElement> a0 = Eight<TElement>.Load(a, aStart, r, c),
                            a1 = Eight<TElement>.Load(a, aStart, r + 8, c);
                        a0.Store<TRow>(sa, (r * Pitch) + t);
                        a1.Store<TRow>(sa, ((r + 8) * Pitch) + t);
                    }
                    for (; r < rows; r++)
                        sa[(r * Pitch) + t] = row.Widen(a[aStart[r] + c]);
                    for (r = 0; r < bRows; r += 8)
                    {
                        int count = bRows - r < 8 ? bRows - r : 8;
                        Eight<TElement>.LoadFirst(b, bStart, r, count, c).StoreWide<TRow>(sb, (r * Pitch) + t, count);
                    }
                }
            }
            Group.Barrier();
            if (own < m)
            {
                for (int c = 0; c < width; c++)
                    sum += sa[(t * Pitch) + c] * sb[(ownB * Pitch) + c];
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

        /// <summary>Element c of the <paramref name="count"/> (1 to 8) rows starting at <c>start[r]</c> …; the rest
        /// left zero.</summary>
        public static Eight<TElement> LoadFirst(
            ArrayView<TElement> values,
            ArrayView<long> start,
            int r,
            int count,
            int c
        )
        {
            Eight<TElement> e = default;
            e._v0 = values[start[r] + c];
            if (count > 1)
                e._v1 = values[start[r + 1] + c];
            if (count > 2)
                e._v2 = values[start[r + 2] + c];
            if (count > 3)
                e._v3 = values[start[r + 3] + c];
            if (count > 4)
                e._v4 = values[start[r + 4] + c];
            if (count > 5)
                e._v5 = values[start[r + 5] + c];
            if (count > 6)
                e._v6 = values[start[r + 6] + c];
            if (count > 7)
                e._v7 = values[start[r + 7] + c];
            return e;
        }

        /// <summary>The first <paramref name="count"/> values widened to float64, at <paramref name="at"/> and the
        /// next rows of the tile.</summary>
        public readonly void StoreWide<TRow>(ArrayView<double> tile, int at, int count)
            where TRow : struct, IDeviceRow<TElement>
        {
            TRow row = default;
            tile[at] = row.Widen(_v0);
            if (count > 1)
                tile[at + Pitch] = row.Widen(_v1);
            if (count > 2)
                tile[at + (2 * Pitch)] = row.Widen(_v2);
            if (count > 3)
                tile[at + (3 * Pitch)] = row.Widen(_v3);
            if (count > 4)
                tile[at + (4 * Pitch)] = row.Widen(_v4);
            if (count > 5)
                tile[at + (5 * Pitch)] = row.Widen(_v5);
            if (count > 6)
                tile[at + (6 * Pitch)] = row.Widen(_v6);
            if (count > 7)
                tile[at + (7 * Pitch)] = row.Widen(_v7);
        }

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
