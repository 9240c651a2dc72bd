using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The bfloat16 forms of the row kernels in <see cref="DispatchKernelBodies"/>: values widen exactly to float32,
/// arithmetic is the same <see cref="IStrictFloat"/> float32 operations, and a result is rounded once back to
/// bfloat16 with <c>BFloat16.FromSingle</c>'s rule (nearest even; a NaN stays a quiet NaN), so they match
/// <c>HostMoeKernels</c> bit for bit. Words hold two values: element 2i in the low half.
/// </summary>
internal static class BFloat16KernelBodies
{
    /// <summary>The float32 value of the bfloat16 in the low half of <paramref name="bits"/>.</summary>
    public static float Low(uint bits) => Interop.IntAsFloat(bits << 16);

    /// <summary>The float32 value of the bfloat16 in the high half of <paramref name="bits"/>.</summary>
    public static float High(uint bits) => Interop.IntAsFloat(bits & 0xFFFF0000u);

    /// <summary><paramref name="value"/> rounded to bfloat16 (its 16 bits in the low half).</summary>
    public static uint Round(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u) return (bits >> 16) | 0x0040u;
        return (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    }

    /// <summary>Two bfloat16 values packed in a word, each multiplied by <paramref name="s"/> in float32 and rounded once.</summary>
    public static uint ScalePair<TFloat>(uint pair, float s) where TFloat : struct, IStrictFloat
    {
        TFloat f = default;
        return Round(f.Mul(Low(pair), s)) | (Round(f.Mul(High(pair), s)) << 16);
    }

