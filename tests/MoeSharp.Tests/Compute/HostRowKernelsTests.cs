using System.Numerics;
using System.Runtime.CompilerServices;
using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Compute.Rows;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// The row kernels written once over the row element give, for every row type, the bits of their scalar definitions
/// (widen, float32 product and ordered float32 sum, one narrowing; copies move bits), for row lengths around the block
/// width (vector body and scalar tail), missing rows and positions, optional scales and initial rows; and a row type
/// the kernels have never seen (<see cref="Tf32Row"/>) plugs in as one struct.
/// </summary>
public class HostRowKernelsTests
{
    private static readonly float[] Specials =
    [
        float.NaN,
        float.PositiveInfinity,
        -0f,
        0f,
        float.Epsilon,
        float.MaxValue,
    ];

    /// <summary>
    /// A float32 value: mostly small, also any bit pattern (NaN payloads, subnormals), rounding ties, specials.
    /// </summary>
    private static float AnyFloat(Random random) =>
        random.Next(7) switch
        {
            < 4 => (float)(random.NextDouble() * 8 - 4),
            4 => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)),
            5 => BitConverter.UInt32BitsToSingle(0x3F80_0000u | (uint)random.Next(0x10000)),
            _ => Specials[random.Next(Specials.Length)],
        };

    /// <summary>One generated case: a row length around the block width and the seed of everything else.</summary>
    private static readonly Gen<(int D, int Seed)> Cases = Gen.Select(
        Gen.Int[1, 3 * Vector<float>.Count * 2 + 3],
        Gen.Int
    );

    private static readonly HostMoeKernels Kernels = new();

    [Fact]
    public void Float32_RowKernels_AreTheScalarDefinitions() =>
        Cases.Sample(c => CheckAll<float, Float32Row>(c.D, c.Seed, v => v, v => v, Kernels));

    [Fact]
    public void BFloat16_RowKernels_AreTheScalarDefinitions() =>
        Cases.Sample(c =>
            CheckAll<BFloat16, BFloat16Row>(c.D, c.Seed, v => v.ToSingle(), BFloat16.FromSingle, Kernels)
        );

    [Fact]
    public void ANewRowType_PlugsIn_AsOneStruct() =>
        Cases.Sample(c =>
            CheckAll<float, Tf32Row>(c.D, c.Seed, v => v, Tf32Row.Round, HostRowKernels<float, Tf32Row>.Instance)
        );

    [Fact]
    public void StreamedOutputs_AreTheScalarDefinitions()
    {
        // Outputs of at least 32 MiB take the non-temporal path (float32 gathers and scatters, bfloat16 unscaled
        // scatters); an odd D misaligns rows, so each row has a prologue. Tokens × 4 slots fill the scatter's output.
        const int d = 1027;
        int floatRows = (32 << 20) / (4 * d) + 8,
            halfRows = (32 << 20) / (2 * d) + 8;
        Check<float, Float32Row>(d, seed: 1, floatRows, v => v, v => v, Kernels, bigTokens: floatRows / 4);
        Check<BFloat16, BFloat16Row>(
            d,
            seed: 2,
            halfRows,
            v => v.ToSingle(),
            BFloat16.FromSingle,
            Kernels,
            bigTokens: halfRows / 4
        );
    }

    private static void CheckAll<T, TOps>(int d, int seed, Func<T, float> widen, Func<float, T> narrow, object kernels)
        where T : unmanaged
        where TOps : struct, IRowElement<T> =>
        Check<T, TOps>(d, seed, rows: 1 + (seed & 15), widen, narrow, kernels, bigTokens: null);

    /// <summary>
    /// Runs gather (plain, scaled), token scatter, gather-reduce and row dots and compares every output bit; with
    /// <paramref name="bigTokens"/>, only the gather and a scatter of that many tokens with 4 slots each.
    /// </summary>
    private static void Check<T, TOps>(
        int d,
        int seed,
        int rows,
        Func<T, float> widen,
        Func<float, T> narrow,
        object kernels,
        int? bigTokens
    )
        where T : unmanaged
        where TOps : struct, IRowElement<T>
    {
        var random = new Random(seed);
        T Value() => narrow(AnyFloat(random));
        T[] RowsOf(int count) => Enumerable.Range(0, count * d).Select(_ => Value()).ToArray();
        float[] Scales(int count) => Enumerable.Range(0, count).Select(_ => AnyFloat(random)).ToArray();
        uint FloatBits(float v) => BitConverter.SingleToUInt32Bits(v);
        // Where two NaNs meet in one operation, x86 returns the first operand's, and the JIT may order a commutative
        // vector operation either way: then any NaN is the right answer (one NaN operand always keeps its payload).
        void Same(T expected, T actual, string what, bool nansMeet = false)
        {
            if (!SameBits(expected, actual) && !(nansMeet && IsNaN(expected) && IsNaN(actual)))
            {
                Assert.Fail(
                    $"{what}, D {d}, seed {seed}: "
                        + $"expected {FloatBits(widen(expected)):X8}, got {FloatBits(widen(actual)):X8}"
                );
            }
        }
        bool IsNaN(T v) => float.IsNaN(widen(v));
        static bool SameBits(T a, T b) => Bits(a) == Bits(b);

        // Gather: row i of the output is source row rowOf[i] + offset (or zeros), times scale[i] when scaled.
        int sourceRows = 1 + random.Next(6),
            offset = random.Next(3);
        T[] source = RowsOf(sourceRows + offset);
        int[] rowOf = Enumerable.Range(0, rows).Select(_ => random.Next(-1, sourceRows)).ToArray();
        float[] scale = Scales(rows);
        foreach (bool scaled in new[] { false, true })
        {
            var destination = new T[rows * d];
            Gather(
                kernels,
                Matrix(source, sourceRows + offset, d),
                offset,
                Tensor.FromArray(rowOf, rows),
                scaled ? Tensor.FromArray(scale, rows) : null,
                Matrix(destination, rows, d)
            );
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < d; j++)
                {
                    T expected =
                        rowOf[i] < 0 ? default
                        : scaled ? narrow(widen(source[(rowOf[i] + offset) * d + j]) * scale[i])
                        : source[(rowOf[i] + offset) * d + j];
                    bool nansMeet =
                        scaled && rowOf[i] >= 0 && float.IsNaN(scale[i]) && IsNaN(source[(rowOf[i] + offset) * d + j]);
                    Same(expected, destination[i * d + j], $"gather (scaled {scaled}) row {i} value {j}", nansMeet);
                }
            }
        }

        // Token scatter: each (token, slot) entry's row gets the token's row; rows no entry lands in are zeros.
        int tokens = bigTokens ?? 1 + random.Next(5),
            k = bigTokens is null ? 1 + random.Next(4) : 4;
        int outRows = tokens * k + random.Next(3);
        int[] rowOfEntry = Enumerable.Range(0, outRows).OrderBy(_ => random.Next()).Take(tokens * k).ToArray();
        var rowToken = Enumerable.Repeat(-1, outRows).ToArray();
        for (int e = 0; e < tokens * k; e++)
            rowToken[rowOfEntry[e]] = e / k;
        T[] tokenRows = RowsOf(tokens + offset);
        float[] rowScale = Scales(outRows);
        foreach (bool scaled in new[] { false, true })
        {
            var destination = RowsOf(outRows);
            Scatter(
                kernels,
                Matrix(tokenRows, tokens + offset, d),
                offset,
                Tensor.FromArray(rowToken, outRows),
                Tensor.FromArray(rowOfEntry, tokens * k),
                k,
                scaled ? Tensor.FromArray(rowScale, outRows) : null,
                Matrix(destination, outRows, d)
            );
            for (int r = 0; r < outRows; r++)
            {
                for (int j = 0; j < d; j++)
                {
                    int t = rowToken[r];
                    T value = t < 0 ? default : tokenRows[(t + offset) * d + j];
                    T expected =
                        t < 0 ? default
                        : scaled ? narrow(widen(value) * rowScale[r])
                        : value;
                    bool nansMeet = scaled && t >= 0 && float.IsNaN(rowScale[r]) && IsNaN(value);
                    Same(expected, destination[r * d + j], $"scatter (scaled {scaled}) row {r} value {j}", nansMeet);
                }
            }
        }

        if (bigTokens is not null)
            return;

        // Gather-reduce: ((initial + rows[p0]·s[p0]) + rows[p1]·s[p1]) + … over ascending positions, rounded once.
        int n = 1 + random.Next(8),
            destinationOffset = random.Next(3);
        T[] routed = RowsOf(n);
        float[] routedScale = Scales(n);
        int[] positions = Enumerable.Range(0, tokens * k).Select(_ => random.Next(-1, n)).ToArray();
        T[] initial = RowsOf(tokens);
        foreach (var (scaled, initialized) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            T[] sums = RowsOf(tokens + destinationOffset);
            T[] before = (T[])sums.Clone();
            Reduce(
                kernels,
                Matrix(routed, n, d),
                Matrix(positions, tokens, k),
                scaled ? Tensor.FromArray(routedScale, n) : null,
                initialized ? Matrix(initial, tokens, d) : null,
                Matrix(sums, tokens + destinationOffset, d),
                destinationOffset
            );
            for (int i = 0; i < destinationOffset * d; i++)
                Same(before[i], sums[i], "rows before the offset");
            for (int t = 0; t < tokens; t++)
            {
                for (int j = 0; j < d; j++)
                {
                    float acc = initialized ? widen(initial[t * d + j]) : 0f;
                    bool nansMeet = false;
                    for (int slot = 0; slot < k; slot++)
                    {
                        int p = positions[t * k + slot];
                        if (p < 0)
                            continue;
                        float v = widen(routed[p * d + j]);
                        nansMeet |= scaled && float.IsNaN(v) && float.IsNaN(routedScale[p]);
                        float term = scaled ? v * routedScale[p] : v;
                        // A NaN made by inf − inf meeting a NaN term counts too.
                        nansMeet |= float.IsNaN(acc) && float.IsNaN(term);
                        acc += term;
                    }
                    Same(
                        narrow(acc),
                        sums[(destinationOffset + t) * d + j],
                        $"reduce ({scaled}, {initialized}) token {t} value {j}",
                        nansMeet
                    );
                }
            }
        }

        // Row dots: Σ_j a[aRow[i], j] · b[offset + i / perB, j] in float64, rounded once.
        int perB = 1 + random.Next(3),
            m = perB * (1 + random.Next(4));
        int[] aRow = Enumerable.Range(0, m).Select(_ => random.Next(n)).ToArray();
        T[] b = RowsOf(m / perB + offset);
        var dots = new float[m + 1];
        Dots(
            kernels,
            Matrix(routed, n, d),
            Tensor.FromArray(aRow, m),
            Matrix(b, m / perB + offset, d),
            offset,
            perB,
            Tensor.FromArray(dots, m + 1),
            1
        );
        for (int i = 0; i < m; i++)
        {
            double sum = 0;
            bool nansMeet = false;
            for (int j = 0; j < d; j++)
            {
                float x = widen(routed[aRow[i] * d + j]),
                    y = widen(b[(offset + i / perB) * d + j]);
                double product = (double)x * y;
                nansMeet |= (float.IsNaN(x) && float.IsNaN(y)) || (double.IsNaN(sum) && double.IsNaN(product));
                sum += product;
            }
            if (!(nansMeet && float.IsNaN(dots[1 + i])))
                Assert.Equal(FloatBits((float)sum), FloatBits(dots[1 + i]));
        }
    }

    private static Tensor Matrix<T>(T[] data, int rows, int d)
        where T : unmanaged => Tensor.FromArray(data, rows, d);

    /// <summary>The raw bits of a 2- or 4-byte value.</summary>
    private static uint Bits<T>(T value)
        where T : unmanaged =>
        Unsafe.SizeOf<T>() == 2 ? Unsafe.As<T, ushort>(ref value) : Unsafe.As<T, uint>(ref value);

    // The public backend for float32 and bfloat16 (so its dtype switch is covered); the generic class for a new
    // row type.
    private static void Gather(
        object kernels,
        Tensor source,
        int offset,
        Tensor rowOf,
        Tensor? scale,
        Tensor destination
    )
    {
        if (kernels is IMoeKernels moe)
            moe.Rows.GatherRows(source, offset, rowOf, scale, destination);
        else
            ((HostRowKernels)kernels).GatherRows(source, offset, rowOf, scale, destination);
    }

    private static void Scatter(
        object kernels,
        Tensor source,
        int offset,
        Tensor rowToken,
        Tensor entryRow,
        int k,
        Tensor? scale,
        Tensor destination
    )
    {
        if (kernels is IMoeKernels moe)
            moe.Rows.ScatterTokenRows(source, offset, new TokenScatter(rowToken, entryRow, k, scale), destination);
        else
            ((HostRowKernels)kernels).ScatterTokenRows(source, offset, rowToken, entryRow, k, scale, destination);
    }

    private static void Reduce(
        object kernels,
        Tensor rows,
        Tensor positions,
        Tensor? scale,
        Tensor? initial,
        Tensor destination,
        int offset
    )
    {
        if (kernels is IMoeKernels moe)
            moe.Rows.GatherReduce(new TokenGather(rows, positions, scale, initial), destination, offset);
        else
            ((HostRowKernels)kernels).GatherReduce(rows, positions, scale, initial, destination, offset);
    }

    private static void Dots(
        object kernels,
        Tensor a,
        Tensor aRow,
        Tensor b,
        int offset,
        int perB,
        Tensor result,
        int resultOffset
    )
    {
        if (kernels is IMoeKernels moe)
            moe.Rows.RowDots(new RowPairs(a, aRow, b, offset, perB), result, resultOffset);
        else
            ((HostRowKernels)kernels).RowDots(a, aRow, b, offset, perB, result, resultOffset);
    }

    /// <summary>
    /// A row type the kernels were not written for: TF32 values (10 explicit mantissa bits) kept in float32 storage,
    /// rounded to nearest even; a NaN stays the same NaN. Block forms apply the scalar rule lane by lane.
    /// </summary>
    private readonly struct Tf32Row : IRowElement<float>
    {
        public static bool StreamsLargeOutputs => true;

        public static float Round(float value)
        {
            uint bits = BitConverter.SingleToUInt32Bits(value);
            if (float.IsNaN(value))
                return value;
            return BitConverter.UInt32BitsToSingle((bits + 0xFFFu + ((bits >> 13) & 1u)) & 0xFFFF_E000u);
        }

        public static float Widen(float value) => value;

        public static float Narrow(float value) => Round(value);

        public static (Vector<float> Low, Vector<float> High) WidenBlock(ref readonly float source)
        {
            ref float at = ref Unsafe.AsRef(in source);
            return (Vector.LoadUnsafe(ref at), Vector.LoadUnsafe(ref at, (nuint)Vector<float>.Count));
        }

        public static void NarrowBlock<TStore>(Vector<float> low, Vector<float> high, ref float destination)
            where TStore : struct, IVectorStore
        {
            TStore.Store(RoundVector(low), ref destination);
            TStore.Store(RoundVector(high), ref Unsafe.Add(ref destination, Vector<float>.Count));
        }

        private static Vector<float> RoundVector(Vector<float> values)
        {
            Vector<uint> bits = Vector.AsVectorUInt32(values);
            Vector<uint> rounded =
                (bits + new Vector<uint>(0xFFFu) + ((bits >> 13) & Vector<uint>.One)) & new Vector<uint>(0xFFFF_E000u);
            Vector<uint> magnitude = bits & new Vector<uint>(0x7FFF_FFFFu);
            Vector<uint> nan = Vector.GreaterThan(magnitude, new Vector<uint>(0x7F80_0000u));
            return Vector.AsVectorSingle(Vector.ConditionalSelect(nan, bits, rounded));
        }
    }
}
