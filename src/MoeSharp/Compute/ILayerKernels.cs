using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The layer's half of the backend seam: the matrix products, element-wise functions, routing and optimizer
/// step a <c>MoeLayer</c> runs on its own tensors, next to <see cref="Dispatch"/> (the dispatcher's kernels on the
/// same device). Router, experts, layer and AdamW are written once against this interface:
/// <see cref="HostLayerKernels"/> runs them on the host, the CUDA backend on a GPU (cuBLAS and ILGPU kernels).
/// </summary>
/// <remarks>
/// <para>
/// Matrices are row-major float32 tensors addressed by a first row (activations: <c>[rows, ·]</c> blocks of a
/// <c>[R, ·]</c> tensor) or by an index into a stack (weights: matrix <c>index</c> of a
/// <c>[E, ·, ·]</c> tensor, or 0 of a <c>[·, ·]</c> one). <c>accumulate</c> continues from the output's values
/// instead of zero.
/// </para>
/// <para>
/// Rounding: the host backend is bitwise deterministic and row-invariant (<see cref="HostGemm"/>'s fused
/// multiply-add chains in ascending reduction order). A GPU backend's products follow its BLAS library's
/// blocking, so they agree with the host within float32 tolerance, not bitwise.
/// </para>
/// </remarks>
public interface ILayerKernels
{
    /// <summary>The dispatcher's kernels on the same device: allocation, copies, clears.</summary>
    IMoeKernels Dispatch { get; }

    /// <summary>A tensor of this backend for the layer's own use, contents undefined.</summary>
    Tensor Allocate(DType dtype, params int[] shape);

    /// <summary>A zero tensor of this backend.</summary>
    Tensor Zeros(DType dtype, params int[] shape);

    /// <summary>Hands back a tensor from <see cref="Allocate"/> or <see cref="Zeros"/> for reuse (a no-op on the host, where the GC reclaims it).</summary>
    void Release(Tensor? tensor);

    /// <summary><c>c[cRow…+rows, N] (+)= a[aRow…+rows, K] · B[index]ᵀ</c> with <c>B[index]</c> <c>[N, K]</c>: the linear layer <c>x · Wᵀ</c>.</summary>
    void MatMulTransposeB(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false);

    /// <summary><c>c[cRow…+rows, N] (+)= a[aRow…+rows, K] · B[index]</c> with <c>B[index]</c> <c>[K, N]</c>: input gradients <c>dy · W</c>.</summary>
    void MatMul(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false);

    /// <summary>
    /// <c>C[index] (+)= a[aRow…+rows, M]ᵀ · b[bRow…+rows, N]</c> with <c>C[index]</c> <c>[M, N]</c>: weight gradients
    /// <c>dyᵀ · x</c>, reducing over the rows (ascending on the host).
    /// </summary>
    void MatMulTransposeA(Tensor a, int aRow, Tensor b, int bRow, int rows, int m, int n, Tensor c, int index, bool accumulate = false);

    /// <summary>
    /// <see cref="MatMulTransposeB"/> for every group of consecutive rows: rows of group g (<paramref name="rowsPerGroup"/>,
    /// in order from row 0) times <c>B[g]ᵀ</c>. Groups without rows leave their output rows alone (there are none).
    /// A backend may batch the groups (one cast of each operand, one launch).
    /// </summary>
    void GroupedMatMulTransposeB(Tensor a, ReadOnlySpan<long> rowsPerGroup, Tensor b, int n, int k, Tensor c, bool accumulate = false)
        => ForEachGroup(rowsPerGroup, (g, start, rows) => MatMulTransposeB(a, start, rows, b, g, n, k, c, start, accumulate));

    /// <summary><see cref="MatMul"/> for every group of consecutive rows, with <c>B[g]</c>.</summary>
    void GroupedMatMul(Tensor a, ReadOnlySpan<long> rowsPerGroup, Tensor b, int n, int k, Tensor c, bool accumulate = false)
        => ForEachGroup(rowsPerGroup, (g, start, rows) => MatMul(a, start, rows, b, g, n, k, c, start, accumulate));

    /// <summary>
    /// <see cref="MatMulTransposeA"/> for every group of consecutive rows into <c>C[g]</c>; groups without rows leave
    /// <c>C[g]</c> as it is.
    /// </summary>
    void GroupedMatMulTransposeA(Tensor a, Tensor b, ReadOnlySpan<long> rowsPerGroup, int m, int n, Tensor c, bool accumulate = false)
        => ForEachGroup(rowsPerGroup, (g, start, rows) => MatMulTransposeA(a, start, b, start, rows, m, n, c, g, accumulate));

