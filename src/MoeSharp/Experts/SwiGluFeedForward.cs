using MoeSharp.Compute;

namespace MoeSharp.Experts;

/// <summary>
/// One SwiGLU feed-forward on a block of rows, <c>y = (silu(x·w1ᵀ) ⊙ (x·w3ᵀ)) · w2ᵀ</c>, and its backward:
/// the shared math of <see cref="GroupedExperts"/> (one call per local expert) and
/// <see cref="SharedExpert"/> (one call for all tokens).
/// </summary>
internal static class SwiGluFeedForward
{
    /// <summary>Forward on <paramref name="rows"/> rows; keeps g, u and a for the backward.</summary>
    /// <param name="x">[r, D].</param>
    /// <param name="w1">[H, D].</param>
    /// <param name="w2">[D, H].</param>
    /// <param name="w3">[H, D].</param>
    /// <param name="gate">Output g = x·w1ᵀ: [r, H].</param>
    /// <param name="up">Output u = x·w3ᵀ: [r, H].</param>
    /// <param name="activation">Output a = silu(g) ⊙ u: [r, H].</param>
    /// <param name="y">Output a·w2ᵀ: [r, D].</param>
    /// <param name="rows">r.</param>
    /// <param name="dim">D.</param>
    /// <param name="hidden">H.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w1, ReadOnlySpan<float> w2, ReadOnlySpan<float> w3,
        Span<float> gate, Span<float> up, Span<float> activation, Span<float> y, int rows, int dim, int hidden)
    {
        HostGemm.MatMulTransposeB(x, w1, gate, rows, hidden, dim);
        HostGemm.MatMulTransposeB(x, w3, up, rows, hidden, dim);
        HostSwiGlu.Forward(gate, up, activation);
        HostGemm.MatMulTransposeB(activation, w2, y, rows, dim, hidden);
    }

    /// <summary>
    /// Backward on <paramref name="rows"/> rows: writes dx and overwrites dw1, dw2, dw3 (zero when
    /// <paramref name="rows"/> is 0), or, with <paramref name="accumulateWeights"/>, continues their
    /// fused multiply-add chains over the rows from the values they hold (so splitting the rows into
    /// consecutive blocks accumulated in order gives the same bits as one call on all rows).
    /// <paramref name="scratch"/> needs <c>3·r·H</c> floats.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> activation,
        ReadOnlySpan<float> dy, ReadOnlySpan<float> w1, ReadOnlySpan<float> w2, ReadOnlySpan<float> w3,
        Span<float> dx, Span<float> dw1, Span<float> dw2, Span<float> dw3, Span<float> scratch, int rows, int dim, int hidden,
        bool accumulateWeights = false)
    {
        int rh = rows * hidden;
        Span<float> da = scratch.Slice(0, rh);
        Span<float> dGate = scratch.Slice(rh, rh);
        Span<float> dUp = scratch.Slice(2 * rh, rh);

        HostGemm.MatMul(dy, w2, da, rows, hidden, dim);                 // da = dy · w2
        HostGemm.MatMulTransposeA(dy, activation, dw2, dim, hidden, rows, accumulateWeights); // dw2 = dyᵀ · a
        HostSwiGlu.Backward(da, gate, up, dGate, dUp);
        HostGemm.MatMulTransposeA(dGate, x, dw1, hidden, dim, rows, accumulateWeights);    // dw1 = dgᵀ · x
        HostGemm.MatMulTransposeA(dUp, x, dw3, hidden, dim, rows, accumulateWeights);      // dw3 = duᵀ · x
        HostGemm.MatMul(dGate, w1, dx, rows, dim, hidden);              // dx = dg · w1
        HostGemm.MatMul(dUp, w3, dx, rows, dim, hidden, accumulate: true); //    + du · w3
    }
}
