using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeSharp.Compute;

/// <summary>
/// Row-wise softmax and element-wise sigmoid over <c>[T, E]</c> float32 matrices, forward and backward.
/// Each row is processed by one fixed sequence of operations, so results are row-invariant.
/// </summary>
public static class HostScoreFunctions
{
    /// <summary>Numerically stable softmax of each row: <c>exp(z - max) / Σ exp(z - max)</c>.</summary>
    /// <param name="logits">z: [T, E].</param>
    /// <param name="scores">Output: [T, E] (may alias <paramref name="logits"/>).</param>
    /// <param name="columns">E, the row length.</param>
    /// <exception cref="ArgumentException">Lengths differ or are not a multiple of
    /// <paramref name="columns"/>.</exception>
    public static unsafe void Softmax(ReadOnlySpan<float> logits, Span<float> scores, int columns)
    {
        int rows = CheckRows(logits.Length, scores.Length, columns, nameof(scores));
        fixed (float* pz = logits)
        fixed (float* ps = scores)
        {
            nint z0 = (nint)pz,
                s0 = (nint)ps;
            // Rows are independent: any split over threads computes each row as one loop would.
            HostParallel.For(
                rows,
                8L * columns,
                [MethodImpl(MethodImplOptions.AggressiveOptimization)]
                (start, end) =>
                {
                    for (int t = start; t < end; t++)
                    {
                        long at = (long)t * columns;
                        SoftmaxRow(
                            new ReadOnlySpan<float>((float*)z0 + at, columns),
                            new Span<float>((float*)s0 + at, columns)
                        );
                    }
                }
            );
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxRow(ReadOnlySpan<float> z, Span<float> s)
    {
        float max = float.NegativeInfinity;
        for (int e = 0; e < z.Length; e++)
            max = Math.Max(max, z[e]);
        // exp(z − max) element by element (eight at a time where VectorExpF gives MathF.Exp's bits), then the sum in
        // ascending order as before.
        int j = 0;
        if (VectorExpF.IsAvailable)
        {
            var m = Vector256.Create(max);
            for (; j + Vector256<float>.Count <= z.Length; j += Vector256<float>.Count)
                VectorExpF.Exp(Vector256.Create(z.Slice(j, Vector256<float>.Count)) - m).CopyTo(s[j..]);
        }
        for (; j < z.Length; j++)
            s[j] = MathF.Exp(z[j] - max);
        float sum = 0f;
        for (int e = 0; e < s.Length; e++)
            sum += s[e];
        for (int e = 0; e < s.Length; e++)
            s[e] /= sum;
    }

    /// <summary>Softmax backward: <c>dz = s ⊙ (ds − Σ s·ds)</c> per row.</summary>
    /// <param name="scores">s: [T, E], the forward output.</param>
    /// <param name="gradScores">ds: [T, E].</param>
    /// <param name="gradLogits">Output dz: [T, E] (may alias <paramref name="gradScores"/>).</param>
    /// <param name="columns">E, the row length (one score per expert).</param>
    /// <exception cref="ArgumentException">Lengths differ or are not a multiple of
    /// <paramref name="columns"/>.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxBackward(
        ReadOnlySpan<float> scores,
        ReadOnlySpan<float> gradScores,
        Span<float> gradLogits,
        int columns
    )
    {
        int rows = CheckRows(scores.Length, gradScores.Length, columns, nameof(gradScores));
        CheckRows(scores.Length, gradLogits.Length, columns, nameof(gradLogits));
        for (int t = 0; t < rows; t++)
        {
            ReadOnlySpan<float> s = scores.Slice(t * columns, columns);
            ReadOnlySpan<float> ds = gradScores.Slice(t * columns, columns);
            Span<float> dz = gradLogits.Slice(t * columns, columns);
            float dot = 0f;
            for (int e = 0; e < columns; e++)
                dot += s[e] * ds[e];
            for (int e = 0; e < columns; e++)
                dz[e] = s[e] * (ds[e] - dot);
        }
    }

    /// <summary>Element-wise <c>1 / (1 + exp(−z))</c>.</summary>
    /// <param name="logits">z: any length.</param>
    /// <param name="scores">Output, same length (may alias).</param>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public static unsafe void Sigmoid(ReadOnlySpan<float> logits, Span<float> scores)
    {
        CheckSame(logits.Length, scores.Length, nameof(scores));
        fixed (float* pz = logits)
        fixed (float* ps = scores)
        {
            nint z0 = (nint)pz,
                s0 = (nint)ps;
            // Element-wise: chunks over threads, eight lanes at a time, compute exactly what one scalar loop would.
            HostParallel.For(logits.Length, 8, (start, end) => SigmoidRange((float*)z0, (float*)s0, start, end));
        }
    }

    // Optimized at once: called a few times per step, the vector loop would run unoptimized (tier 0) for many steps.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SigmoidRange(float* z, float* s, int start, int end)
    {
        int i = start;
        if (VectorExpF.IsAvailable)
        {
            for (; i + Vector256<float>.Count <= end; i += Vector256<float>.Count)
            {
                Vector256<float> e = VectorExpF.Exp(-Vector256.Load(z + i));
                (Vector256<float>.One / (Vector256<float>.One + e)).Store(s + i);
            }
        }
        for (; i < end; i++)
            s[i] = 1f / (1f + MathF.Exp(-z[i]));
    }

    /// <summary>Sigmoid backward: <c>dz = ds · s · (1 − s)</c>.</summary>
    /// <param name="scores">s, the forward output.</param>
    /// <param name="gradScores">ds, the gradient of the loss w.r.t. the scores.</param>
    /// <param name="gradLogits">Output dz (may alias <paramref name="gradScores"/>).</param>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SigmoidBackward(
        ReadOnlySpan<float> scores,
        ReadOnlySpan<float> gradScores,
        Span<float> gradLogits
    )
    {
        CheckSame(scores.Length, gradScores.Length, nameof(gradScores));
        CheckSame(scores.Length, gradLogits.Length, nameof(gradLogits));
        for (int i = 0; i < scores.Length; i++)
            gradLogits[i] = gradScores[i] * scores[i] * (1f - scores[i]);
    }

    private static int CheckRows(int inputLength, int outputLength, int columns, string outputName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (inputLength % columns != 0)
        {
            throw new ArgumentException(
                $"length {inputLength} is not a multiple of the row length {columns}",
                nameof(columns)
            );
        }
        CheckSame(inputLength, outputLength, outputName);
        return inputLength / columns;
    }

    private static void CheckSame(int expected, int actual, string name)
    {
        if (expected != actual)
        {
            throw new ArgumentException($"{name} has {actual} elements but the input has {expected}", name);
        }
    }
}
