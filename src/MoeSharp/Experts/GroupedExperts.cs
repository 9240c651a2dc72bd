using MoeSharp.Compute;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Experts;

/// <summary>
/// torchtitan's <c>GroupedExperts</c>: the SwiGLU experts that live on this rank, applied to expert-major
/// rows (all rows of local expert 0, then expert 1, …): <c>y = (silu(x·w1ᵀ) ⊙ (x·w3ᵀ)) · w2ᵀ</c> per expert.
/// </summary>
/// <remarks>
/// On the host each row's output depends only on that row and its expert's weights (row-invariant GEMMs), so
/// the output does not change with the batch, the rank or the other experts' loads; a device backend's BLAS
/// may block differently per batch size (float32 tolerance).
/// </remarks>
public sealed class GroupedExperts : IRoutedRowPlacement
{
    private readonly ILayerKernels _kernels;
    private (Parameter W1, Parameter W2, Parameter W3)? _parameters;
    private BFloat16WeightCopies? _copies;

    /// <summary>Creates experts with zero weights (fill <see cref="W1"/>, <see cref="W2"/>,
    /// <see cref="W3"/>).</summary>
    /// <param name="numLocalExperts">E_local, the experts on this rank.</param>
    /// <param name="dim">D, the model dimension.</param>
    /// <param name="hidden">H, each expert's hidden dimension.</param>
    /// <param name="kernels">Where the weights live and the products run; the host when null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    /// <exception cref="SizeLimitException">E_local · H · D exceeds what one tensor can index.</exception>
    public GroupedExperts(int numLocalExperts, int dim, int hidden, ILayerKernels? kernels = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLocalExperts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hidden);
        MemoryBudget.EnsureTensorFits(
            MemoryBudget.Multiply(MemoryBudget.Multiply(numLocalExperts, hidden), dim),
            $"an expert weight tensor [{numLocalExperts}, {hidden}, {dim}]"
        );
        _kernels = kernels ?? new HostLayerKernels();
        NumLocalExperts = numLocalExperts;
        Dim = dim;
        Hidden = hidden;
        W1 = _kernels.RentZeros(DType.Float32, numLocalExperts, hidden, dim);
        W2 = _kernels.RentZeros(DType.Float32, numLocalExperts, dim, hidden);
        W3 = _kernels.RentZeros(DType.Float32, numLocalExperts, hidden, dim);
    }

    /// <summary>E_local, the experts on this rank (the leading axis of the weights).</summary>
    public int NumLocalExperts { get; }

    /// <summary>D, the model dimension: the length of an input and an output row.</summary>
    public int Dim { get; }

    /// <summary>H, each expert's hidden dimension (the length of its gate, up and activation rows).</summary>
    public int Hidden { get; }

    /// <summary>Gate projections: [E_local, H, D] float32.</summary>
    public Tensor W1 { get; }

    /// <summary>Down projections: [E_local, D, H] float32.</summary>
    public Tensor W2 { get; }

    /// <summary>Up projections: [E_local, H, D] float32.</summary>
    public Tensor W3 { get; }

    /// <summary>
    /// Says that <see cref="W1"/>, <see cref="W2"/> or <see cref="W3"/> were written other than by the forward's own
    /// cast or an <see cref="AdamW"/> step over the layer's parameters (e.g. values copied in after a forward), so the
    /// padded experts' persistent bfloat16 copies are cast again before the next forward reads them. Checkpoint loads
    /// call it; code that writes the weight tensors directly after a forward must call it too.
    /// </summary>
    public void MarkWeightsChanged() => _copies?.MarkStale();

    /// <summary>
    /// The layer's parameters over <see cref="W1"/>, <see cref="W2"/>, <see cref="W3"/>: with them the padded experts
    /// keep persistent bfloat16 copies that AdamW writes in its pass (<see cref="BFloat16WeightCopies"/>); without
    /// them (experts used on their own) each padded forward casts the weights into its own tensors.
    /// </summary>
    internal void AttachParameters(Parameter w1, Parameter w2, Parameter w3)
    {
        if (w1.Value != W1 || w2.Value != W2 || w3.Value != W3)
            throw new ArgumentException("the parameters must hold the experts' own weight tensors");
        _parameters = (w1, w2, w3);
    }

    /// <summary>Returns the persistent bfloat16 copies (if any) to the kernels' allocator and detaches them from the
    /// parameters.</summary>
    internal void ReleaseCopies()
    {
        if (_copies is null)
            return;
        if (_parameters is var (w1, w2, w3))
            w1.Shadow = w2.Shadow = w3.Shadow = null;
        _kernels.Allocator.Return(_copies.GateUp);
        _kernels.Allocator.Return(_copies.Down);
        _copies = null;
    }

    /// <summary>
    /// Whether a layer's dispatch may write the routed rows straight into the padded experts' layout
    /// (<see cref="RowPlacement"/>); on by default. Off, the padded experts pad and unpad the rows themselves (the
    /// same values, one pass more each way): for comparing the two.
    /// </summary>
    internal bool PlaceRoutedRows { get; set; } = true;

    /// <summary>
    /// Where a dispatch may write these experts' routed rows (<see cref="IRoutedRowPlacement"/>): the padded bfloat16
    /// layout when the kernels have padded experts; null otherwise (the packed rows).
    /// </summary>
    internal IRoutedRowPlacement? RowPlacement => PlaceRoutedRows && _kernels.PaddedExperts is not null ? this : null;

    /// <inheritdoc />
    PaddedGroups? IRoutedRowPlacement.Place(ReadOnlySpan<int> rowsPerLocalExpert)
    {
        if (_kernels.PaddedExperts is not { } padded || rowsPerLocalExpert.Length != NumLocalExperts)
            return null;
        var counts = new long[rowsPerLocalExpert.Length];
        for (int e = 0; e < counts.Length; e++)
            counts[e] = rowsPerLocalExpert[e];
        return PaddedLayout(padded, counts);
    }

    /// <inheritdoc />
    void IRoutedRowPlacement.WriteTokenRows(Tensor tokens, int tokenRowOffset, TokenScatter map, Tensor rows) =>
        (
            _kernels.PaddedExperts ?? throw new InvalidOperationException("the kernels no longer offer padded experts")
        ).PlaceTokenRows(tokens, tokenRowOffset, map, rows);

    /// <summary>
    /// The padded layout of these counts when the padded experts take them: <see cref="IPaddedExpertKernels.Plan"/>
    /// accepts the padding and the padded tensors (up to 2H values per padded row) fit one tensor's index range.
    /// </summary>
    private PaddedGroups? PaddedLayout(IPaddedExpertKernels padded, long[] counts)
    {
        if (padded.Plan(counts) is not { } layout)
            return null;
        if ((long)layout.PaddedRows * Math.Max(Dim, 2 * Hidden) <= int.MaxValue)
            return layout;
        _kernels.Allocator.Return(layout.Table);
        return null;
    }

    /// <summary>Runs every local expert on its rows.</summary>
    /// <param name="xRouted">Expert-major rows: [R, D] float32 (kept by reference for the backward).</param>
    /// <param name="tokensPerLocalExpert">[E_local] rows per local expert, summing to R (zeros allowed).</param>
    /// <returns>The output rows [R, D] and the saved activations.</returns>
    /// <exception cref="ArgumentException">A shape is wrong, a count is negative or the counts do not sum to
    /// R.</exception>
    public SwiGluForwardResult Forward(Tensor xRouted, ReadOnlySpan<long> tokensPerLocalExpert)
    {
        int rows = CheckRows(xRouted, nameof(xRouted));
        long[] counts = CheckCounts(tokensPerLocalExpert, rows);
        if (_kernels.PaddedExperts is { } padded && PaddedLayout(padded, counts) is { } layout)
            return ForwardPadded(padded, layout, xRouted, placed: false);
        int h = Hidden,
            d = Dim;
        using var scope = new TensorScope(_kernels.Allocator);
        Tensor gate = scope.Rent(DType.Float32, rows, h);
        Tensor up = scope.Rent(DType.Float32, rows, h);
        Tensor activation = scope.Rent(DType.Float32, rows, h);
        Tensor output = scope.Rent(DType.Float32, rows, d);

        // g = x·w1ᵀ and u = x·w3ᵀ per expert, a = silu(g) ⊙ u on every row at once (element-wise), y = a·w2ᵀ per
        // expert.
        IGemmKernels gemm = _kernels.Gemm;
        gemm.GroupedMatMulTransposeB(xRouted, W1, gate, counts, h, d);
        gemm.GroupedMatMulTransposeB(xRouted, W3, up, counts, h, d);
        _kernels.Elementwise.SwiGluForward(gate, up, activation);
        gemm.GroupedMatMulTransposeB(activation, W2, output, counts, d, h);
        return new SwiGluForwardResult(
            scope.Keep(output),
            xRouted,
            scope.Keep(gate),
            scope.Keep(up),
            scope.Keep(activation),
            counts
        );
    }

    /// <summary>
    /// <see cref="Forward"/> on rows a dispatch already wrote in the padded layout (<see cref="RowPlacement"/>):
    /// no padding pass before the products, and the output stays padded (float32 <c>[G·capacity, D]</c>, the rows the
    /// dispatch's combine reads); the backward takes its gradient padded in bfloat16 and returns dx padded in float32.
    /// </summary>
    /// <param name="placedRows">bfloat16 <c>[G·capacity, D]</c>, zeros after each expert's rows (kept by reference
    /// for the backward; the caller keeps owning it).</param>
    /// <param name="layout">The layout <see cref="IRoutedRowPlacement.Place"/> gave; its table is this forward's
    /// from now on.</param>
    internal SwiGluForwardResult ForwardPlaced(Tensor placedRows, PaddedGroups layout)
    {
        ArgumentNullException.ThrowIfNull(placedRows);
        ArgumentNullException.ThrowIfNull(layout);
        IPaddedExpertKernels padded =
            _kernels.PaddedExperts
            ?? throw new InvalidOperationException("rows were placed for padded experts that the kernels do not offer");
        if (
            placedRows.DType != DType.BFloat16
            || placedRows.Rank != 2
            || placedRows.Dim(0) != layout.PaddedRows
            || placedRows.Dim(1) != Dim
            || layout.Groups != NumLocalExperts
        )
        {
            throw new ArgumentException(
                $"placed rows must be bfloat16 [{layout.PaddedRows}, {Dim}] for {NumLocalExperts} experts but are "
                    + $"{placedRows} for {layout.Groups}",
                nameof(placedRows)
            );
        }
        return ForwardPadded(padded, layout, placedRows, placed: true);
    }

    /// <summary>Gradients of the input rows and of every local expert's weights.</summary>
    /// <param name="forward">The result of <see cref="Forward"/> on these experts.</param>
    /// <param name="gradOutput">dy: [R, D] float32.</param>
    /// <returns>dx [R, D] and dw1, dw2, dw3 shaped like the weights (zero for experts without rows).</returns>
    /// <exception cref="ArgumentException">A shape is wrong.</exception>
    public SwiGluGradients Backward(SwiGluForwardResult forward, Tensor gradOutput) =>
        Backward(forward, gradOutput, null);

    /// <summary>
    /// <see cref="Backward(SwiGluForwardResult, Tensor)"/> with the weight gradients written into
    /// <paramref name="into"/> (overwritten, as if the reduction over rows started from zero there). The padded path
    /// writes every expert's matrix, so it neither clears them first nor reads them back in its products (on an H200
    /// at qwen3 that is 2.4 GB of clearing and 2.4 GB of reading less); so do the grouped products when every expert
    /// has rows (a chain from zero is the chain from cleared memory); otherwise they clear and accumulate.
    /// </summary>
    internal SwiGluGradients BackwardInto(SwiGluForwardResult forward, Tensor gradOutput, SwiGluWeightGradients into)
    {
        ArgumentNullException.ThrowIfNull(forward);
        if (forward.Padded is null && !EveryExpertHasRows(forward.RowsPerExpert))
        {
            _kernels.Dispatch.Rows.Clear(into.GradW1);
            _kernels.Dispatch.Rows.Clear(into.GradW2);
            _kernels.Dispatch.Rows.Clear(into.GradW3);
        }
        return Backward(forward, gradOutput, into, overwrite: true);
    }

    /// <summary>
    /// <see cref="Backward(SwiGluForwardResult, Tensor)"/>; when <paramref name="accumulateInto"/> is given,
    /// the weight gradients continue the reduction over rows from its GradW1/2/3 (updated in place and
    /// returned) instead of starting from zero.
    /// </summary>
    internal SwiGluGradients Backward(
        SwiGluForwardResult forward,
        Tensor gradOutput,
        SwiGluWeightGradients? accumulateInto,
        bool overwrite = false
    )
    {
        ArgumentNullException.ThrowIfNull(forward);
        int width = forward.Padded is null ? Hidden : 2 * Hidden;
        if (forward.RowsPerExpert.Length != NumLocalExperts || forward.Gate.Rank != 2 || forward.Gate.Dim(1) != width)
        {
            throw new ArgumentException("forward was produced by experts of another shape", nameof(forward));
        }
        int rows = forward.Input.Dim(0);
        if (forward.Padded is { Placed: true } placedState)
        {
            // Rows placed by the dispatch: dy comes padded in bfloat16 like them.
            if (
                gradOutput is not { DType: DType.BFloat16, Rank: 2 }
                || gradOutput.Dim(0) != rows
                || gradOutput.Dim(1) != Dim
            )
            {
                throw new ArgumentException(
                    $"gradOutput must be bfloat16 [{rows}, {Dim}] like the placed rows but is {gradOutput}",
                    nameof(gradOutput)
                );
            }
            return BackwardPadded(placedState, gradOutput, accumulateInto, overwrite);
        }
        CheckGrad(gradOutput, rows, nameof(gradOutput));
        if (forward.Padded is { } state)
            return BackwardPadded(state, gradOutput, accumulateInto, overwrite);
        int h = Hidden,
            d = Dim;
        // Overwriting needs a product for every expert's matrix: an expert without rows gets none.
        bool accumulate = accumulateInto is not null && !(overwrite && EveryExpertHasRows(forward.RowsPerExpert));
        using var scope = new TensorScope(_kernels.Allocator);
        Tensor gradX = scope.Rent(DType.Float32, rows, d);
        Tensor gradW1 =
            accumulateInto?.GradW1 ?? scope.Adopt(_kernels.RentZeros(DType.Float32, NumLocalExperts, h, d))!;
        Tensor gradW2 =
            accumulateInto?.GradW2 ?? scope.Adopt(_kernels.RentZeros(DType.Float32, NumLocalExperts, d, h))!;
        Tensor gradW3 =
            accumulateInto?.GradW3 ?? scope.Adopt(_kernels.RentZeros(DType.Float32, NumLocalExperts, h, d))!;
        Tensor gradActivation = scope.Rent(DType.Float32, rows, h);
        Tensor gradGate = scope.Rent(DType.Float32, rows, h);
        Tensor gradUp = scope.Rent(DType.Float32, rows, h);
        Tensor x = forward.Input,
            activation = forward.Activation;

        long[] counts = forward.RowsPerExpert;
        IGemmKernels gemm = _kernels.Gemm;
        gemm.GroupedMatMul(gradOutput, W2, gradActivation, counts, h, d); // da = dy · w2
        gemm.GroupedMatMulTransposeA(gradOutput, activation, gradW2, counts, d, h, accumulate); // dw2 = dyᵀ · a
        _kernels.Elementwise.SwiGluBackward(gradActivation, forward.Gate, forward.Up, gradGate, gradUp);
        gemm.GroupedMatMulTransposeA(gradGate, x, gradW1, counts, h, d, accumulate); // dw1 = dgᵀ · x
        gemm.GroupedMatMulTransposeA(gradUp, x, gradW3, counts, h, d, accumulate); // dw3 = duᵀ · x
        gemm.GroupedMatMul(gradGate, W1, gradX, counts, d, h); // dx = dg · w1
        gemm.GroupedMatMul(gradUp, W3, gradX, counts, d, h, accumulate: true); //    + du · w3
        scope.Keep(gradX);
        if (accumulateInto is null)
        {
            scope.Keep(gradW1);
            scope.Keep(gradW2);
            scope.Keep(gradW3);
        }
        return new SwiGluGradients(gradX, gradW1, gradW2, gradW3);
    }

    private static bool EveryExpertHasRows(long[] rowsPerExpert) => Array.TrueForAll(rowsPerExpert, r => r > 0);

    /// <summary>
    /// <see cref="Forward"/> over padded groups: x cast to bfloat16 once (padded; unless <paramref name="placed"/>,
    /// where <paramref name="rows"/> already are), the weights once (w1 and w3 stacked), gate and up in one batched
    /// product, SwiGLU into bfloat16, the down projection, and the output rows copied back from the padded layout
    /// (unless placed: then the padded output is the result).
    /// </summary>
    private SwiGluForwardResult ForwardPadded(
        IPaddedExpertKernels padded,
        PaddedGroups layout,
        Tensor rows,
        bool placed
    )
    {
        long[] counts = layout.RowsPerGroup.ToArray();
        int h = Hidden,
            d = Dim,
            e = NumLocalExperts,
            paddedRows = layout.PaddedRows;
        using var scope = new TensorScope(_kernels.Allocator);
        scope.Adopt(layout.Table);
        Tensor x = placed ? rows : scope.Rent(DType.BFloat16, paddedRows, d);
        (Tensor gateUpWeights, Tensor downWeights) = BFloat16Weights(padded, scope);
        Tensor gateUp = scope.Rent(DType.Float32, paddedRows, 2 * h);
        Tensor activation = scope.Rent(DType.BFloat16, paddedRows, h);
        Tensor paddedOutput = scope.Rent(DType.Float32, paddedRows, d);
        if (!placed)
            padded.PadRows(rows, layout, x);
        padded.BatchedMatMulTransposeB(x, gateUpWeights, gateUp, layout, new(0, 2 * h, d)); // [g | u] = x·[w1; w3]ᵀ
        padded.SwiGluForward(gateUp, activation);
        padded.BatchedMatMulTransposeB(activation, downWeights, paddedOutput, layout, new(0, d, h)); // y = a·w2ᵀ
        Tensor output = paddedOutput;
        if (!placed)
        {
            output = scope.Rent(DType.Float32, rows.Dim(0), d);
            padded.UnpadRows(paddedOutput, layout, output, accumulate: false);
        }
        var state = new PaddedExpertsState(layout, x, gateUp, activation, gateUpWeights, downWeights, _copies is null)
        {
            Placed = placed,
        };
        foreach (Tensor t in state.Tensors)
            scope.Keep(t);
        return new SwiGluForwardResult(scope.Keep(output), rows, state, counts);
    }

    /// <summary>
    /// The bfloat16 weights a padded forward reads: the persistent copies when the layer's parameters are attached
    /// (cast again only when stale), else a cast into tensors of the forward's scope.
    /// </summary>
    private (Tensor GateUp, Tensor Down) BFloat16Weights(IPaddedExpertKernels padded, TensorScope scope)
    {
        int h = Hidden,
            d = Dim,
            e = NumLocalExperts;
        if (_parameters is not var (w1, w2, w3))
        {
            Tensor gateUp = scope.Rent(DType.BFloat16, e, 2 * h, d);
            Tensor down = scope.Rent(DType.BFloat16, e, d, h);
            padded.StackWeights(W1, W3, W2, gateUp, down);
            return (gateUp, down);
        }
        if (_copies is null)
        {
            _copies = new BFloat16WeightCopies(
                _kernels.Allocator.Rent(DType.BFloat16, e, 2 * h, d),
                _kernels.Allocator.Rent(DType.BFloat16, e, d, h)
            );
            _copies.Attach(w1, w2, w3, e, h, d);
        }
        if (!_copies.IsCurrent)
        {
            padded.StackWeights(W1, W3, W2, _copies.GateUp, _copies.Down);
            _copies.MarkAllWritten();
        }
        return (_copies.GateUp, _copies.Down);
    }

    /// <summary>
    /// The backward of <see cref="ForwardPadded"/>: dy padded to bfloat16 once; da = dy·w2 and dw2 = dyᵀ·a; SwiGLU's
    /// backward into the stacked bfloat16 [dg | du]; dw1 and dw3 from its two column blocks; dx = [dg | du]·[w1; w3]
    /// in one product, copied back from the padded layout.
    /// </summary>
    private SwiGluGradients BackwardPadded(
        PaddedExpertsState state,
        Tensor gradOutput,
        SwiGluWeightGradients? accumulateInto,
        bool overwrite
    )
    {
        IPaddedExpertKernels padded =
            _kernels.PaddedExperts
            ?? throw new InvalidOperationException("the forward ran padded experts that the kernels no longer offer");
        int h = Hidden,
            d = Dim,
            e = NumLocalExperts;
        PaddedGroups layout = state.Layout;
        int paddedRows = layout.PaddedRows;
        bool accumulate = accumulateInto is not null && !overwrite;
        using var scope = new TensorScope(_kernels.Allocator);
        // Every group's matrix is written (zero rows add nothing), so the gradients need no clearing.
        Tensor gradW1 = accumulateInto?.GradW1 ?? scope.Rent(DType.Float32, e, h, d);
        Tensor gradW2 = accumulateInto?.GradW2 ?? scope.Rent(DType.Float32, e, d, h);
        Tensor gradW3 = accumulateInto?.GradW3 ?? scope.Rent(DType.Float32, e, h, d);
        Tensor dy = state.Placed ? gradOutput : scope.Rent(DType.BFloat16, paddedRows, d);
        Tensor gradActivation = scope.Rent(DType.Float32, paddedRows, h);
        Tensor gradGateUp = scope.Rent(DType.BFloat16, paddedRows, 2 * h);
        Tensor paddedGradX = scope.Rent(DType.Float32, paddedRows, d);
        if (!state.Placed)
            padded.PadRows(gradOutput, layout, dy);
        padded.BatchedMatMul(dy, state.DownWeights, gradActivation, layout, new(0, h, d)); // da = dy · w2
        padded.BatchedMatMulTransposeA(dy, 0, d, state.Activation, gradW2, layout, new(d, h, 0), accumulate);
        padded.SwiGluBackward(gradActivation, state.GateUp, gradGateUp);
        padded.BatchedMatMulTransposeA(gradGateUp, 0, 2 * h, state.Input, gradW1, layout, new(h, d, 0), accumulate);
        padded.BatchedMatMulTransposeA(gradGateUp, h, 2 * h, state.Input, gradW3, layout, new(h, d, 0), accumulate);
        padded.BatchedMatMul(gradGateUp, state.GateUpWeights, paddedGradX, layout, new(0, d, 2 * h)); // dx
        Tensor gradX = paddedGradX;
        if (!state.Placed)
        {
            gradX = scope.Rent(DType.Float32, gradOutput.Dim(0), d);
            padded.UnpadRows(paddedGradX, layout, gradX, accumulate: false);
        }
        scope.Keep(gradX);
        if (accumulateInto is null)
        {
            scope.Keep(gradW1);
            scope.Keep(gradW2);
            scope.Keep(gradW3);
        }
        return new SwiGluGradients(gradX, gradW1, gradW2, gradW3);
    }

    private int CheckRows(Tensor x, string name)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.DType != DType.Float32 || x.Rank != 2 || x.Dim(1) != Dim)
        {
            throw new ArgumentException($"{name} must be float32 [R, {Dim}] but is {x}", name);
        }
        return x.Dim(0);
    }

    private void CheckGrad(Tensor grad, int rows, string name)
    {
        ArgumentNullException.ThrowIfNull(grad, name);
        if (grad.DType != DType.Float32 || grad.Rank != 2 || grad.Dim(0) != rows || grad.Dim(1) != Dim)
        {
            throw new ArgumentException($"{name} must be float32 [{rows}, {Dim}] but is {grad}", name);
        }
    }

    private long[] CheckCounts(ReadOnlySpan<long> counts, int rows)
    {
        if (counts.Length != NumLocalExperts)
        {
            throw new ArgumentException(
                $"tokensPerLocalExpert has {counts.Length} entries but there are {NumLocalExperts} local experts",
                "tokensPerLocalExpert"
            );
        }
        long total = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] < 0)
            {
                throw new ArgumentOutOfRangeException(
                    "tokensPerLocalExpert",
                    counts[e],
                    $"negative row count for local expert {e}"
                );
            }
            total += counts[e];
        }
        if (total != rows)
        {
            throw new ArgumentException(
                $"tokensPerLocalExpert sums to {total} but xRouted has {rows} rows",
                "tokensPerLocalExpert"
            );
        }
        return counts.ToArray();
    }
}
