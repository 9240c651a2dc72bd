using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Compute;

/// <summary>The vectorized bfloat16 row helpers give, element for element, the bits of the scalar definitions.</summary>
public class BFloat16RowsTests
{
    /// <summary>Any float32 bit pattern: NaNs (with payloads), infinities, subnormals, rounding ties.</summary>
    private static readonly Gen<float[]> AnyFloats = Gen.Frequency(
        (3, Gen.Float),
        (1, Gen.UInt.Select(BitConverter.UInt32BitsToSingle)),
        (1, Gen.UInt[0, 0xFFFF].Select(low => BitConverter.UInt32BitsToSingle(0x3F80_0000u | low))),
        (1, Gen.OneOfConst(float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, 0f, float.Epsilon, float.MaxValue)))
        .Array[0, 70];

    [Fact]
    public void Narrow_IsFromSingle_ForEveryElement()
    {
        AnyFloats.Sample(values =>
        {
            var narrowed = new BFloat16[values.Length];
            BFloat16Rows.Narrow(values, narrowed);
            for (int i = 0; i < values.Length; i++)
            {
                Assert.True(BFloat16.FromSingle(values[i]) == narrowed[i], $"element {i} ({BitConverter.SingleToUInt32Bits(values[i]):X8})");
            }
        });
    }

    [Fact]
    public void WidenScaleAndAddScaled_AreTheScalarFloat32Operations()
    {
        Gen.Select(AnyFloats, Gen.Float, Gen.Bool).Sample((values, scale, scaled) =>
        {
            var row = values.Select(BFloat16.FromSingle).ToArray();
            var wide = new float[row.Length];
            BFloat16Rows.Widen(row, wide);
            var scaledRow = new BFloat16[row.Length];
            BFloat16Rows.Scale(row, scale, scaledRow);
            var accumulator = values.Select(v => v * 0.5f).ToArray();
            var expectedSum = accumulator.ToArray();
            BFloat16Rows.AddScaled(row, scaled ? scale : null, accumulator);
            for (int i = 0; i < row.Length; i++)
            {
                float v = row[i].ToSingle();
                Assert.Equal(BitConverter.SingleToUInt32Bits(v), BitConverter.SingleToUInt32Bits(wide[i]));
                Assert.True(BFloat16.FromSingle(v * scale) == scaledRow[i], $"scale, element {i}");
                float sum = expectedSum[i] + (scaled ? v * scale : v);
                Assert.True(BitConverter.SingleToUInt32Bits(sum) == BitConverter.SingleToUInt32Bits(accumulator[i]) || (float.IsNaN(sum) && float.IsNaN(accumulator[i])),
                    $"add, element {i}: {sum} vs {accumulator[i]}");
            }
        });
    }
}
