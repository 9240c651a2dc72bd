using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// The golden files' stand-in experts: expert e maps a row to <c>row · (1 + e/8)</c> in float32. Row-wise and
/// exactly reproducible, so dispatch and combine can be checked bitwise on any layout.
/// </summary>
public static class ScaledIdentityExperts
{
    /// <summary>The factor of expert <paramref name="expertId"/>: <c>1 + e/8</c> computed in float32.</summary>
    public static float Factor(int expertId) => 1f + expertId / 8f;

    /// <summary>
    /// Applies the experts to expert-major rows: the first <c>tokensPerLocalExpert[0]</c> rows go through expert
    /// <paramref name="firstExpertId"/>, the next through the following expert, and so on.
    /// </summary>
    /// <param name="routed"><c>[R, D]</c> float32 or bfloat16 (computed in float32 and rounded once).</param>
    /// <param name="tokensPerLocalExpert"><c>[E_local]</c>, summing to R.</param>
    /// <param name="firstExpertId">Global id of the first local expert.</param>
    /// <returns><c>[R, D]</c> in the dtype of <paramref name="routed"/>, a new tensor.</returns>
    public static Tensor Apply(Tensor routed, ReadOnlySpan<int> tokensPerLocalExpert, int firstExpertId)
    {
        ArgumentNullException.ThrowIfNull(routed);
        int total = 0;
        foreach (int c in tokensPerLocalExpert)
            total += c;
        if (routed.Rank != 2 || routed.Dim(0) != total)
        {
            throw new ArgumentException(
                $"routed must have {total} rows (the sum of tokensPerLocalExpert); got {routed.ShapeString}",
                nameof(routed)
            );
        }
        // bfloat16 rows: the same float32 product of the widened row, rounded once to bfloat16.
        if (routed.DType == DType.BFloat16)
            return Apply(routed.ToFloat32(), tokensPerLocalExpert, firstExpertId).ToBFloat16();
        var output = Tensor.Uninitialized(DType.Float32, routed.ShapeArray());
        ReadOnlySpan<float> src = routed.AsSpan<float>();
        Span<float> dst = output.AsSpan<float>();
        int d = routed.RowLength,
            row = 0;
        for (int j = 0; j < tokensPerLocalExpert.Length; j++)
        {
            float factor = Factor(firstExpertId + j);
            int start = row * d,
                length = tokensPerLocalExpert[j] * d;
            Scale(src.Slice(start, length), factor, dst.Slice(start, length));
            row += tokensPerLocalExpert[j];
        }
        return output;
    }

    /// <summary>
    /// <c>to[i] = from[i] · factor</c>, a vector at a time: the same IEEE product per element as the scalar loop (a
    /// multiply is exact-rounded whatever the width). Compiled optimised at once: <c>moe run</c> calls it once per
    /// rank, cold, so unoptimised code would run the whole multiply.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    private static void Scale(ReadOnlySpan<float> from, float factor, Span<float> to)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            var f = new System.Numerics.Vector<float>(factor);
            int width = System.Numerics.Vector<float>.Count;
            for (; i <= from.Length - width; i += width)
                (new System.Numerics.Vector<float>(from.Slice(i)) * f).CopyTo(to.Slice(i));
        }
        for (; i < from.Length; i++)
            to[i] = from[i] * factor;
    }

    /// <summary>
    /// <see cref="Apply"/> on the first <c>Σ tokensPerLocalExpert</c> rows of <paramref name="routed"/>, with zero rows
    /// after them: capacity mode's routed buffer ends in unused rows, which combine never reads.
    /// </summary>
    /// <param name="routed"><c>[R', D]</c> float32 or bfloat16, at least the counts' sum of rows.</param>
    /// <param name="tokensPerLocalExpert"><c>[E_local]</c>.</param>
    /// <param name="firstExpertId">Global id of the first local expert.</param>
    /// <returns><c>[R', D]</c> in the dtype of <paramref name="routed"/>, a new tensor.</returns>
    public static Tensor ApplyToPrefix(Tensor routed, ReadOnlySpan<int> tokensPerLocalExpert, int firstExpertId)
    {
        ArgumentNullException.ThrowIfNull(routed);
        int used = 0;
        foreach (int c in tokensPerLocalExpert)
            used += c;
        if (used == routed.Rows)
            return Apply(routed, tokensPerLocalExpert, firstExpertId);
        if (routed.Rank != 2 || used > routed.Rows)
        {
            throw new ArgumentException(
                $"routed must have at least {used} rows (the sum of tokensPerLocalExpert); got {routed.ShapeString}",
                nameof(routed)
            );
        }
        int rowBytes = routed.RowLength * routed.DType.SizeOf();
        var prefix = Tensor.Uninitialized(routed.DType, used, routed.RowLength);
        routed.AsBytes().Slice(0, used * rowBytes).CopyTo(prefix.AsBytes());
        var output = Tensor.Zeros(routed.DType, routed.ShapeArray());
        Apply(prefix, tokensPerLocalExpert, firstExpertId).AsBytes().CopyTo(output.AsBytes());
        return output;
    }
}
