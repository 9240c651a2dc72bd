using System.Numerics;

namespace MoeSharp.Quantization;

/// <summary>
/// float32 ↔ E4M3 a vector at a time. Encoding follows <see cref="Tensors.Float8E4M3.FromSingle"/> (the tests
/// check the two agree): integer rounding for normals, and for subnormals the floating-point addition of 2^14, whose
/// unit in the last place is 2^-9 (the E4M3 subnormal step), so the hardware's round-to-nearest-even does the rounding.
/// </summary>
internal static class Fp8Vector
{
    /// <summary>The E4M3 code of each lane's float32 bit pattern, in the low byte of the lane.</summary>
    public static Vector<uint> Encode(Vector<uint> floatBits)
    {
        Vector<uint> sign = (floatBits >> 24) & new Vector<uint>(0x80u);
        Vector<uint> magnitude = floatBits & new Vector<uint>(0x7FFF_FFFFu);

        Vector<uint> rebiased = magnitude - new Vector<uint>(120u << 23);
        Vector<uint> normal = (rebiased + new Vector<uint>(0x7_FFFFu) + ((rebiased >> 20) & Vector<uint>.One)) >> 20;
        normal = Vector.Min(normal, new Vector<uint>(0x7Eu)); // saturate finite magnitudes beyond 448

        Vector<float> shifted = Vector.AsVectorSingle(magnitude) + new Vector<float>(16384f);
        Vector<uint> subnormal = Vector.AsVectorUInt32(shifted) - new Vector<uint>(0x4680_0000u); // bits of 2^14

        Vector<uint> code = Vector.ConditionalSelect(
            Vector.LessThan(magnitude, new Vector<uint>(0x3C80_0000u)),
            subnormal,
            normal
        );
        code = Vector.ConditionalSelect(
            Vector.GreaterThanOrEqual(magnitude, new Vector<uint>(0x7F80_0000u)),
            new Vector<uint>(0x7Fu),
            code
        );
        return code | sign;
    }

    /// <summary>
    /// The float32 value of each lane's E4M3 code (low byte): the 7 magnitude bits shifted into a float32's exponent
    /// and mantissa fields make 2^-120 times the value (a float32 subnormal for E4M3's subnormals), so one exact
    /// multiplication by 2^120 finishes it; the NaN codes are patched and the sign put back.
    /// </summary>
    public static Vector<float> Decode(Vector<uint> codes)
    {
        Vector<uint> magnitude = codes & new Vector<uint>(0x7Fu);
        Vector<float> value = Vector.AsVectorSingle(magnitude << 20) * new Vector<float>(MathF.ScaleB(1f, 120));
        Vector<uint> nan = Vector.Equals(magnitude, new Vector<uint>(0x7Fu));
        Vector<uint> bits = Vector.ConditionalSelect(nan, new Vector<uint>(0x7FC0_0000u), Vector.AsVectorUInt32(value));
        return Vector.AsVectorSingle(bits | ((codes & new Vector<uint>(0x80u)) << 24));
    }
}
