using System.Numerics;
using System.Runtime.CompilerServices;
using MoeSharp.Compute.Rows;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// bfloat16 row conversions for host code outside the row kernels (collectives, tests): widen to float32 (exact),
/// float32 operations, and rounding back with <see cref="BFloat16.FromSingle"/>'s rule (to nearest even, NaN kept a
/// quiet NaN), so the vector and scalar paths give the same bits. The arithmetic is <see cref="BFloat16Row"/>'s, the
/// loops <see cref="RowSpans{TElement, TOps}"/>' — the same code the row kernels run.
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
    public static void Widen(ReadOnlySpan<BFloat16> source, Span<float> destination) =>
        RowSpans<BFloat16, BFloat16Row>.Widen(source, destination);

    /// <summary><c>destination[i] = bfloat16(source[i])</c>, rounded to nearest even.</summary>
    public static void Narrow(ReadOnlySpan<float> source, Span<BFloat16> destination) =>
        RowSpans<BFloat16, BFloat16Row>.Narrow(source, destination);

    /// <summary>
    /// <c>destination[i] = bfloat16(float(source[i]) · scale)</c>: one float32 product, rounded once.
    /// </summary>
    public static void Scale(ReadOnlySpan<BFloat16> source, float scale, Span<BFloat16> destination) =>
        RowSpans<BFloat16, BFloat16Row>.Scale(source, scale, destination);

    /// <summary>
    /// A vector of bfloat16 bit patterns widened to two float32 vectors (low lanes, high lanes), exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector<float> Low, Vector<float> High) WidenVector(Vector<ushort> bits) =>
        BFloat16Row.WidenBits(bits);

    /// <summary>
    /// Two float32 vectors rounded to bfloat16 (as <see cref="BFloat16.FromSingle"/>), packed as bit patterns.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<ushort> NarrowVector(Vector<float> low, Vector<float> high) =>
        BFloat16Row.NarrowBits(low, high);
}
