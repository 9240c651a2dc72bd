using CsCheck;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>float32 → bfloat16 rounds to nearest even and keeps NaN a NaN; bfloat16 → float32 is exact.</summary>
public class BFloat16Tests
{
    private static ushort Round(uint floatBits) => BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(floatBits)).Bits;

    [Theory]
    [InlineData(0x3F80_0000u, 0x3F80)] // 1.0 exactly
    [InlineData(0x3F80_7FFFu, 0x3F80)] // just below half an ulp: down
    [InlineData(0x3F80_8000u, 0x3F80)] // exactly half, even below: stays
    [InlineData(0x3F80_8001u, 0x3F81)] // just above half: up
    [InlineData(0x3F81_8000u, 0x3F82)] // exactly half, odd below: up to even
    [InlineData(0xBF81_8000u, 0xBF82)] // negative ties behave the same on the magnitude
    [InlineData(0x0000_8000u, 0x0000)] // subnormal tie to even (zero)
    [InlineData(0x0001_8000u, 0x0002)] // subnormal tie to even (up)
    [InlineData(0x007F_FFFFu, 0x0080)] // largest subnormal rounds up into the normals
    [InlineData(0x7F7F_FFFFu, 0x7F80)] // float.MaxValue overflows to +infinity, as PyTorch does
    [InlineData(0x7F7F_7FFFu, 0x7F7F)] // the largest value that stays finite
    public void RoundsToNearestEven(uint floatBits, int expected) => Assert.Equal((ushort)expected, Round(floatBits));

    [Fact]
    public void KeepsInfinitiesAndSignedZeros()
    {
        Assert.Equal(0x7F80, BFloat16.FromSingle(float.PositiveInfinity).Bits);
        Assert.Equal(0xFF80, BFloat16.FromSingle(float.NegativeInfinity).Bits);
        Assert.Equal(0x0000, BFloat16.FromSingle(0f).Bits);
        Assert.Equal(0x8000, BFloat16.FromSingle(-0f).Bits);
        Assert.Equal(float.PositiveInfinity, BFloat16.FromBits(0x7F80).ToSingle());
        Assert.Equal(float.NegativeInfinity, BFloat16.FromBits(0xFF80).ToSingle());
    }

    [Theory]
    [InlineData(0x7FC0_0000u)] // the canonical quiet NaN
    [InlineData(0x7F80_0001u)] // payload only in the low bits: plain truncation would give infinity
    [InlineData(0xFF80_0001u)]
    [InlineData(0x7FFF_FFFFu)] // rounding up would carry into the sign bit
    [InlineData(0xFFFF_FFFFu)]
    public void NaNStaysNaNWithItsSign(uint floatBits)
    {
        BFloat16 b = BFloat16.FromSingle(BitConverter.UInt32BitsToSingle(floatBits));
        Assert.True(float.IsNaN(b.ToSingle()));
        Assert.Equal(floatBits >> 31, (uint)b.Bits >> 15);
    }

    [Fact]
    public void WideningIsExactForEveryBitPattern()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            BFloat16 b = BFloat16.FromBits((ushort)bits);
            float f = b;
            Assert.Equal((uint)bits << 16, BitConverter.SingleToUInt32Bits(f));
            if (!float.IsNaN(f))
                Assert.Equal(b, (BFloat16)f);
        }
    }

    [Fact]
    public void RoundingPicksTheNearestNeighbour()
    {
        // Positive finite floats; the sign is symmetric (checked below).
        Gen.UInt[0, 0x7F7F_FFFF]
            .Sample(
                bits =>
                {
                    double x = BitConverter.UInt32BitsToSingle(bits);
                    ushort below = (ushort)(bits >> 16);
                    double low = BFloat16.FromBits(below).ToSingle();
                    // One bfloat16 ulp above `below`; for the largest finite value that is 2^128, where infinity sits.
                    double high =
                        below == 0x7F7F ? Math.ScaleB(1, 128) : BFloat16.FromBits((ushort)(below + 1)).ToSingle();
                    ushort result = Round(bits);
                    double dLow = x - low,
                        dHigh = high - x;
                    ushort expected =
                        dLow < dHigh ? below
                        : dHigh < dLow ? (ushort)(below + 1)
                        : (below & 1) == 0 ? below
                        : (ushort)(below + 1);
                    Assert.Equal(expected, result);
                    Assert.Equal(result | 0x8000, Round(bits | 0x8000_0000u));
                },
                iter: 20_000
            );
    }

    [Fact]
    public void EqualityIsBitwise()
    {
        Assert.NotEqual(BFloat16.FromSingle(0f), BFloat16.FromSingle(-0f));
        Assert.True(BFloat16.FromBits(0x7FC0) == BFloat16.FromBits(0x7FC0));
        Assert.True(BFloat16.FromBits(0x7FC0) != BFloat16.FromBits(0x7FC1));
        Assert.Equal("1.5", BFloat16.FromSingle(1.5f).ToString());
    }
}