    /// <summary>
    /// Thread i is the eight-value pack j of destination row r (D divisible by 8): the source row's pack, scaled
    /// and rounded when <paramref name="hasScale"/> is set, or zeros where <c>rowOf[r] &lt; 0</c>.
    /// </summary>
    public static void GatherRows8<TFloat>(Index1D i, ArrayView<UInt4> source, int sourceRowOffset, ArrayView<int> rowOf, ArrayView<float> scale,
        int hasScale, int packs, ArrayView<UInt4> destination)
        where TFloat : struct, IStrictFloat
    {
        int r = i / packs, j = i - r * packs;
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
            v = new UInt4(ScalePair<TFloat>(v.A, s), ScalePair<TFloat>(v.B, s), ScalePair<TFloat>(v.C, s), ScalePair<TFloat>(v.D, s));
        }
        destination[i] = v;
    }

    /// <summary>Words (value pairs) a warp's tile spans in the tiled kernels: 32 threads × 4 words, 256 values.</summary>
    public const int TileWords = 128;

    /// <summary>
    /// <see cref="GatherRows8{TFloat}"/> for rows of a multiple of 256 values, laid out for coalescing: thread i handles
    /// the words <c>tile·128 + m·32 + lane</c> (m = 0..3) of its row, so each of a warp's four loads and stores covers
    /// 128 contiguous bytes (a 16-byte struct per thread would split into four strided 4-byte accesses).
    /// </summary>
    public static void GatherRowsTiled<TFloat>(Index1D i, ArrayView<uint> source, int sourceRowOffset, ArrayView<int> rowOf, ArrayView<float> scale,
        int hasScale, int words, ArrayView<uint> destination)
        where TFloat : struct, IStrictFloat
    {
        int perRow = words / 4, index = i;
        int r = index / perRow, within = index - r * perRow;
        int first = within / 32 * TileWords + within % 32;
        long to = (long)r * words + first;
        int from = rowOf[r];
        if (from < 0)
        {
            for (int m = 0; m < 4; m++) destination[to + m * 32] = 0u;
            return;
        }
        long at = (long)(from + sourceRowOffset) * words + first;
        uint w0 = source[at], w1 = source[at + 32], w2 = source[at + 64], w3 = source[at + 96];
        if (hasScale != 0)
        {
            float s = scale[r];
            w0 = ScalePair<TFloat>(w0, s);
            w1 = ScalePair<TFloat>(w1, s);
            w2 = ScalePair<TFloat>(w2, s);
            w3 = ScalePair<TFloat>(w3, s);
        }
        destination[to] = w0;
        destination[to + 32] = w1;
        destination[to + 64] = w2;
        destination[to + 96] = w3;
    }

    /// <summary>Thread i (element j of destination row r): <see cref="GatherRows8{TFloat}"/> one value at a time, for any D.</summary>
    public static void GatherRows1<TFloat>(Index1D i, ArrayView<ushort> source, int sourceRowOffset, ArrayView<int> rowOf, ArrayView<float> scale,
        int hasScale, int d, ArrayView<ushort> destination)
        where TFloat : struct, IStrictFloat
    {
        int r = i / d, j = i - r * d;
        int from = rowOf[r];
        if (from < 0)
        {
            destination[i] = 0;
            return;
        }
        ushort v = source[(long)(from + sourceRowOffset) * d + j];
        destination[i] = hasScale != 0 ? (ushort)Round(default(TFloat).Mul(Low(v), scale[r])) : v;
    }

    /// <summary>
    /// Thread i is the eight-value pack j of token t (D divisible by 8): for each value, the ordered float32 sum
    /// <c>((init + rows[p0]·s[p0]) + rows[p1]·s[p1]) + …</c> over the token's positions in ascending order, each
    /// product rounded before its add, rounded once to bfloat16. Two slots' packs are loaded before their adds, so
    /// 32 bytes per thread are in flight while the adds stay in slot order.
    /// </summary>
    public static void GatherReduce8<TFloat>(Index1D i, ArrayView<UInt4> rows, ArrayView<int> positions, int k, ArrayView<float> scale, int hasScale,
        ArrayView<UInt4> initial, int hasInitial, int packs, ArrayView<UInt4> destination, int destinationOffset)
        where TFloat : struct, IStrictFloat
    {
        TFloat f = default;
        int t = i / packs, j = i - t * packs;
        UInt4 init = hasInitial != 0 ? initial[i] : default;
        var acc = new Accumulator8(init);
        for (int slot = 0; slot < k; slot += 2)
        {
            int p0 = positions[t * k + slot];
            int p1 = slot + 1 < k ? positions[t * k + slot + 1] : -1;
            UInt4 v0 = p0 >= 0 ? rows[(long)p0 * packs + j] : default;
            UInt4 v1 = p1 >= 0 ? rows[(long)p1 * packs + j] : default;
            if (p0 >= 0) acc.Add(f, v0, hasScale != 0 ? scale[p0] : 1f, hasScale);
            if (p1 >= 0) acc.Add(f, v1, hasScale != 0 ? scale[p1] : 1f, hasScale);
        }
        destination[(long)(destinationOffset + t) * packs + j] = acc.Round();
    }

    /// <summary>
    /// <see cref="GatherReduce8{TFloat}"/> for rows of a multiple of 256 values, in <see cref="GatherRowsTiled{TFloat}"/>'s
    /// coalesced layout: thread i sums the words <c>tile·128 + m·32 + lane</c> (m = 0..3) of its token, each value's terms
    /// in slot order in a float32 accumulator, rounded once.
    /// </summary>
    public static void GatherReduceTiled<TFloat>(Index1D i, ArrayView<uint> rows, ArrayView<int> positions, int k, ArrayView<float> scale, int hasScale,
        ArrayView<uint> initial, int hasInitial, int words, ArrayView<uint> destination, int destinationOffset)
        where TFloat : struct, IStrictFloat
    {
        TFloat f = default;
        int perRow = words / 4, index = i;
        int t = index / perRow, within = index - t * perRow;
        int first = within / 32 * TileWords + within % 32;
        long own = (long)t * words + first;
        var acc = new Accumulator8(hasInitial != 0
            ? new UInt4(initial[own], initial[own + 32], initial[own + 64], initial[own + 96])
            : default);
        for (int slot = 0; slot < k; slot += 2)
        {
            int p0 = positions[t * k + slot];
            int p1 = slot + 1 < k ? positions[t * k + slot + 1] : -1;
            long a0 = (long)p0 * words + first, a1 = (long)p1 * words + first;
            UInt4 v0 = p0 >= 0 ? new UInt4(rows[a0], rows[a0 + 32], rows[a0 + 64], rows[a0 + 96]) : default;
            UInt4 v1 = p1 >= 0 ? new UInt4(rows[a1], rows[a1 + 32], rows[a1 + 64], rows[a1 + 96]) : default;
            if (p0 >= 0) acc.Add(f, v0, hasScale != 0 ? scale[p0] : 1f, hasScale);
            if (p1 >= 0) acc.Add(f, v1, hasScale != 0 ? scale[p1] : 1f, hasScale);
        }
        UInt4 sum = acc.Round();
        long to = (long)(destinationOffset + t) * words + first;
        destination[to] = sum.A;
        destination[to + 32] = sum.B;
        destination[to + 64] = sum.C;
        destination[to + 96] = sum.D;
    }

    /// <summary>Thread i (element j of token t): <see cref="GatherReduce8{TFloat}"/> one value at a time, for any D.</summary>
    public static void GatherReduce1<TFloat>(Index1D i, ArrayView<ushort> rows, ArrayView<int> positions, int k, ArrayView<float> scale, int hasScale,
        ArrayView<ushort> initial, int hasInitial, int d, ArrayView<ushort> destination, int destinationOffset)
        where TFloat : struct, IStrictFloat
    {
        TFloat f = default;
        int t = i / d, j = i - t * d;
        float acc = hasInitial != 0 ? Low(initial[i]) : 0f;
        for (int slot = 0; slot < k; slot++)
        {
            int p = positions[t * k + slot];
            if (p < 0) continue;
            float v = Low(rows[(long)p * d + j]);
            acc = f.Add(acc, hasScale != 0 ? f.Mul(v, scale[p]) : v);
        }
        destination[(long)(destinationOffset + t) * d + j] = (ushort)Round(acc);
    }

    /// <summary>
    /// Thread i: <c>Σ_d a[aRow[i], d] · b[bRowOffset + i / perB, d]</c> over bfloat16 rows, widened, in float64,
    /// ascending d, rounded once (as <see cref="DispatchKernelBodies.RowDots"/>).
    /// </summary>
    public static void RowDots(Index1D i, ArrayView<ushort> a, ArrayView<int> aRow, ArrayView<ushort> b, int bRowOffset, int perB, int d,
        ArrayView<float> result, int resultOffset)
    {
        int index = i;
        long ar = (long)aRow[index] * d, br = (long)(bRowOffset + index / perB) * d;
        double sum = 0;
        for (int j = 0; j < d; j++) sum += (double)Low(a[ar + j]) * Low(b[br + j]);
        result[resultOffset + i] = (float)sum;
    }

    /// <summary>Eight float32 running sums, one per value of a pack.</summary>
    private struct Accumulator8
    {
        private float _a0, _a1, _b0, _b1, _c0, _c1, _d0, _d1;

        public Accumulator8(UInt4 start)
        {
            _a0 = Low(start.A); _a1 = High(start.A);
            _b0 = Low(start.B); _b1 = High(start.B);
            _c0 = Low(start.C); _c1 = High(start.C);
            _d0 = Low(start.D); _d1 = High(start.D);
        }

        /// <summary>Adds the pack's values (times <paramref name="s"/> when scaled), in value order, no fused multiply-add.</summary>
        public void Add<TFloat>(TFloat f, UInt4 v, float s, int hasScale) where TFloat : struct, IStrictFloat
        {
            _a0 = f.Add(_a0, Term(f, Low(v.A), s, hasScale)); _a1 = f.Add(_a1, Term(f, High(v.A), s, hasScale));
            _b0 = f.Add(_b0, Term(f, Low(v.B), s, hasScale)); _b1 = f.Add(_b1, Term(f, High(v.B), s, hasScale));
            _c0 = f.Add(_c0, Term(f, Low(v.C), s, hasScale)); _c1 = f.Add(_c1, Term(f, High(v.C), s, hasScale));
            _d0 = f.Add(_d0, Term(f, Low(v.D), s, hasScale)); _d1 = f.Add(_d1, Term(f, High(v.D), s, hasScale));
        }

        /// <summary>The sums rounded to bfloat16 and packed.</summary>
        public readonly UInt4 Round() => new(
            BFloat16KernelBodies.Round(_a0) | (BFloat16KernelBodies.Round(_a1) << 16),
            BFloat16KernelBodies.Round(_b0) | (BFloat16KernelBodies.Round(_b1) << 16),
            BFloat16KernelBodies.Round(_c0) | (BFloat16KernelBodies.Round(_c1) << 16),
            BFloat16KernelBodies.Round(_d0) | (BFloat16KernelBodies.Round(_d1) << 16));

        private static float Term<TFloat>(TFloat f, float v, float s, int hasScale) where TFloat : struct, IStrictFloat
            => hasScale != 0 ? f.Mul(v, s) : v;
    }
}
