using System.Runtime.InteropServices;

namespace MoeSharp.Tensors;

/// <summary>
/// An FP8 E4M3 value in the OCP "E4M3FN" encoding (PyTorch's <c>torch.float8_e4m3fn</c>, safetensors' <c>F8_E4M3</c>):
/// 1 sign bit, 4 exponent bits with bias 7, 3 mantissa bits, subnormals at exponent 0, <b>no infinities</b>, and one
/// NaN per sign (<c>0x7F</c>, <c>0xFF</c>); the largest finite magnitude is 448. Storage only: arithmetic happens in
/// float32, to which every value widens exactly.
/// </summary>
/// <remarks>
/// <para>
/// float32 → E4M3 (<see cref="FromSingle"/>) rounds to nearest, ties to even (the code with an even last mantissa
/// bit). Finite values whose magnitude rounds above 448 <b>saturate</b> to ±448 (the OCP "satfinite" rule, as CUDA's
/// <c>__NV_SATFINITE</c>); PyTorch's <c>.to(float8_e4m3fn)</c> instead turns magnitudes above 464 into NaN.
/// ±Infinity and NaN become NaN with the input's sign (CUDA's satfinite maps ±Infinity to ±448): an infinity is an
/// overflow that already happened, and a finite 448 would hide it. Signed zeros keep their sign.
/// </para>
/// <para>
/// Equality is bitwise, as for <see cref="BFloat16"/>: the two zeros differ, and a NaN equals itself.
/// </para>
/// </remarks>
[StructLayout(LayoutKind.Sequential, Size = 1)]
public readonly struct Float8E4M3 : IEquatable<Float8E4M3>
{
    /// <summary>The largest finite magnitude, 448 (<c>0x7E</c>: exponent 15, mantissa 6).</summary>
    public const float MaxFinite = 448f;

    /// <summary>The smallest positive subnormal, 2^-9 (<c>0x01</c>).</summary>
    public const float MinSubnormal = 1f / 512f;

    /// <summary>The smallest positive normal, 2^-6 (<c>0x08</c>).</summary>
    public const float MinNormal = 1f / 64f;

    // float32 bit patterns of the thresholds FromSingle compares magnitudes against.
    private const uint Float32MinNormalBits = 0x3C80_0000u; // 2^-6
    private const uint Float32MaxFiniteBits = 0x43E0_0000u; // 448
    private const uint Float32InfinityBits = 0x7F80_0000u;

    private static readonly float[] Widened = BuildWidened();

    /// <summary>The raw 8 bits.</summary>
    public readonly byte Bits;

    private Float8E4M3(byte bits) => Bits = bits;

    /// <summary>The positive NaN, <c>0x7F</c> (the only NaN besides its negative twin <c>0xFF</c>).</summary>
    public static Float8E4M3 NaN => new(0x7F);

    /// <summary>Reinterprets 8 raw bits as an E4M3 value (every pattern is valid).</summary>
    public static Float8E4M3 FromBits(byte bits) => new(bits);

    /// <summary>True for the two NaN patterns, <c>0x7F</c> and <c>0xFF</c>.</summary>
    public bool IsNaN => (Bits & 0x7F) == 0x7F;

    /// <summary>
    /// Rounds a float32 to the nearest E4M3 value, ties to even; finite magnitudes beyond 448 saturate to ±448,
    /// ±Infinity and NaN become NaN (see the type's remarks for why).
    /// </summary>
    public static Float8E4M3 FromSingle(float value) => new(Encode(BitConverter.SingleToUInt32Bits(value)));

    /// <summary>The exact float32 value (NaN for <c>0x7F</c>/<c>0xFF</c>).</summary>
    public float ToSingle() => Widened[Bits];

    /// <summary>Converts a float32 (round to nearest even, saturating finite values).</summary>
    public static explicit operator Float8E4M3(float value) => FromSingle(value);

    /// <summary>Widens to float32 exactly.</summary>
    public static implicit operator float(Float8E4M3 value) => value.ToSingle();

    /// <summary>The E4M3 code of a float32 bit pattern: integer operations only, the same bits everywhere.</summary>
    internal static byte Encode(uint floatBits)
    {
        uint sign = (floatBits >> 24) & 0x80u;
        uint magnitude = floatBits & 0x7FFF_FFFFu;
        if (magnitude >= Float32InfinityBits)
            return (byte)(sign | 0x7Fu);
        if (magnitude >= Float32MaxFiniteBits)
            return (byte)(sign | 0x7Eu);
        if (magnitude >= Float32MinNormalBits)
        {
            // Re-bias the exponent (127 → 7), then round the 23-bit mantissa to 3 bits: add just under half of the
            // dropped range, plus one when the kept part is odd, so an exact half goes to the even neighbour. A carry
            // out of the mantissa steps the exponent up, which is the correct next value (at most 448 here).
            uint rebiased = magnitude - (120u << 23);
            uint rounded = rebiased + 0x7_FFFFu + ((rebiased >> 20) & 1u);
            return (byte)(sign | (rounded >> 20));
        }
        // Subnormal range: the code is the magnitude in units of 2^-9, rounded to nearest even (8 is 2^-6, the
        // smallest normal, whose code is also 8). Float32 subnormals are far below half a unit: zero.
        int exponent = (int)(magnitude >> 23);
        if (exponent == 0)
            return (byte)sign;
        uint significand = (magnitude & 0x7F_FFFFu) | 0x80_0000u; // value = significand · 2^(exponent - 150)
        int shift = 141 - exponent; // value / 2^-9 = significand >> shift
        if (shift > 24)
            return (byte)sign; // below a quarter unit
        uint quotient = significand >> shift;
        uint remainder = significand & ((1u << shift) - 1u);
        uint half = 1u << (shift - 1);
        if (remainder > half || (remainder == half && (quotient & 1u) != 0))
            quotient++;
        return (byte)(sign | quotient);
    }

    /// <summary>The float32 value of every code, built from the bit layout (exponent, mantissa, bias 7).</summary>
    private static float[] BuildWidened()
    {
        var table = new float[256];
        for (int code = 0; code < 256; code++)
        {
            uint sign = (uint)(code & 0x80) << 24;
            uint exponent = (uint)(code >> 3) & 0xFu,
                mantissa = (uint)code & 7u;
            uint bits;
            if ((code & 0x7F) == 0x7F)
                bits = sign | 0x7FC0_0000u;
            else if (exponent != 0)
                bits = sign | ((exponent + 120u) << 23) | (mantissa << 20);
            else
                bits = BitConverter.SingleToUInt32Bits(mantissa * MinSubnormal) | sign;
            table[code] = BitConverter.UInt32BitsToSingle(bits);
        }
        return table;
    }

    /// <inheritdoc />
    public bool Equals(Float8E4M3 other) => Bits == other.Bits;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Float8E4M3 other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => Bits;

    /// <inheritdoc />
    public override string ToString() => ToSingle().ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Bitwise equality.</summary>
    public static bool operator ==(Float8E4M3 left, Float8E4M3 right) => left.Equals(right);

    /// <summary>Bitwise inequality.</summary>
    public static bool operator !=(Float8E4M3 left, Float8E4M3 right) => !left.Equals(right);
}
