using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// A decorator that times every kernel call of another layer backend, as <see cref="ProfilingMoeKernels"/> does for
/// the dispatcher: the device is synchronized before and after each call (<see cref="KernelCallTimes"/> with
/// <see cref="IComputeDevice.Synchronize"/> of <see cref="ILayerKernels.Dispatch"/>), so its device work, and no one
/// else's, is charged to it. Grouped products are timed as one call each, whatever the backend does inside. For
/// finding where a layer step goes; the extra synchronization makes the step slower. It stands in for all four kernel
/// seams itself (one decorator, one table of times); allocation passes straight through.
/// </summary>
/// <param name="inner">The backend to time.</param>
public sealed class ProfilingLayerKernels(ILayerKernels inner)
    : ILayerKernels,
        IGemmKernels,
        IRouterKernels,
        IElementwiseKernels,
        IOptimizerKernels,
        IPaddedExpertKernels
{
    private readonly KernelCallTimes _times = new(inner.Dispatch.Device.Synchronize);

    /// <summary>Seconds and calls per kernel since the last <see cref="Reset"/>.</summary>
    public IReadOnlyDictionary<string, (double Seconds, int Calls)> Totals => _times.Totals;

    /// <summary>Forgets the totals (after warm-up, say).</summary>
    public void Reset() => _times.Reset();

    /// <inheritdoc />
    public IMoeKernels Dispatch => inner.Dispatch;

    /// <inheritdoc />
    public ITensorAllocator Allocator => inner.Allocator;

    /// <inheritdoc />
    public IGemmKernels Gemm => this;

    /// <inheritdoc />
    public bool ContinuesReductionChain => inner.Gemm.ContinuesReductionChain;

    /// <inheritdoc />
    public IRouterKernels Router => this;

    /// <inheritdoc />
    public IElementwiseKernels Elementwise => this;

    /// <inheritdoc />
    public IOptimizerKernels Optimizer => this;

    /// <inheritdoc />
    public IPaddedExpertKernels? PaddedExperts => inner.PaddedExperts is null ? null : this;

    /// <inheritdoc />
    public Tensor RentZeros(DType dtype, params int[] shape) => inner.RentZeros(dtype, shape);

    private IPaddedExpertKernels Padded =>
        inner.PaddedExperts ?? throw new InvalidOperationException("the timed kernels have no padded experts");

    /// <inheritdoc />
    public PaddedGroups? Plan(ReadOnlySpan<long> rowsPerGroup)
    {
        long[] groups = rowsPerGroup.ToArray();
        return _times.Time(nameof(Plan), () => Padded.Plan(groups));
    }

    /// <inheritdoc />
    public void PadRows(Tensor rows, PaddedGroups layout, Tensor padded) =>
        _times.Time(nameof(PadRows), () => Padded.PadRows(rows, layout, padded));

    /// <inheritdoc />
    public void PlaceTokenRows(Tensor tokens, int tokenRowOffset, TokenScatter map, Tensor padded) =>
        _times.Time(nameof(PlaceTokenRows), () => Padded.PlaceTokenRows(tokens, tokenRowOffset, map, padded));

    /// <inheritdoc />
    public void UnpadRows(Tensor padded, PaddedGroups layout, Tensor rows, bool accumulate) =>
        _times.Time(nameof(UnpadRows), () => Padded.UnpadRows(padded, layout, rows, accumulate));

    /// <inheritdoc />
    public void StackWeights(Tensor w1, Tensor w3, Tensor w2, Tensor gateUp, Tensor down) =>
        _times.Time(nameof(StackWeights), () => Padded.StackWeights(w1, w3, w2, gateUp, down));

    /// <inheritdoc />
    public void BatchedMatMulTransposeB(
        Tensor a,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    ) =>
        _times.Time(
            nameof(BatchedMatMulTransposeB),
            () => Padded.BatchedMatMulTransposeB(a, b, c, layout, shape, accumulate)
        );

    /// <inheritdoc />
    public void BatchedMatMul(
        Tensor a,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    ) => _times.Time(nameof(BatchedMatMul), () => Padded.BatchedMatMul(a, b, c, layout, shape, accumulate));

    /// <inheritdoc />
    public void BatchedMatMulTransposeA(
        Tensor a,
        int aColumn,
        int aRowStride,
        Tensor b,
        Tensor c,
        PaddedGroups layout,
        GemmShape shape,
        bool accumulate = false
    ) =>
        _times.Time(
            nameof(BatchedMatMulTransposeA),
            () => Padded.BatchedMatMulTransposeA(a, aColumn, aRowStride, b, c, layout, shape, accumulate)
        );

    /// <inheritdoc />
    public void SwiGluForward(Tensor gateUp, Tensor activation) =>
        _times.Time(nameof(SwiGluForward), () => Padded.SwiGluForward(gateUp, activation));

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gateUp, Tensor gradGateUp) =>
        _times.Time(nameof(SwiGluBackward), () => Padded.SwiGluBackward(gradActivation, gateUp, gradGateUp));

    /// <inheritdoc />
    public void MatMulTransposeB(
        MatrixOperand a,
        MatrixOperand b,
        MatrixOperand c,
        GemmShape shape,
        bool accumulate = false
    ) => _times.Time(nameof(MatMulTransposeB), () => inner.Gemm.MatMulTransposeB(a, b, c, shape, accumulate));

    /// <inheritdoc />
    public void MatMul(MatrixOperand a, MatrixOperand b, MatrixOperand c, GemmShape shape, bool accumulate = false) =>
        _times.Time(nameof(MatMul), () => inner.Gemm.MatMul(a, b, c, shape, accumulate));

    /// <inheritdoc />
    public void MatMulTransposeA(
        MatrixOperand a,
        MatrixOperand b,
        MatrixOperand c,
        GemmShape shape,
        bool accumulate = false
    ) => _times.Time(nameof(MatMulTransposeA), () => inner.Gemm.MatMulTransposeA(a, b, c, shape, accumulate));

    /// <inheritdoc />
    public void GroupedMatMulTransposeB(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false
    )
    {
        long[] groups = rowsPerGroup.ToArray();
        _times.Time(
            nameof(GroupedMatMulTransposeB),
            () => inner.Gemm.GroupedMatMulTransposeB(a, b, c, groups, n, k, accumulate)
        );
    }

    /// <inheritdoc />
    public void GroupedMatMul(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int n,
        int k,
        bool accumulate = false
    )
    {
        long[] groups = rowsPerGroup.ToArray();
        _times.Time(nameof(GroupedMatMul), () => inner.Gemm.GroupedMatMul(a, b, c, groups, n, k, accumulate));
    }

    /// <inheritdoc />
    public void GroupedMatMulTransposeA(
        Tensor a,
        Tensor b,
        Tensor c,
        ReadOnlySpan<long> rowsPerGroup,
        int m,
        int n,
        bool accumulate = false
    )
    {
        long[] groups = rowsPerGroup.ToArray();
        _times.Time(
            nameof(GroupedMatMulTransposeA),
            () => inner.Gemm.GroupedMatMulTransposeA(a, b, c, groups, m, n, accumulate)
        );
    }

    /// <inheritdoc />
    public void SwiGluForward(Tensor gate, Tensor up, Tensor activation) =>
        _times.Time(nameof(SwiGluForward), () => inner.Elementwise.SwiGluForward(gate, up, activation));

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp) =>
        _times.Time(
            nameof(SwiGluBackward),
            () => inner.Elementwise.SwiGluBackward(gradActivation, gate, up, gradGate, gradUp)
        );

    /// <inheritdoc />
    public void AddRows(Tensor into, int intoRow, Tensor rows) =>
        _times.Time(nameof(AddRows), () => inner.Elementwise.AddRows(into, intoRow, rows));

    /// <inheritdoc />
    public void Score(ScoreFunction function, Tensor logits, Tensor scores) =>
        _times.Time(nameof(Score), () => inner.Router.Score(function, logits, scores));

    /// <inheritdoc />
    public void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits) =>
        _times.Time(nameof(ScoreBackward), () => inner.Router.ScoreBackward(function, scores, gradScores, gradLogits));

    /// <inheritdoc />
    public void TopK(Tensor scores, Tensor? expertBias, TopKOptions options, Tensor topScores, Tensor expertIds) =>
        _times.Time(nameof(TopK), () => inner.Router.TopK(scores, expertBias, options, topScores, expertIds));

    /// <inheritdoc />
    public void TopScoresBackward(
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradScores
    ) =>
        _times.Time(
            nameof(TopScoresBackward),
            () => inner.Router.TopScoresBackward(scores, expertIds, gradTopScores, options, gradScores)
        );

    /// <inheritdoc />
    public void ScoreTopK(
        ScoreFunction function,
        Tensor logits,
        Tensor scores,
        Tensor? expertBias,
        TopKOptions options,
        Tensor topScores,
        Tensor expertIds
    ) =>
        _times.Time(
            nameof(ScoreTopK),
            () => inner.Router.ScoreTopK(function, logits, scores, expertBias, options, topScores, expertIds)
        );

    /// <inheritdoc />
    public void TopScoresScoreBackward(
        ScoreFunction function,
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradLogits
    ) =>
        _times.Time(
            nameof(TopScoresScoreBackward),
            () => inner.Router.TopScoresScoreBackward(function, scores, expertIds, gradTopScores, options, gradLogits)
        );

    /// <inheritdoc />
    public void CountPerExpert(Tensor expertIds, Tensor counts) =>
        _times.Time(nameof(CountPerExpert), () => inner.Router.CountPerExpert(expertIds, counts));

    /// <inheritdoc />
    public void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars scalars) =>
        _times.Time(nameof(AdamWStep), () => inner.Optimizer.AdamWStep(value, grad, expAvg, expAvgSq, scalars));

    /// <inheritdoc />
    public bool WritesBFloat16Copies => inner.Optimizer.WritesBFloat16Copies;

    /// <inheritdoc />
    public void AdamWStep(
        Tensor value,
        Tensor grad,
        Tensor expAvg,
        Tensor expAvgSq,
        AdamWScalars scalars,
        BFloat16CopyLayout copy
    ) => _times.Time(nameof(AdamWStep), () => inner.Optimizer.AdamWStep(value, grad, expAvg, expAvgSq, scalars, copy));

    /// <inheritdoc />
    public void AdamWSteps(IReadOnlyList<AdamWTensors> parameters, AdamWScalars scalars) =>
        _times.Time(nameof(AdamWSteps), () => inner.Optimizer.AdamWSteps(parameters, scalars));
}
