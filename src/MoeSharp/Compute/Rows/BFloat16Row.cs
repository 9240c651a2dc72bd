using System.Numerics;
using System.Runtime.CompilerServices;
using MoeSharp.Tensors;

namespace MoeSharp.Compute.Rows;

/// <summary>
/// bfloat16 rows: a value widens exactly by moving its 16 bits to the top of a float32; narrowing rounds as
/// <see cref="BFloat16.FromSingle"/> (to nearest even, a NaN kept a quiet NaN). A block is one vector of bit patterns.
/// </summary>
internal readonly struct BFloat16Row : IRowElement<BFloat16>
{
    /// <inheritdoc />
    public static bool StreamsLargeOutputs => false;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(BFloat16 value) => value.ToSingle();

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static BFloat16 Narrow(float value) => BFloat16.FromSingle(value);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector<float> Low, Vector<float> High) WidenBlock(ref readonly BFloat16 source) =>
        WidenBits(Vector.LoadUnsafe(ref Unsafe.As<BFloat16, ushort>(ref Unsafe.AsRef(in source))));

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void NarrowBlock<TStore>(Vector<float> low, Vector<float> high, ref BFloat16 destination)
        where TStore : struct, IVectorStore =>
        TStore.Store(NarrowBits(low, high), ref Unsafe.As<BFloat16, ushort>(ref destination));

    /// <summary>
    /// A vector of bfloat16 bit patterns widened to two float32 vectors (low lanes, high lanes), exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector<float> Low, Vector<float> High) WidenBits(Vector<ushort> bits)
    {
        Vector.Widen(bits, out Vector<uint> low, out Vector<uint> high);
        return (Vector.AsVectorSingle(low << 16), Vector.AsVectorSingle(high << 16));
    }

    /// <summary>
    /// Two float32 vectors rounded as <see cref="Narrow"/> and packed into one vector of bit patterns.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<ushort> NarrowBits(Vector<float> low, Vector<float> high) =>
        Vector.Narrow(RoundedHigh(Vector.AsVectorUInt32(low)), RoundedHigh(Vector.AsVectorUInt32(high)));

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
