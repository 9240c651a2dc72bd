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
    /// Thread i is the value pair j of token t (D even): the ordered float32 sums
    /// <c>((init + rows[p0]·s[p0]) + rows[p1]·s[p1]) + …</c> of both values, each product rounded before its add,
    /// rounded once to bfloat16. Four slots' words are loaded before their adds, as in the float32 kernel.
    /// </summary>
    public static void GatherReduce2<TFloat>(Index1D i, ArrayView<uint> rows, ArrayView<int> positions, int k, ArrayView<float> scale, int hasScale,
        ArrayView<uint> initial, int hasInitial, int pairs, ArrayView<uint> destination, int destinationOffset)
        where TFloat : struct, IStrictFloat
    {
        TFloat f = default;
        int t = i / pairs, j = i - t * pairs;
        uint init = hasInitial != 0 ? initial[i] : 0u;
        float low = Low(init), high = High(init);
        for (int slot = 0; slot < k; slot += 4)
        {
            int p0 = positions[t * k + slot];
            int p1 = slot + 1 < k ? positions[t * k + slot + 1] : -1;
            int p2 = slot + 2 < k ? positions[t * k + slot + 2] : -1;
            int p3 = slot + 3 < k ? positions[t * k + slot + 3] : -1;
            uint v0 = p0 >= 0 ? rows[(long)p0 * pairs + j] : 0u;
            uint v1 = p1 >= 0 ? rows[(long)p1 * pairs + j] : 0u;
            uint v2 = p2 >= 0 ? rows[(long)p2 * pairs + j] : 0u;
            uint v3 = p3 >= 0 ? rows[(long)p3 * pairs + j] : 0u;
            if (p0 >= 0) AddPair(f, v0, hasScale != 0 ? scale[p0] : 1f, hasScale, ref low, ref high);
            if (p1 >= 0) AddPair(f, v1, hasScale != 0 ? scale[p1] : 1f, hasScale, ref low, ref high);
            if (p2 >= 0) AddPair(f, v2, hasScale != 0 ? scale[p2] : 1f, hasScale, ref low, ref high);
            if (p3 >= 0) AddPair(f, v3, hasScale != 0 ? scale[p3] : 1f, hasScale, ref low, ref high);
        }
        destination[(long)(destinationOffset + t) * pairs + j] = Round(low) | (Round(high) << 16);
    }

    /// <summary>Thread i (element j of token t): <see cref="GatherReduce2{TFloat}"/> one value at a time, for any D.</summary>
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

    private static void AddPair<TFloat>(TFloat f, uint pair, float s, int hasScale, ref float low, ref float high)
        where TFloat : struct, IStrictFloat
    {
        float a = Low(pair), b = High(pair);
        low = f.Add(low, hasScale != 0 ? f.Mul(a, s) : a);
        high = f.Add(high, hasScale != 0 ? f.Mul(b, s) : b);
    }
}
