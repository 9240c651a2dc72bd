using System.Numerics;
using MoeSharp.Quantization;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Quantization;

/// <summary>
/// float32 → E4M3FN against an independent float64 reference (nearest of the 127 finite magnitudes listed from the
/// format's definition, ties to the even code), over every combination of the bits that decide the rounding; E4M3 →
/// float32 against the format's definition and the checkpoint reader's independent table.
/// </summary>
public class Float8E4M3Tests
{
    // The finite non-negative magnitudes, code 0x00..0x7E, from the definition in float64.
    private static readonly double[] Magnitudes = Enumerable
        .Range(0, 0x7F)
        .Select(code =>
        {
            int exponent = code >> 3,
                mantissa = code & 7;
            return exponent == 0 ? mantissa * Math.Pow(2, -9) : (1 + mantissa / 8.0) * Math.Pow(2, exponent - 7);
        })
        .ToArray();

    /// <summary>The slow reference: saturating, ties to even, NaN for non-finite input, sign kept.</summary>
    private static byte Reference(float value)
    {
        int sign = BitConverter.SingleToUInt32Bits(value) >> 31 == 1 ? 0x80 : 0;
        if (!float.IsFinite(value))
            return (byte)(sign | 0x7F);
        double m = Math.Abs((double)value);
        if (m >= 448)
            return (byte)(sign | 0x7E);
        int best = 0;
        for (int code = 1; code < Magnitudes.Length; code++)
        {
            double d = Math.Abs(Magnitudes[code] - m),
                bestD = Math.Abs(Magnitudes[best] - m);
            if (d < bestD || (d == bestD && (code & 1) == 0))
                best = code;
        }
        return (byte)(sign | best);
    }

    /// <summary>
    /// Every sign, every float32 exponent, every value of the 6 mantissa bits below the sign that decide the result
    /// (3 kept at the top of the E4M3 range, more near the subnormals) and low bits that make a value exactly a tie,
    /// just below and just above one.
    /// </summary>
    private static IEnumerable<uint> DecisivePatterns()
    {
        uint[] low = [0u, 1u, 0x1_0000u, 0x1_FFFFu, 0x0_FFFFu, 0x0_8000u, 0x1_8000u, 0x7FFFu];
        for (uint sign = 0; sign < 2; sign++)
        {
            for (uint exponent = 0; exponent < 256; exponent++)
            {
                for (uint top = 0; top < 64; top++)
                {
                    foreach (uint l in low)
                        yield return (sign << 31) | (exponent << 23) | (top << 17) | l;
                }
            }
        }
    }

    [Fact]
    public void EveryCodeRoundTrips()
    {
        for (int code = 0; code < 256; code++)
        {
            var value = Float8E4M3.FromBits((byte)code);
            Assert.Equal((byte)code, Float8E4M3.FromSingle(value.ToSingle()).Bits);
        }
    }

    [Fact]
    public void WideningMatchesTheDefinitionAndTheCheckpointReader()
    {
        var bytes = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var reader = new float[256];
        StoredElementTypes.ToFloat32(StoredElementType.Float8E4M3, bytes, reader);
        for (int code = 0; code < 256; code++)
        {
            float widened = Float8E4M3.FromBits((byte)code).ToSingle();
            bool nan = (code & 0x7F) == 0x7F;
            Assert.Equal(nan, float.IsNaN(widened));
            Assert.Equal(nan, Float8E4M3.FromBits((byte)code).IsNaN);
            if (nan)
            {
                Assert.Equal(code >= 0x80, float.IsNegative(widened));
                Assert.True(float.IsNaN(reader[code]));
                continue;
            }
            double expected = (code >= 0x80 ? -1 : 1) * Magnitudes[code & 0x7F];
            Assert.Equal(expected, (double)widened);
            Assert.Equal(BitConverter.SingleToUInt32Bits(reader[code]), BitConverter.SingleToUInt32Bits(widened));
        }
        Assert.Equal(448f, Float8E4M3.FromBits(0x7E).ToSingle());
        Assert.Equal(Float8E4M3.MaxFinite, Float8E4M3.FromBits(0x7E).ToSingle());
        Assert.Equal(Float8E4M3.MinSubnormal, Float8E4M3.FromBits(0x01).ToSingle());
        Assert.Equal(Float8E4M3.MinNormal, Float8E4M3.FromBits(0x08).ToSingle());
    }

