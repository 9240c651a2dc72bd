using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Compute;

/// <summary>
/// The vectorized bfloat16 row helpers give, element for element, the bits of the scalar definitions.
/// </summary>
public class BFloat16RowsTests
{
    /// <summary>Any float32 bit pattern: NaNs (with payloads), infinities, subnormals, rounding ties.</summary>
    private static readonly Gen<float[]> AnyFloats = Gen.Frequency(
        (3, Gen.Float),
        (1, Gen.UInt.Select(BitConverter.UInt32BitsToSingle)),
        (1, Gen.UInt[0, 0xFFFF].Select(low => BitConverter.UInt32BitsToSingle(0x3F80_0000u | low))),
        (
            1,
            Gen.OneOfConst(
                float.NaN,
                float.PositiveInfinity,
                float.NegativeInfinity,
                -0f,
                0f,
                float.Epsilon,
                float.MaxValue
            )
        )
    ).Array[0, 70];

    [Fact]
    public void Narrow_IsFromSingle_ForEveryElement()
    {
        AnyFloats.Sample(values =>
        {
            var narrowed = new BFloat16[values.Length];
            BFloat16Rows.Narrow(values, narrowed);
            for (int i = 0; i < values.Length; i++)
            {
                Assert.True(
                    BFloat16.FromSingle(values[i]) == narrowed[i],
                    $"element {i} ({BitConverter.SingleToUInt32Bits(values[i]):X8})"
                );
            }
        });
    }

    [Fact]
    public void WidenAndScale_AreTheScalarFloat32Operations()
    {
        Gen.Select(AnyFloats, Gen.Float)
            .Sample(
                (values, scale) =>
                {
                    var row = values.Select(BFloat16.FromSingle).ToArray();
                    var wide = new float[row.Length];
                    BFloat16Rows.Widen(row, wide);
                    var scaledRow = new BFloat16[row.Length];
                    BFloat16Rows.Scale(row, scale, scaledRow);
                    for (int i = 0; i < row.Length; i++)
                    {
                        float v = row[i].ToSingle();
                        Assert.Equal(BitConverter.SingleToUInt32Bits(v), BitConverter.SingleToUInt32Bits(wide[i]));
                        Assert.True(BFloat16.FromSingle(v * scale) == scaledRow[i], $"scale, element {i}");
                    }
                }
            );
    }

    [Fact]
    public void VectorWidenAndNarrow_RoundTripAndRoundAsFromSingle()
    {
        int width = System.Numerics.Vector<ushort>.Count;
        Gen.Select(Gen.UShort.Array[width], Gen.Float.Array[2 * width])
            .Sample(
                (bits, floats) =>
                {
                    var (low, high) = BFloat16Rows.WidenVector(new System.Numerics.Vector<ushort>(bits));
                    for (int i = 0; i < width; i++)
                    {
                        float expected = BFloat16.FromBits(bits[i]).ToSingle();
                        float actual = i < width / 2 ? low[i] : high[i - width / 2];
                        Assert.Equal(
                            BitConverter.SingleToUInt32Bits(expected),
                            BitConverter.SingleToUInt32Bits(actual)
                        );
                    }
                    var packed = BFloat16Rows.NarrowVector(
                        new System.Numerics.Vector<float>(floats),
                        new System.Numerics.Vector<float>(floats, width / 2)
                    );
                    for (int i = 0; i < width; i++)
                        Assert.Equal(BFloat16.FromSingle(floats[i]).Bits, packed[i]);
                }
            );
    }
}
