using MoeSharp.Quantization;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Quantization;

/// <summary>
/// The row quantiser: the power-of-two scale rule against a float64 search, every code against the scalar conversion
/// of <c>x / scale</c> computed in float64, the error bound, non-finite and empty blocks, partial blocks, bfloat16
/// input, row independence (what makes FP8 dispatch bitwise invariant), and the wire size at D = 7168.
/// </summary>
public class Fp8RowQuantizerTests
{
    /// <summary>The smallest e ≥ -126 with amax ≤ 448 · 2^e, found by a float64 search.</summary>
    private static float ReferenceScale(float amax)
    {
        if (!float.IsFinite(amax) || amax == 0)
            return 1f;
        int e = -126;
        while ((double)Math.Abs(amax) > 448.0 * Math.Pow(2, e))
            e++;
        return (float)Math.Pow(2, e);
    }

    [Fact]
    public void WireSizeAtD7168IsJustOverHalfOfBFloat16()
    {
        Assert.Equal(56, Fp8RowQuantizer.ScalesPerRow(7168));
        Assert.Equal(7168 + 56 * 4, Fp8RowQuantizer.WireBytesPerRow(7168));
        Assert.Equal(7392, Fp8RowQuantizer.WireBytesPerRow(7168));
        double ratio = Fp8RowQuantizer.WireBytesPerRow(7168) / (7168.0 * 2);
        Assert.Equal(0.515625, ratio);
        Assert.True(ratio <= 0.53);
        Assert.Equal(3L * 7392, new Fp8RowBlock(3, 7168).WireBytes);
        Assert.Equal(2, Fp8RowQuantizer.ScalesPerRow(129));
        Assert.Equal(1, Fp8RowQuantizer.ScalesPerRow(1));
    }

    [Theory]
    [InlineData(448f, 1f)]
    [InlineData(448.00003f, 2f)]
    [InlineData(224f, 0.5f)]
    [InlineData(224.00002f, 1f)]
    [InlineData(1f, 0.00390625f)] // 1 ≤ 448 · 2^-8, 1 > 448 · 2^-9
    [InlineData(0f, 1f)]
    [InlineData(float.PositiveInfinity, 1f)]
    [InlineData(float.NaN, 1f)]
    [InlineData(float.MaxValue, 1.329228e36f)] // 2^120
    public void BlockScaleFollowsTheRule(float amax, float expected) =>
        Assert.Equal(expected, Fp8RowQuantizer.BlockScale(amax));

