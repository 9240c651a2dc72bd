namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Word arithmetic shared by the packed and tiled row kernels: a word's values scaled, or added into float32
/// accumulators, each product rounded before its add (<see cref="IStrictFloat"/>), each result rounded once.
/// </summary>
internal static class RowWords
{
    /// <summary>
    /// Each value of <paramref name="word"/> times <paramref name="s"/> in float32, rounded once to the row
    /// type.
    /// </summary>
    public static uint Scale<TFloat, TRow>(uint word, float s)
        where TFloat : struct, IStrictFloat
        where TRow : struct, IDeviceWord
    {
        TFloat f = default;
        TRow row = default;
        float low = f.Mul(row.Low(word), s);
        float high = row.ValuesPerWord() == 2 ? f.Mul(row.High(word), s) : 0f;
        return row.Pack(low, high);
    }

    /// <summary>Float32 running sums of the values of a 16-byte pack (four words), one per value.</summary>
    public struct PackSums<TFloat, TRow>
        where TFloat : struct, IStrictFloat
        where TRow : struct, IDeviceWord
    {
        private float _a0,
            _a1,
            _b0,
            _b1,
            _c0,
            _c1,
            _d0,
            _d1;

        /// <summary>Sums that start from the pack's values (+0 for a <c>default</c> pack).</summary>
        public PackSums(UInt4 start)
        {
            TRow row = default;
            _a0 = row.Low(start.A);
            _a1 = row.High(start.A);
            _b0 = row.Low(start.B);
            _b1 = row.High(start.B);
            _c0 = row.Low(start.C);
            _c1 = row.High(start.C);
            _d0 = row.Low(start.D);
            _d1 = row.High(start.D);
        }

        /// <summary>Adds the pack's values (times <paramref name="s"/> when scaled), no fused multiply-add.</summary>
        public void Add(UInt4 v, float s, int hasScale)
        {
            TFloat f = default;
            TRow row = default;
            _a0 = f.Add(_a0, Term(row.Low(v.A), s, hasScale));
            _b0 = f.Add(_b0, Term(row.Low(v.B), s, hasScale));
            _c0 = f.Add(_c0, Term(row.Low(v.C), s, hasScale));
            _d0 = f.Add(_d0, Term(row.Low(v.D), s, hasScale));
            if (row.ValuesPerWord() != 2)
                return;
            _a1 = f.Add(_a1, Term(row.High(v.A), s, hasScale));
            _b1 = f.Add(_b1, Term(row.High(v.B), s, hasScale));
            _c1 = f.Add(_c1, Term(row.High(v.C), s, hasScale));
            _d1 = f.Add(_d1, Term(row.High(v.D), s, hasScale));
        }

        /// <summary>The sums rounded to the row type and packed.</summary>
        public readonly UInt4 Round()
        {
            TRow row = default;
            return new UInt4(row.Pack(_a0, _a1), row.Pack(_b0, _b1), row.Pack(_c0, _c1), row.Pack(_d0, _d1));
        }

        private static float Term(float v, float s, int hasScale) => hasScale != 0 ? default(TFloat).Mul(v, s) : v;
    }
}
