using MoeSharp.Tensors;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>Widening of the stored float types to float32, against values from the formats' definitions.</summary>
public sealed class StoredElementTypeTests
{
    [Theory]
    [InlineData(0x38, 1.0f)]
    [InlineData(0xB8, -1.0f)]
    [InlineData(0x7E, 448f)] // largest finite E4M3FN
    [InlineData(0x08, 0.015625f)] // smallest normal, 2^-6
    [InlineData(0x01, 0.001953125f)] // smallest subnormal, 2^-9
    [InlineData(0x00, 0f)]
    [InlineData(0x3C, 1.5f)]
    public void F8_E4M3_widens_exactly(byte code, float expected)
    {
        var value = new float[1];
        StoredElementTypes.ToFloat32(StoredElementType.Float8E4M3, [code], value);
        Assert.Equal(expected, value[0]);
    }

    [Fact]
    public void F8_E4M3_has_NaN_only_at_all_ones()
    {
        var values = new float[256];
        StoredElementTypes.ToFloat32(
            StoredElementType.Float8E4M3,
            Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(),
            values
        );
        Assert.Equal([0x7F, 0xFF], Enumerable.Range(0, 256).Where(i => float.IsNaN(values[i])));
        Assert.DoesNotContain(values, float.IsInfinity);
    }

    [Fact]
    public void F16_and_BF16_widen_exactly()
    {
        Half[] halves = [(Half)1.5f, (Half)(-0.000061035156f), Half.MaxValue, (Half)0.1f];
        byte[] raw = halves.SelectMany(h => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits(h))).ToArray();
        var values = new float[halves.Length];
        StoredElementTypes.ToFloat32(StoredElementType.Float16, raw, values);
        Assert.Equal(halves.Select(h => (float)h), values);

        float[] floats = [1.5f, -3.25f, 1e30f];
        byte[] bf = floats.SelectMany(f => BitConverter.GetBytes(BFloat16.FromSingle(f).Bits)).ToArray();
        StoredElementTypes.ToFloat32(StoredElementType.BFloat16, bf, values.AsSpan(0, 3));
        Assert.Equal(floats.Select(f => BFloat16.FromSingle(f).ToSingle()), values.Take(3));
    }
}