    [Fact]
    public void BlockScaleMatchesAFloat64SearchEverywhere()
    {
        var random = new Random(7);
        var values = new List<float> { float.Epsilon, 1e-40f, 1.1754944e-38f, 448f * MathF.Pow(2, -126), 5.2e-36f };
        for (int i = 0; i < 200_000; i++)
        {
            values.Add(BitConverter.UInt32BitsToSingle((uint)random.Next(1, 0x7F80_0000)));
        }
        for (int e = -140; e < 120; e++)
        {
            float edge = (float)(448.0 * Math.Pow(2, e));
            if (edge == 0 || !float.IsFinite(edge))
                continue;
            values.Add(edge);
            values.Add(MathF.BitIncrement(edge));
            values.Add(MathF.BitDecrement(edge));
        }
        foreach (float amax in values)
        {
            float scale = Fp8RowQuantizer.BlockScale(amax);
            Assert.Equal(ReferenceScale(amax), scale);
            Assert.Equal(0u, BitConverter.SingleToUInt32Bits(scale) & 0x7F_FFFFu); // a normal power of two
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 127)]
    [InlineData(2, 128)]
    [InlineData(4, 129)]
    [InlineData(2, 200)]
    [InlineData(3, 7168)]
    public void EveryCodeIsTheRoundedQuotientAndTheErrorIsBounded(int rows, int dim)
    {
        float[] x = RandomRows(rows, dim, seed: rows * 1000 + dim);
        var codes = new Float8E4M3[x.Length];
        var scales = new float[rows * Fp8RowQuantizer.ScalesPerRow(dim)];
        Fp8RowQuantizer.Quantize(x, dim, codes, scales);
        var back = new float[x.Length];
        Fp8RowQuantizer.Dequantize(codes, scales, dim, back);
        int perRow = Fp8RowQuantizer.ScalesPerRow(dim);
        for (int r = 0; r < rows; r++)
        {
            for (int b = 0; b < perRow; b++)
            {
                int start = r * dim + b * 128,
                    end = Math.Min(start + 128, (r + 1) * dim);
                float amax = 0;
                for (int i = start; i < end; i++)
                    amax = Math.Max(amax, Math.Abs(x[i]));
                float scale = scales[r * perRow + b];
                Assert.Equal(ReferenceScale(amax), scale);
                for (int i = start; i < end; i++)
                {
                    float quotient = (float)((double)x[i] / scale); // exact: the scale is a power of two
                    Assert.Equal(Float8E4M3.FromSingle(quotient).Bits, codes[i].Bits);
                    Assert.Equal((double)codes[i].ToSingle() * scale, (double)back[i]);
                    double error = Math.Abs((double)back[i] - x[i]);
                    // Half a unit in the last place: 2^-4 relative for normals, 2^-10 · scale for subnormals.
                    double bound = Math.Max(Math.Abs(x[i]) / 16.0, scale * Math.Pow(2, -10));
                    Assert.True(error <= bound, $"x={x[i]:R} back={back[i]:R} scale={scale:R}");
                }
            }
        }
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(0.5f)]
    [InlineData(1.1754944e-38f)] // 2^-126: subnormal products
    [InlineData(1.2676506e30f)] // 2^100
    public void DequantisingEveryCodeMultipliesItsExactValue(float scale)
    {
        // 256 codes in two full blocks: the vector path sees every code; 3 more columns take the scalar tail.
        var codes = Enumerable.Range(0, 259).Select(i => Float8E4M3.FromBits((byte)i)).ToArray();
        var back = new float[codes.Length];
        Fp8RowQuantizer.Dequantize(codes, [scale, scale, scale], codes.Length, back);
        for (int i = 0; i < codes.Length; i++)
        {
            float expected = codes[i].ToSingle() * scale;
            Assert.Equal(float.IsNaN(expected), float.IsNaN(back[i]));
            if (!float.IsNaN(expected))
            {
                Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(back[i]));
            }
        }
    }

    [Fact]
    public void NonFiniteElementsBecomeNaNAndDoNotMoveTheScale()
    {
        float[] row = RandomRows(1, 128, seed: 3);
        float[] poisoned = (float[])row.Clone();
        poisoned[5] = float.PositiveInfinity;
        poisoned[6] = float.NegativeInfinity;
        poisoned[7] = float.NaN;
        float[] clean = (float[])row.Clone();
        clean[5] = clean[6] = clean[7] = 0;
        (Float8E4M3[] pc, float[] ps) = Quantize(poisoned, 128);
        (Float8E4M3[] cc, float[] cs) = Quantize(clean, 128);
        Assert.Equal(cs, ps);
        Assert.Equal(0x7F, pc[5].Bits);
        Assert.Equal(0xFF, pc[6].Bits);
        Assert.True(pc[7].IsNaN);
        for (int i = 0; i < 128; i++)
        {
            if (i is < 5 or > 7)
                Assert.Equal(cc[i], pc[i]);
        }
        var back = new float[128];
        Fp8RowQuantizer.Dequantize(pc, ps, 128, back);
        Assert.True(float.IsNaN(back[5]) && float.IsNaN(back[6]) && float.IsNaN(back[7]));
    }

    [Fact]
    public void ZeroAndAllNonFiniteBlocksHaveScaleOneAndKeepSigns()
    {
        float[] x = new float[256];
        x[1] = -0f;
        for (int i = 128; i < 256; i++)
            x[i] = float.NaN;
        (Float8E4M3[] codes, float[] scales) = Quantize(x, 256);
        Assert.Equal(new[] { 1f, 1f }, scales);
        Assert.Equal(0x00, codes[0].Bits);
        Assert.Equal(0x80, codes[1].Bits);
        Assert.All(codes[128..], c => Assert.True(c.IsNaN));
        var back = new float[256];
        Fp8RowQuantizer.Dequantize(codes, scales, 256, back);
        Assert.Equal(0x8000_0000u, BitConverter.SingleToUInt32Bits(back[1]));
    }

    [Fact]
    public void TheLargestMagnitudeIsNeverSaturated()
    {
        // amax/scale lands in (224, 448]: the top element keeps its own rounding, never clamps.
        float[] x = [448f, -447f, 300f, 1e-3f];
        (Float8E4M3[] codes, float[] scales) = Quantize(x, 4);
        Assert.Equal(1f, scales[0]);
        Assert.Equal(
            new byte[] { 0x7E, 0xFE, Float8E4M3.FromSingle(300f).Bits, Float8E4M3.FromSingle(1e-3f).Bits },
            codes.Select(c => c.Bits).ToArray()
        );
    }

    [Fact]
    public void ValuesNearFloatMaxRoundUpToInfinityOnTheWayBack()
    {
        // Documented edge: float.MaxValue / 2^120 = 255.99998 rounds to 256, and 256 · 2^120 = 2^128 overflows.
        (Float8E4M3[] codes, float[] scales) = Quantize([float.MaxValue, 1f], 2);
        var back = new float[2];
        Fp8RowQuantizer.Dequantize(codes, scales, 2, back);
        Assert.Equal(float.PositiveInfinity, back[0]);
    }

    [Fact]
    public void EachRowIsQuantisedOnItsOwn()
    {
        const int rows = 9,
            dim = 300;
        float[] x = RandomRows(rows, dim, seed: 11);
        (Float8E4M3[] all, float[] allScales) = Quantize(x, dim);
        int perRow = Fp8RowQuantizer.ScalesPerRow(dim);
        int[] order = [4, 0, 8, 2, 2, 7, 1]; // any subset, order or repetition: a rank sees rows in any layout
        float[] picked = order.SelectMany(r => x.Skip(r * dim).Take(dim)).ToArray();
        (Float8E4M3[] codes, float[] scales) = Quantize(picked, dim);
        for (int k = 0; k < order.Length; k++)
        {
            Assert.Equal(all.AsSpan(order[k] * dim, dim).ToArray(), codes.AsSpan(k * dim, dim).ToArray());
            Assert.Equal(
                allScales.AsSpan(order[k] * perRow, perRow).ToArray(),
                scales.AsSpan(k * perRow, perRow).ToArray()
            );
        }
    }

    [Fact]
    public void BFloat16InputQuantisesLikeItsExactWidening()
    {
        const int rows = 3,
            dim = 257;
        BFloat16[] x = RandomRows(rows, dim, seed: 5).Select(BFloat16.FromSingle).ToArray();
        float[] wide = x.Select(v => v.ToSingle()).ToArray();
        var codes = new Float8E4M3[x.Length];
        var scales = new float[rows * 3];
        Fp8RowQuantizer.Quantize(x, dim, codes, scales);
        (Float8E4M3[] expected, float[] expectedScales) = Quantize(wide, dim);
        Assert.Equal(expected, codes);
        Assert.Equal(expectedScales, scales);
        var back = new BFloat16[x.Length];
        Fp8RowQuantizer.Dequantize(codes, scales, dim, back);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.Equal(BFloat16.FromSingle(codes[i].ToSingle() * scales[(i / dim) * 3 + (i % dim) / 128]), back[i]);
        }
    }

    [Fact]
    public void TensorOverloadsQuantiseAndDequantise()
    {
        float[] x = RandomRows(2, 130, seed: 1);
        using Tensor t = Tensor.FromArray(x, 2, 130);
        Fp8RowBlock block = Fp8RowQuantizer.Quantize(t);
        Assert.Equal((2, 130), (block.Rows, block.Dim));
        (Float8E4M3[] codes, float[] scales) = Quantize(x, 130);
        Assert.Equal(codes, block.Codes);
        Assert.Equal(scales, block.Scales);
        using Tensor f = Fp8RowQuantizer.Dequantize(block, DType.Float32);
        using Tensor h = Fp8RowQuantizer.Dequantize(block, DType.BFloat16);
        Assert.Equal(new[] { 2, 130 }, f.ShapeArray());
        Assert.Equal(f.AsSpan<float>().ToArray().Select(BFloat16.FromSingle).ToArray(), h.AsSpan<BFloat16>().ToArray());
        using Tensor hx = Tensor.FromArray(x.Select(BFloat16.FromSingle).ToArray(), 2, 130);
        Assert.Equal(2, Fp8RowQuantizer.Quantize(hx).Rows);
    }

    [Fact]
    public void BadShapesAreRefusedWithTheirSizes()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            Fp8RowQuantizer.Quantize(new float[10], 4, new Float8E4M3[10], new float[3])
        );
        Assert.Contains("10", ex.Message);
        Assert.Throws<ArgumentException>(() =>
            Fp8RowQuantizer.Quantize(new float[8], 4, new Float8E4M3[7], new float[2])
        );
        ex = Assert.Throws<ArgumentException>(() =>
            Fp8RowQuantizer.Quantize(new float[8], 4, new Float8E4M3[8], new float[1])
        );
        Assert.Contains("expected 2", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Fp8RowQuantizer.Quantize(new float[8], 0, new Float8E4M3[8], new float[1])
        );
        using Tensor ints = Tensor.FromArray(new int[4], 2, 2);
        Assert.Throws<ArgumentException>(() => Fp8RowQuantizer.Quantize(ints));
        using Tensor flat = Tensor.FromArray(new float[4], 4);
        Assert.Throws<ArgumentException>(() => Fp8RowQuantizer.Quantize(flat));
        Assert.Throws<ArgumentException>(() => Fp8RowQuantizer.Dequantize(new Fp8RowBlock(1, 2), DType.Int64));
    }

    private static (Float8E4M3[] Codes, float[] Scales) Quantize(float[] x, int dim)
    {
        var codes = new Float8E4M3[x.Length];
        var scales = new float[x.Length / dim * Fp8RowQuantizer.ScalesPerRow(dim)];
        Fp8RowQuantizer.Quantize(x, dim, codes, scales);
        return (codes, scales);
    }

    /// <summary>Rows with magnitudes over many binades (so blocks reach subnormal codes), and a few zeros.</summary>
    internal static float[] RandomRows(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        var x = new float[rows * dim];
        for (int i = 0; i < x.Length; i++)
        {
            double magnitude = Math.Pow(2, random.NextDouble() * 24 - 12);
            x[i] = random.Next(50) == 0 ? 0f : (float)(random.Next(2) == 0 ? magnitude : -magnitude);
        }
        return x;
    }
}