    [Fact]
    public void ScalarConversionMatchesTheFloat64ReferenceOnEveryDecisiveBitPattern()
    {
        int checkedCount = 0;
        foreach (uint bits in DecisivePatterns())
        {
            float value = BitConverter.UInt32BitsToSingle(bits);
            byte expected = Reference(value),
                actual = Float8E4M3.FromSingle(value).Bits;
            if (expected != actual)
            {
                Assert.Fail($"0x{bits:X8} ({value:R}): expected 0x{expected:X2}, got 0x{actual:X2}");
            }
            checkedCount++;
        }
        Assert.Equal(2 * 256 * 64 * 8, checkedCount);
    }

    [Fact]
    public void VectorConversionMatchesTheScalarOneBitwise()
    {
        uint[] all = DecisivePatterns().Concat(RandomPatterns(200_000)).ToArray();
        int width = Vector<uint>.Count;
        for (int i = 0; i + width <= all.Length; i += width)
        {
            Vector<uint> codes = Fp8Vector.Encode(new Vector<uint>(all.AsSpan(i)));
            for (int k = 0; k < width; k++)
            {
                byte scalar = Float8E4M3.Encode(all[i + k]);
                if (codes[k] != scalar)
                    Assert.Fail($"0x{all[i + k]:X8}: vector 0x{codes[k]:X2}, scalar 0x{scalar:X2}");
            }
        }
    }

    [Fact]
    public void RandomFloatsMatchTheReference()
    {
        foreach (uint bits in RandomPatterns(100_000))
        {
            float value = BitConverter.UInt32BitsToSingle(bits);
            Assert.Equal(Reference(value), Float8E4M3.FromSingle(value).Bits);
        }
    }

    [Theory]
    [InlineData(1.0f, 0x38)]
    [InlineData(1.0625f, 0x38)] // halfway between 1 (mantissa 0) and 1.125 (1): to the even, 1
    [InlineData(1.0625001f, 0x39)] // just above halfway: up
    [InlineData(1.1875f, 0x3A)] // halfway between 1.125 (odd) and 1.25 (even): up to 1.25
    [InlineData(0.0009765625f, 0x00)] // 2^-10, halfway between 0 and the smallest subnormal: to zero
    [InlineData(0.0029296875f, 0x02)] // 3·2^-10, halfway between 2^-9 (odd) and 2·2^-9: up
    [InlineData(0.0048828125f, 0x02)] // 5·2^-10, halfway between 2·2^-9 (even) and 3·2^-9: down
    [InlineData(0.0146484375f, 0x08)] // 15·2^-10, halfway between 7·2^-9 and 2^-6 (code 8, even): up
    [InlineData(-1.0625f, 0xB8)] // ties on negative values behave the same on the magnitude
    [InlineData(448f, 0x7E)]
    [InlineData(464f, 0x7E)] // halfway between 448 and the (NaN) 480 pattern: 448
    [InlineData(465f, 0x7E)] // saturates (PyTorch would give NaN)
    [InlineData(1e30f, 0x7E)]
    [InlineData(-1e30f, 0xFE)]
    [InlineData(float.MaxValue, 0x7E)]
    [InlineData(float.PositiveInfinity, 0x7F)]
    [InlineData(float.NegativeInfinity, 0xFF)]
    [InlineData(float.NaN, 0xFF)] // .NET's float.NaN has the sign bit set
    [InlineData(0f, 0x00)]
    [InlineData(-0f, 0x80)]
    [InlineData(float.Epsilon, 0x00)]
    public void RoundsToNearestEvenAndSaturates(float value, int expected) =>
        Assert.Equal((byte)expected, Float8E4M3.FromSingle(value).Bits);

    [Fact]
    public void EqualityIsBitwise()
    {
        Assert.NotEqual(Float8E4M3.FromSingle(0f), Float8E4M3.FromSingle(-0f));
        Assert.Equal(Float8E4M3.NaN, Float8E4M3.FromBits(0x7F));
        Assert.True(Float8E4M3.FromSingle(2f) == (Float8E4M3)2f);
        Assert.Equal(2f, (float)Float8E4M3.FromSingle(2f));
        Assert.Equal("0.5", Float8E4M3.FromSingle(0.5f).ToString());
    }

    private static IEnumerable<uint> RandomPatterns(int count)
    {
        var random = new Random(18);
        for (int i = 0; i < count; i++)
        {
            // Half over all bit patterns, half concentrated on magnitudes E4M3 can hold (exponents 110..140).
            uint bits = (uint)random.NextInt64(0, 1L << 32);
            if ((i & 1) == 0)
                bits = (bits & 0x807F_FFFFu) | ((uint)random.Next(110, 141) << 23);
            yield return bits;
        }
    }
}
