using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// A decorator that times every call of another layer backend, as <see cref="ProfilingMoeKernels"/> does for the
/// dispatcher: the device is synchronized before and after each call (<see cref="KernelCallTimes"/> with
/// <see cref="IComputeDevice.Synchronize"/> of <see cref="ILayerKernels.Dispatch"/>), so its device work, and no one
/// else's, is charged to it. Grouped products are timed as one call each, whatever the backend does inside. For
/// finding where a layer step goes; the extra synchronization makes the step slower.
/// </summary>
/// <param name="inner">The backend to time.</param>
public sealed class ProfilingLayerKernels(ILayerKernels inner) : ILayerKernels
{
    private readonly KernelCallTimes _times = new(inner.Dispatch.Device.Synchronize);

    /// <summary>Seconds and calls per kernel since the last <see cref="Reset"/>.</summary>
    public IReadOnlyDictionary<string, (double Seconds, int Calls)> Totals => _times.Totals;

    /// <summary>Forgets the totals (after warm-up, say).</summary>
    public void Reset() => _times.Reset();

    /// <inheritdoc />
    public IMoeKernels Dispatch => inner.Dispatch;

    /// <inheritdoc />
    public Tensor Allocate(DType dtype, params int[] shape) => inner.Allocate(dtype, shape);

    /// <inheritdoc />
    public Tensor Zeros(DType dtype, params int[] shape) => _times.Time(nameof(Zeros), () => inner.Zeros(dtype, shape));

    /// <inheritdoc />
    public void Release(Tensor? tensor) => inner.Release(tensor);

    /// <inheritdoc />
    public void MatMulTransposeB(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false)
        => _times.Time(nameof(MatMulTransposeB), () => inner.MatMulTransposeB(a, aRow, rows, b, index, n, k, c, cRow, accumulate));

    /// <inheritdoc />
    public void MatMul(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false)
        => _times.Time(nameof(MatMul), () => inner.MatMul(a, aRow, rows, b, index, n, k, c, cRow, accumulate));

    /// <inheritdoc />
    public void MatMulTransposeA(Tensor a, int aRow, Tensor b, int bRow, int rows, int m, int n, Tensor c, int index, bool accumulate = false)
        => _times.Time(nameof(MatMulTransposeA), () => inner.MatMulTransposeA(a, aRow, b, bRow, rows, m, n, c, index, accumulate));

    /// <inheritdoc />
    public void GroupedMatMulTransposeB(Tensor a, ReadOnlySpan<long> rowsPerGroup, Tensor b, int n, int k, Tensor c, bool accumulate = false)
    {
        long[] groups = rowsPerGroup.ToArray();
        _times.Time(nameof(GroupedMatMulTransposeB), () => inner.GroupedMatMulTransposeB(a, groups, b, n, k, c, accumulate));
    }

    /// <inheritdoc />
    public void GroupedMatMul(Tensor a, ReadOnlySpan<long> rowsPerGroup, Tensor b, int n, int k, Tensor c, bool accumulate = false)
    {
        long[] groups = rowsPerGroup.ToArray();
        _times.Time(nameof(GroupedMatMul), () => inner.GroupedMatMul(a, groups, b, n, k, c, accumulate));
    }

    /// <inheritdoc />
    public void GroupedMatMulTransposeA(Tensor a, Tensor b, ReadOnlySpan<long> rowsPerGroup, int m, int n, Tensor c, bool accumulate = false)
    {
        long[] groups = rowsPerGroup.ToArray();
        _times.Time(nameof(GroupedMatMulTransposeA), () => inner.GroupedMatMulTransposeA(a, b, groups, m, n, c, accumulate));
    }

    /// <inheritdoc />
    public void SwiGluForward(Tensor gate, Tensor up, Tensor activation)
        => _times.Time(nameof(SwiGluForward), () => inner.SwiGluForward(gate, up, activation));

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp)
        => _times.Time(nameof(SwiGluBackward), () => inner.SwiGluBackward(gradActivation, gate, up, gradGate, gradUp));

    /// <inheritdoc />
    public void Score(ScoreFunction function, Tensor logits, Tensor scores)
        => _times.Time(nameof(Score), () => inner.Score(function, logits, scores));

    /// <inheritdoc />
    public void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits)
        => _times.Time(nameof(ScoreBackward), () => inner.ScoreBackward(function, scores, gradScores, gradLogits));

    /// <inheritdoc />
    public void TopK(Tensor scores, Tensor? expertBias, int numExpertGroups, int numLimitedGroups, bool routeNorm, float normEpsilon,
        float routeScale, Tensor topScores, Tensor expertIds, bool zeroDiscardedGroups = false)
        => _times.Time(nameof(TopK), () => inner.TopK(scores, expertBias, numExpertGroups, numLimitedGroups, routeNorm, normEpsilon, routeScale,
            topScores, expertIds, zeroDiscardedGroups));

    /// <inheritdoc />
    public void TopScoresBackward(Tensor scores, Tensor expertIds, Tensor gradTopScores, bool routeNorm, float normEpsilon, float routeScale,
        Tensor gradScores)
        => _times.Time(nameof(TopScoresBackward), () => inner.TopScoresBackward(scores, expertIds, gradTopScores, routeNorm, normEpsilon, routeScale, gradScores));

    /// <inheritdoc />
    public long[] CountPerExpert(Tensor expertIds, int numExperts) => _times.Time(nameof(CountPerExpert), () => inner.CountPerExpert(expertIds, numExperts));

    /// <inheritdoc />
    public void AddRows(Tensor into, int intoRow, Tensor rows) => _times.Time(nameof(AddRows), () => inner.AddRows(into, intoRow, rows));

    /// <inheritdoc />
    public void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars scalars)
        => _times.Time(nameof(AdamWStep), () => inner.AdamWStep(value, grad, expAvg, expAvgSq, scalars));
}