    /// <summary>
    /// Calls <paramref name="body"/>(group, first row, rows) for every group that has rows, in order; the groups' rows
    /// follow each other from row 0.
    /// </summary>
    static void ForEachGroup(ReadOnlySpan<long> rowsPerGroup, Action<int, int, int> body)
    {
        int start = 0;
        for (int g = 0; g < rowsPerGroup.Length; g++)
        {
            int rows = (int)rowsPerGroup[g];
            if (rows > 0) body(g, start, rows);
            start += rows;
        }
    }

    /// <summary><c>activation = silu(gate) ⊙ up</c> element-wise (as <see cref="HostSwiGlu.Forward"/>).</summary>
    void SwiGluForward(Tensor gate, Tensor up, Tensor activation);

    /// <summary>Gradients of gate and up from the activation's (as <see cref="HostSwiGlu.Backward"/>).</summary>
    void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp);

    /// <summary>Row-wise softmax or element-wise sigmoid of <c>[T, E]</c> logits (<paramref name="scores"/> may alias them).</summary>
    void Score(ScoreFunction function, Tensor logits, Tensor scores);

    /// <summary>Gradient of the logits from the scores' (<paramref name="gradLogits"/> may alias <paramref name="gradScores"/>).</summary>
    void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits);

    /// <summary>
    /// Token-choice top-k of <c>scores + expertBias</c> among the eligible experts (node-limited when
    /// <paramref name="numExpertGroups"/> &gt; 0: the <paramref name="numLimitedGroups"/> groups with the best sum
    /// of their two best biased scores), ties toward the lower id, NaN last; ids ascending per token; top scores
    /// the chosen unbiased scores, divided by their sum + <paramref name="normEpsilon"/> when
    /// <paramref name="routeNorm"/>, times <paramref name="routeScale"/>. Bitwise the same on every backend.
    /// </summary>
    /// <param name="scores">[T, E] float32.</param>
    /// <param name="expertBias">[E] float32 bias for choosing only (a tensor of this backend), or null.</param>
    /// <param name="numExpertGroups">G, or 0.</param>
    /// <param name="numLimitedGroups">Groups kept per token when G &gt; 0.</param>
    /// <param name="routeNorm">Normalize the chosen scores.</param>
    /// <param name="normEpsilon">Added to their sum.</param>
    /// <param name="routeScale">Factor on every top score.</param>
    /// <param name="topScores">Output [T, K] float32.</param>
    /// <param name="expertIds">Output [T, K] int64.</param>
    /// <param name="zeroDiscardedGroups">
    /// When G &gt; 0: false leaves the experts of the groups not kept out of the choice (torchtitan); true lets them
    /// compete with the choice score +0 (transformers' DeepSeek-V3, <c>masked_fill(~score_mask, 0.0)</c>), which
    /// matters when fewer than K kept experts have a positive biased score.
    /// </param>
    void TopK(Tensor scores, Tensor? expertBias, int numExpertGroups, int numLimitedGroups, bool routeNorm, float normEpsilon,
        float routeScale, Tensor topScores, Tensor expertIds, bool zeroDiscardedGroups = false);

    /// <summary>
    /// Backward of <see cref="TopK"/>'s top scores into <c>[T, E]</c> score gradients: zero for unchosen experts;
    /// for chosen ones <c>scale · g</c>, or with route norm <c>scale · (g_j − Σ_i g_i p_i / S) / S</c>,
    /// <c>S = Σ p + ε</c>.
    /// </summary>
    void TopScoresBackward(Tensor scores, Tensor expertIds, Tensor gradTopScores, bool routeNorm, float normEpsilon, float routeScale,
        Tensor gradScores);

    /// <summary>Tokens per expert of <c>[T, K]</c> int64 ids: a host array (one small copy from a device).</summary>
    long[] CountPerExpert(Tensor expertIds, int numExperts);

    /// <summary><c>into[intoRow…+rows.Rows] += rows</c>, element-wise.</summary>
    void AddRows(Tensor into, int intoRow, Tensor rows);

    /// <summary>
    /// One AdamW update of <paramref name="value"/> in place with its moment estimates, in PyTorch's order:
    /// <c>m = β1·m + (1−β1)·g</c>, <c>v = β2·v + (1−β2)·g·g</c>,
    /// <c>θ = θ·decay − stepSize·m / (√v / bias2Sqrt + ε)</c>.
    /// </summary>
    void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars scalars);
}

/// <summary>The scalars of one AdamW step (bias corrections folded in).</summary>
/// <param name="Beta1">β1.</param>
/// <param name="Beta2">β2.</param>
/// <param name="StepSize">lr / (1 − β1^t).</param>
/// <param name="Bias2Sqrt">√(1 − β2^t).</param>
/// <param name="Epsilon">ε.</param>
/// <param name="Decay">1 − lr·weight decay.</param>
public readonly record struct AdamWScalars(float Beta1, float Beta2, float StepSize, float Bias2Sqrt, float Epsilon, float Decay);
