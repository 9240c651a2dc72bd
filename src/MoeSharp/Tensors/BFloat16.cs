using System.Runtime.InteropServices;

namespace MoeSharp.Tensors;

/// <summary>
/// A bfloat16 value: the upper 16 bits of an IEEE binary32. Storage only; arithmetic happens in
/// float32. Conversion from float32 rounds to nearest even, as PyTorch and CUDA do, and keeps NaN a NaN.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    /// <summary>The raw 16 bits.</summary>
    public readonly ushort Bits;

    private BFloat16(ushort bits) => Bits = bits;

    /// <summary>Reinterprets 16 raw bits as a bfloat16.</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>Rounds a float32 to the nearest bfloat16 (ties to even).</summary>
    public static BFloat16 FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
        {
            // NaN: keep the sign and force a quiet-NaN payload bit so truncation cannot make it infinite.
            return new BFloat16((ushort)((bits >> 16) | 0x0040u));
        }
        uint roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
        return new BFloat16((ushort)((bits + roundingBias) >> 16));
    }

    /// <summary>The exact float32 value of this bfloat16.</summary>
    public float ToSingle() => BitConverter.UInt32BitsToSingle((uint)Bits << 16);

    /// <summary>Converts a float32 to bfloat16 (round to nearest even).</summary>
    public static explicit operator BFloat16(float value) => FromSingle(value);

    /// <summary>Widens to float32 exactly.</summary>
    public static implicit operator float(BFloat16 value) => value.ToSingle();

    /// <inheritdoc />
    public bool Equals(BFloat16 other) => Bits == other.Bits;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => Bits;

    /// <inheritdoc />
    public override string ToString() => ToSingle().ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Bitwise equality.</summary>
    public static bool operator ==(BFloat16 left, BFloat16 right) => left.Equals(right);

    /// <summary>Bitwise inequality.</summary>
    public static bool operator !=(BFloat16 left, BFloat16 right) => !left.Equals(right);
}
