using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// Vectorized bfloat16 row arithmetic for the host kernels: widen to float32 (exact), float32 operations, and
/// rounding back with <see cref="BFloat16.FromSingle"/>'s rule (to nearest even, NaN kept a quiet NaN), so the
/// vector and scalar paths give the same bits.
/// </summary>
internal static class BFloat16Rows
{
    /// <summary>A new float32 array holding <paramref name="source"/> widened.</summary>
    public static float[] Widen(ReadOnlySpan<BFloat16> source)
    {
        var result = new float[source.Length];
        Widen(source, result);
        return result;
    }

    /// <summary><c>destination[i] = (float)source[i]</c>, exact.</summary>
    public static void Widen(ReadOnlySpan<BFloat16> source, Span<float> destination)
    {
        ReadOnlySpan<ushort> bits = MemoryMarshal.Cast<BFloat16, ushort>(source);
        Span<uint> wide = MemoryMarshal.Cast<float, uint>(destination);
        int width = Vector<ushort>.Count, j = 0;
        for (; j <= bits.Length - width; j += width)
        {
            Vector.Widen(new Vector<ushort>(bits.Slice(j)), out Vector<uint> low, out Vector<uint> high);
            (low << 16).CopyTo(wide.Slice(j));
            (high << 16).CopyTo(wide.Slice(j + Vector<uint>.Count));
        }
        for (; j < bits.Length; j++) wide[j] = (uint)bits[j] << 16;
    }

    /// <summary><c>destination[i] = bfloat16(source[i])</c>, rounded to nearest even.</summary>
    public static void Narrow(ReadOnlySpan<float> source, Span<BFloat16> destination)
    {
        ReadOnlySpan<uint> bits = MemoryMarshal.Cast<float, uint>(source);
        Span<ushort> narrow = MemoryMarshal.Cast<BFloat16, ushort>(destination);
        int width = Vector<ushort>.Count, half = Vector<uint>.Count, j = 0;
        for (; j <= bits.Length - width; j += width)
        {
            Vector<ushort> packed = Vector.Narrow(RoundedHigh(new Vector<uint>(bits.Slice(j))), RoundedHigh(new Vector<uint>(bits.Slice(j + half))));
            packed.CopyTo(narrow.Slice(j));
        }
        for (; j < bits.Length; j++) narrow[j] = BFloat16.FromSingle(source[j]).Bits;
    }

    /// <summary><c>destination[i] = bfloat16(float(source[i]) · scale)</c>: one float32 product, rounded once to bfloat16.</summary>
    public static void Scale(ReadOnlySpan<BFloat16> source, float scale, Span<BFloat16> destination)
    {
        ReadOnlySpan<ushort> bits = MemoryMarshal.Cast<BFloat16, ushort>(source);
        Span<ushort> narrow = MemoryMarshal.Cast<BFloat16, ushort>(destination);
        int width = Vector<ushort>.Count, j = 0;
        var s = new Vector<float>(scale);
        for (; j <= bits.Length - width; j += width)
        {
            Vector.Widen(new Vector<ushort>(bits.Slice(j)), out Vector<uint> low, out Vector<uint> high);
            Vector<uint> lowProduct = Vector.AsVectorUInt32(Vector.AsVectorSingle(low << 16) * s);
            Vector<uint> highProduct = Vector.AsVectorUInt32(Vector.AsVectorSingle(high << 16) * s);
            Vector.Narrow(RoundedHigh(lowProduct), RoundedHigh(highProduct)).CopyTo(narrow.Slice(j));
        }
        for (; j < bits.Length; j++) narrow[j] = BFloat16.FromSingle(source[j].ToSingle() * scale).Bits;
    }

    /// <summary>A vector of bfloat16 bit patterns widened to two float32 vectors (low lanes, high lanes), exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector<float> Low, Vector<float> High) WidenVector(Vector<ushort> bits)
    {
        Vector.Widen(bits, out Vector<uint> low, out Vector<uint> high);
        return (Vector.AsVectorSingle(low << 16), Vector.AsVectorSingle(high << 16));
    }

    /// <summary>Two float32 vectors rounded to bfloat16 (as <see cref="BFloat16.FromSingle"/>) and packed into one vector of bit patterns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<ushort> NarrowVector(Vector<float> low, Vector<float> high)
        => Vector.Narrow(RoundedHigh(Vector.AsVectorUInt32(low)), RoundedHigh(Vector.AsVectorUInt32(high)));

    /// <summary>
    /// Each lane's bfloat16 bits in the low half: <c>(bits + 0x7FFF + lsb) >> 16</c>, or the quiet NaN
    /// <c>(bits >> 16) | 0x40</c> for a NaN, as <see cref="BFloat16.FromSingle"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<uint> RoundedHigh(Vector<uint> bits)
    {
        Vector<uint> rounded = (bits + new Vector<uint>(0x7FFFu) + ((bits >> 16) & Vector<uint>.One)) >> 16;
        Vector<uint> nan = Vector.GreaterThan(bits & new Vector<uint>(0x7FFF_FFFFu), new Vector<uint>(0x7F80_0000u));
        return Vector.ConditionalSelect(nan, (bits >> 16) | new Vector<uint>(0x40u), rounded);
    }
}
