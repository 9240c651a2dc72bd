using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Cuda.Cublas;
using MoeSharp.Cuda.Memory;
using MoeSharp.Cuda.Native;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// <see cref="ILayerKernels"/> on an ILGPU accelerator: the layer's matrix products through cuBLAS on a CUDA device
/// (float32, no TF32; or bfloat16 inputs with float32 accumulation, <see cref="BFloat16Products"/>) or a
/// strided-product kernel on ILGPU's CPU accelerator, and ILGPU kernels for SwiGLU, the score
/// functions, top-k (node-limited too), their backward passes, row addition and AdamW. Every kernel is ordered on the
/// accelerator's stream, as the dispatcher's are. One object stands in for the four kernel seams (they share the
/// compiled kernels, the cuBLAS handle and the scratch allocation), handed out by <see cref="Gemm"/>,
/// <see cref="Router"/>, <see cref="Elementwise"/> and <see cref="Optimizer"/>.
/// </summary>
/// <remarks>
/// Tolerance: top-k is bitwise the host's given the same scores; element-wise kernels on CUDA use ILGPU.Algorithms'
/// <c>exp</c> and may contract multiply-adds, so they agree with the host within a few ulp; cuBLAS sums in its own
/// blocking, so products agree within float32 tolerance (the golden layer files' bounds), not bitwise.
/// </remarks>
public sealed partial class IlgpuLayerKernels
    : ILayerKernels,
        IGemmKernels,
        IRouterKernels,
        IElementwiseKernels,
        IOptimizerKernels,
        IDisposable
{
    private readonly IlgpuBackend _backend;
    private readonly Accelerator _acc;
    private readonly CublasRowMajorGemm? _cublas;
    private readonly Action<
        Index1D,
        ArrayView<float>,
        int,
        int,
        int,
        ArrayView<float>,
        int,
        int,
        int,
        ArrayView<float>,
        int,
        int,
        int,
        int
    > _product;
    private readonly Action<
        Index1D,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>
    > _swiGluBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _sigmoidBackward;
    private readonly Action<Index1D, ArrayView<float>, int, ArrayView<float>> _addInto,
        _addIntoTiled;
    private readonly Action<Index1D, ArrayView<float>, int, ArrayView<ushort>> _toBFloat16;
    private readonly Action<Index1D, ArrayView<float>, int, ArrayView<float>> _roundToBFloat16;
    private readonly Action<Index1D, ArrayView<ushort>, ArrayView<float>, int> _widenBFloat16;
    private readonly Action<Index1D, ArrayView<long>, ArrayView<long>> _countIds;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int, ArrayView<ushort>> _padToBFloat16;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int, ArrayView<float>, int> _unpadInto;

    /// <summary>Compiles the kernels on <paramref name="backend"/>'s accelerator; on CUDA also opens a cuBLAS handle on
    /// its stream.</summary>
    /// <param name="backend">The device.</param>
    /// <param name="bfloat16Products">Round every product's inputs to bfloat16 (float32 accumulation and output): see
    /// <see cref="BFloat16Products"/>.</param>
    /// <param name="gemmPath">How grouped bfloat16 products run on cuBLAS; null: <see cref="GemmPathVariable"/>, else
    /// <see cref="BFloat16GemmPath.PaddedBatched"/>.</param>
    /// <exception cref="DllNotFoundException">On CUDA, cuBLAS (<c>libcublas.so.13</c> or <c>.12</c>) cannot be
    /// loaded.</exception>
    public IlgpuLayerKernels(IlgpuBackend backend, bool bfloat16Products = false, BFloat16GemmPath? gemmPath = null)
    {
        _backend = backend ?? throw new ArgumentNullException(nameof(backend));
        BFloat16Products = bfloat16Products;
        _acc = backend.Accelerator;
        _product = _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            int,
            int,
            int,
            ArrayView<float>,
            int,
            int,
            int,
            ArrayView<float>,
            int,
            int,
            int,
            int
        >(LayerKernelBodies.StridedProduct);
        _swiGluBackward = _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>
        >(LayerKernelBodies.SwiGluBackward);
        _sigmoidBackward = _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>
        >(LayerKernelBodies.SigmoidBackward);
        _addInto = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<float>>(
            LayerKernelBodies.AddInto
        );
        _addIntoTiled = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<float>>(
            LayerKernelBodies.AddIntoTiled
        );
        _toBFloat16 = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<ushort>>(
            LayerKernelBodies.ToBFloat16
        );
        _roundToBFloat16 = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<float>>(
            LayerKernelBodies.RoundToBFloat16
        );
        _countIds = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<long>, ArrayView<long>>(
            LayerKernelBodies.CountIds
        );
        _widenBFloat16 = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, int>(
            LayerKernelBodies.WidenBFloat16
        );
        _padToBFloat16 = _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<int>,
            int,
            int,
            int,
            ArrayView<ushort>
        >(LayerKernelBodies.PadToBFloat16);
        _unpadInto = _acc.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<float>,
            ArrayView<int>,
            int,
            int,
            int,
            ArrayView<float>,
            int
        >(LayerKernelBodies.UnpadInto);
        GemmPath =
            gemmPath
            ?? Environment.GetEnvironmentVariable(GemmPathVariable) switch
            {
                "grouped16" => BFloat16GemmPath.GroupedBFloat16Output,
                "each" => BFloat16GemmPath.PerGroup,
                "rounded" => BFloat16GemmPath.RoundedInFloat32,
                _ => BFloat16GemmPath.PaddedBatched,
            };
        if (backend.IsCuda)
            _cublas = new CublasRowMajorGemm(backend.StreamPointer, () => _acc.Bind());
    }

    /// <inheritdoc />
    public IMoeKernels Dispatch => _backend.Kernels;

    /// <summary>
    /// Mixed precision: every product rounds its two inputs to bfloat16 and accumulates in float32 (cuBLAS bfloat16
    /// GEMMs on the tensor cores), while weights, gradients and optimizer state stay float32; the experts' product
    /// inputs are kept in bfloat16 where the padded experts run (<see cref="PaddedExperts"/>). Far faster on a GPU,
    /// and about three significant digits per input instead of seven: results agree with the float32 layer to about
    /// 1e-2, not within the golden files' 1e-4.
    /// </summary>
    public bool BFloat16Products { get; }

    /// <summary>
    /// The environment variable that picks <see cref="GemmPath"/> when the constructor is given none: <c>padded</c>
    /// (the default), <c>grouped16</c>, <c>each</c> or <c>rounded</c>; for measuring the paths against each other.
    /// </summary>
    public const string GemmPathVariable = "MOESHARP_BF16_GEMM";

    /// <summary>How grouped products with <see cref="BFloat16Products"/> run on cuBLAS (see
    /// <see cref="GemmPathVariable"/>).</summary>
    public BFloat16GemmPath GemmPath { get; }

    /// <summary>True when the products run through cuBLAS (a CUDA device).</summary>
    public bool UsesCublas => _cublas is not null;

    /// <inheritdoc />
    public ITensorAllocator Allocator => _backend.Allocator;

    /// <inheritdoc />
    public IGemmKernels Gemm => this;

    /// <inheritdoc />
    public IRouterKernels Router => this;

    /// <inheritdoc />
    public IElementwiseKernels Elementwise => this;

    /// <inheritdoc />
    public IOptimizerKernels Optimizer => this;

    /// <inheritdoc />
    public Tensor RentZeros(DType dtype, params int[] shape)
    {
        Tensor tensor = Rent(dtype, shape);
        Dispatch.Rows.Clear(tensor);
        return tensor;
    }

    private Tensor Rent(DType dtype, params int[] shape) => _backend.Allocator.Rent(dtype, shape);

    private void Return(Tensor? tensor) => _backend.Allocator.Return(tensor);

    /// <inheritdoc />
    public void MatMulTransposeB(
        MatrixOperand a,
        MatrixOperand b,
        MatrixOperand c,
        GemmShape shape,
        bool accumulate = false
    )
    {
        (int rows, int n, int k) = shape;
        Product(
            a.Tensor,
            a.Offset * k,
            k,
            1,
            b.Tensor,
            b.Offset * n * k,
            k,
            1,
            c.Tensor,
            c.Offset * n,
            rows,
            n,
            k,
            accumulate,
            (cublas, pa, pb, pc, half) => cublas.MatMulTransposeB(pa, pb, pc, rows, n, k, accumulate, half)
        );
    }

    /// <inheritdoc />
    public void MatMul(MatrixOperand a, MatrixOperand b, MatrixOperand c, GemmShape shape, bool accumulate = false)
    {
        (int rows, int n, int k) = shape;
        Product(
            a.Tensor,
            a.Offset * k,
            k,
            1,
            b.Tensor,
            b.Offset * k * n,
            1,
            n,
            c.Tensor,
            c.Offset * n,
            rows,
            n,
            k,
            accumulate,
            (cublas, pa, pb, pc, half) => cublas.MatMul(pa, pb, pc, rows, n, k, accumulate, half)
        );
    }

    /// <inheritdoc />
    public void MatMulTransposeA(
        MatrixOperand a,
        MatrixOperand b,
        MatrixOperand c,
        GemmShape shape,
        bool accumulate = false
    )
    {
        (int m, int n, int rows) = shape;
        Product(
            a.Tensor,
            a.Offset * m,
            1,
            m,
            b.Tensor,
            b.Offset * n,
            1,
            n,
            c.Tensor,
            c.Offset * m * n,
            m,
            n,
            rows,
            accumulate,
            (cublas, pa, pb, pc, half) => cublas.MatMulTransposeA(pa, pb, pc, m, n, rows, accumulate, half)
        );
    }

    /// <inheritdoc />
    /// <remarks>On CUDA all groups go in one grouped cuBLAS call, each operand rounded once with bfloat16 products;
    /// elsewhere one product per group.</remarks>
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
        if (!GroupsOnCublas(k))
        {
            IGemmKernels.ForEachGroup(
                rowsPerGroup,
                (g, start, rows) =>
                    MatMulTransposeB(new(a, start), new(b, g), new(c, start), new(rows, n, k), accumulate)
            );
            return;
        }
        RunGroupsOnCublas(
            a,
            b,
            rowsPerGroup,
            accumulate,
            c,
            RowOperands.A | RowOperands.C,
            k,
            0,
            n,
            (o, g, start, rows) =>
                CublasRowMajorGemm.TransposeBProblem(o.A(start * k), o.B(g * n * k), o.C(start * n), rows, n, k)
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
        if (!GroupsOnCublas(k))
        {
            IGemmKernels.ForEachGroup(
                rowsPerGroup,
                (g, start, rows) => MatMul(new(a, start), new(b, g), new(c, start), new(rows, n, k), accumulate)
            );
            return;
        }
        RunGroupsOnCublas(
            a,
            b,
            rowsPerGroup,
            accumulate,
            c,
            RowOperands.A | RowOperands.C,
            k,
            0,
            n,
            (o, g, start, rows) =>
                CublasRowMajorGemm.TimesProblem(o.A(start * k), o.B(g * k * n), o.C(start * n), rows, n, k)
        );
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
        if (!GroupsOnCublas(m))
        {
            IGemmKernels.ForEachGroup(
                rowsPerGroup,
                (g, start, rows) =>
                    MatMulTransposeA(new(a, start), new(b, start), new(c, g), new(m, n, rows), accumulate)
            );
            return;
        }
        RunGroupsOnCublas(
            a,
            b,
            rowsPerGroup,
            accumulate,
            c,
            RowOperands.A | RowOperands.B,
            m,
            n,
            0,
            (o, g, start, rows) =>
                CublasRowMajorGemm.TransposeAProblem(o.A(start * m), o.B(start * n), o.C(g * m * n), m, n, rows)
        );
    }

    /// <inheritdoc />
    public void SwiGluForward(Tensor gate, Tensor up, Tensor activation) =>
        _backend.Experts.SwiGluForward(gate, up, activation);

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp)
    {
        int n = DeviceViews.SameCount(gate, gradActivation, nameof(gradActivation));
        DeviceViews.SameCount(gate, up, nameof(up));
        DeviceViews.SameCount(gate, gradGate, nameof(gradGate));
        DeviceViews.SameCount(gate, gradUp, nameof(gradUp));
        if (n == 0)
            return;
        _swiGluBackward(
            n,
            Floats(gradActivation, nameof(gradActivation)),
            Floats(gate, nameof(gate)),
            Floats(up, nameof(up)),
            Floats(gradGate, nameof(gradGate)),
            Floats(gradUp, nameof(gradUp))
        );
    }

    /// <inheritdoc />
    public void Score(ScoreFunction function, Tensor logits, Tensor scores)
    {
        if (function == ScoreFunction.Softmax)
            _backend.Router.Softmax(logits, scores);
        else
            _backend.Router.Sigmoid(logits, scores);
    }

    /// <inheritdoc />
    public void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits)
    {
        int n = DeviceViews.SameCount(scores, gradScores, nameof(gradScores));
        DeviceViews.SameCount(scores, gradLogits, nameof(gradLogits));
        if (n == 0)
            return;
        if (function == ScoreFunction.Softmax)
        {
            _backend.Router.SoftmaxBackward(scores, gradScores, gradLogits);
        }
        else
        {
            _sigmoidBackward(
                n,
                Floats(scores, nameof(scores)),
                Floats(gradScores, nameof(gradScores)),
                Floats(gradLogits, nameof(gradLogits))
            );
        }
    }

    /// <inheritdoc />
    public void TopK(Tensor scores, Tensor? expertBias, TopKOptions options, Tensor topScores, Tensor expertIds)
    {
        ArgumentNullException.ThrowIfNull(options);
        _backend.Router.TopK(scores, expertBias, options, topScores, expertIds);
    }

    /// <inheritdoc />
    /// <remarks>A softmax and the top-k run as one kernel (<see cref="IlgpuRouterKernels.SoftmaxTopK"/>).</remarks>
    public void ScoreTopK(
        ScoreFunction function,
        Tensor logits,
        Tensor scores,
        Tensor? expertBias,
        TopKOptions options,
        Tensor topScores,
        Tensor expertIds
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        if (function != ScoreFunction.Softmax)
        {
            Score(function, logits, scores);
            TopK(scores, expertBias, options, topScores, expertIds);
            return;
        }
        _backend.Router.SoftmaxTopK(logits, scores, expertBias, options, topScores, expertIds);
    }

    /// <inheritdoc />
    /// <remarks>With a softmax, one kernel (<see cref="IlgpuRouterKernels.TopScoresSoftmaxBackward"/>).</remarks>
    public void TopScoresScoreBackward(
        ScoreFunction function,
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradLogits
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        if (function != ScoreFunction.Softmax)
        {
            TopScoresBackward(scores, expertIds, gradTopScores, options, gradLogits);
            ScoreBackward(function, scores, gradLogits, gradLogits);
            return;
        }
        _backend.Router.TopScoresSoftmaxBackward(
            scores,
            expertIds,
            gradTopScores,
            options.RouteNorm,
            options.NormEpsilon,
            options.RouteScale,
            gradLogits
        );
    }

    /// <inheritdoc />
    public void TopScoresBackward(
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        TopKOptions options,
        Tensor gradScores
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        _backend.Router.TopScoresBackward(
            scores,
            expertIds,
            gradTopScores,
            options.RouteNorm,
            options.NormEpsilon,
            options.RouteScale,
            gradScores
        );
    }

    /// <inheritdoc />
    /// <remarks>
    /// Counted on the device, one atomic increment per id into <paramref name="counts"/>; nothing comes to the host.
    /// Ids outside <c>[0, E)</c> are not counted, so the counts then grow by less than T·K.
    /// </remarks>
    public void CountPerExpert(Tensor expertIds, Tensor counts)
    {
        if (expertIds.ElementCount > 0 && counts.ElementCount > 0)
            _countIds(
                expertIds.ElementCount,
                DeviceViews.Longs(_acc, expertIds, nameof(expertIds)),
                DeviceViews.Longs(_acc, counts, nameof(counts))
            );
    }

    /// <inheritdoc />
    public void AddRows(Tensor into, int intoRow, Tensor rows)
    {
        int n = rows.ElementCount;
        if ((long)intoRow * into.RowLength + n > into.ElementCount)
        {
            throw new ArgumentException($"rows {rows} do not fit into {into} at row {intoRow}", nameof(rows));
        }
        if (n == 0)
            return;
        bool tiled = n % 128 == 0;
        (tiled ? _addIntoTiled : _addInto)(
            tiled ? n / 4 : n,
            Floats(into, nameof(into)),
            intoRow * into.RowLength,
            Floats(rows, nameof(rows))
        );
    }

    /// <summary>Closes the cuBLAS handle and frees AdamW's placeholder (the kernels belong to the
    /// accelerator).</summary>
    public void Dispose()
    {
        _cublas?.Dispose();
        _noCopy?.Dispose();
    }

    /// <summary>
    /// <c>C[m, n] (+)= Σ_p A(row, p)·B(p, column)</c> over <paramref name="k"/>: cuBLAS on CUDA, the strided kernel
    /// elsewhere. With nothing to reduce the product is zero (or C unchanged when accumulating). In every layout the
    /// operands are the contiguous ranges <c>A[aStart, aStart + m·k)</c> and <c>B[bStart, bStart + n·k)</c>; with
    /// <see cref="BFloat16Products"/> they are first rounded to bfloat16 (a scratch copy each).
    /// </summary>
    private void Product(
        Tensor a,
        int aStart,
        int aRowStride,
        int aReduceStride,
        Tensor b,
        int bStart,
        int bColumnStride,
        int bReduceStride,
        Tensor c,
        int cStart,
        int m,
        int n,
        int k,
        bool accumulate,
        Action<CublasRowMajorGemm, nint, nint, nint, bool> cublas
    )
    {
        if (m == 0 || n == 0)
            return;
        ArrayView<float> cView = Floats(c, nameof(c));
        if ((long)cStart + (long)m * n > cView.Length)
            throw new ArgumentException($"the [{m}, {n}] product does not fit into {c} at element {cStart}", nameof(c));
        if (k == 0)
        {
            if (!accumulate)
                cView.SubView(cStart, (long)m * n).MemSetToZero(_acc.DefaultStream);
            return;
        }
        int aLength = checked(m * k),
            bLength = checked(n * k);
        if (_cublas is not null)
        {
            nint pc = Pointer(c, cStart, nameof(c));
            if (!BFloat16Products)
            {
                cublas(_cublas, Pointer(a, aStart, nameof(a)), Pointer(b, bStart, nameof(b)), pc, false);
                return;
            }
            Tensor halfA = Rent(DType.BFloat16, aLength),
                halfB = Rent(DType.BFloat16, bLength);
            _toBFloat16(aLength, Floats(a, nameof(a)), aStart, DeviceViews.BFloat16Bits(_acc, halfA, nameof(a)));
            _toBFloat16(bLength, Floats(b, nameof(b)), bStart, DeviceViews.BFloat16Bits(_acc, halfB, nameof(b)));
            cublas(
                _cublas,
                DevicePointers.Of(halfA, nameof(a)).Pointer,
                DevicePointers.Of(halfB, nameof(b)).Pointer,
                pc,
                true
            );
            // Stream-ordered reuse: the GEMM queued before reads them first.
            Return(halfA);
            Return(halfB);
            return;
        }
        if (!BFloat16Products)
        {
            _product(
                m * n,
                Floats(a, nameof(a)),
                aStart,
                aRowStride,
                aReduceStride,
                Floats(b, nameof(b)),
                bStart,
                bColumnStride,
                bReduceStride,
                cView,
                cStart,
                n,
                k,
                accumulate ? 1 : 0
            );
            return;
        }
        Tensor roundedA = Rent(DType.Float32, aLength),
            roundedB = Rent(DType.Float32, bLength);
        _roundToBFloat16(aLength, Floats(a, nameof(a)), aStart, Floats(roundedA, nameof(a)));
        _roundToBFloat16(bLength, Floats(b, nameof(b)), bStart, Floats(roundedB, nameof(b)));
        _product(
            m * n,
            Floats(roundedA, nameof(a)),
            0,
            aRowStride,
            aReduceStride,
            Floats(roundedB, nameof(b)),
            0,
            bColumnStride,
            bReduceStride,
            cView,
            cStart,
            n,
            k,
            accumulate ? 1 : 0
        );
        Return(roundedA);
        Return(roundedB);
    }

    /// <summary>Whether grouped products go to cuBLAS as one grouped call (a reduction or row length of 0 takes the
    /// per-group path).</summary>
    private bool GroupsOnCublas(int inner) => _cublas is not null && inner > 0;

    /// <summary>The three operands' device pointers and element sizes: element offsets to addresses.</summary>
    private readonly record struct Operands(nint PA, int SizeA, nint PB, int SizeB, nint PC, int SizeC)
    {
        public nint A(long elements) => PA + (nint)(elements * SizeA);

        public nint B(long elements) => PB + (nint)(elements * SizeB);

        public nint C(long elements) => PC + (nint)(elements * SizeC);
    }

    /// <summary>Group g's product over the operands' first elements.</summary>
    private delegate GemmProblem GroupProblem(Operands operands, int group, int start, int rows);

    /// <summary>
    /// One cuBLAS grouped call for every group with rows (<paramref name="problem"/> places group g's product in the
    /// operands). float32 products go as they are; bfloat16 products take <see cref="GemmPath"/>: the operands are
    /// copied to bfloat16 storage (or rounded in float32 storage) in stream-ordered scratch, and with a bfloat16 output
    /// the
    /// product lands in scratch and is widened into <paramref name="c"/> (added when <paramref name="accumulate"/>).
    /// </summary>
    private void RunGroupsOnCublas(
        Tensor a,
        Tensor b,
        ReadOnlySpan<long> rowsPerGroup,
        bool accumulate,
        Tensor c,
        RowOperands rowOperands,
        int aColumns,
        int bColumns,
        int cColumns,
        GroupProblem problem
    )
    {
        var scratch = new List<Tensor>(3);
        try
        {
            var problems = new List<GemmProblem>(rowsPerGroup.Length);
            bool everyGroup = true;
            long capacity = 0,
                total = 0;
            foreach (long rows in rowsPerGroup)
            {
                everyGroup &= rows > 0;
                capacity = Math.Max(capacity, rows);
                total += rows;
            }
            if (
                BFloat16Products
                && GemmPath == BFloat16GemmPath.PaddedBatched
                && total > 0
                && (everyGroup || accumulate)
                && capacity * rowsPerGroup.Length <= total + (total / 4)
            )
            {
                RunPadded(
                    a,
                    b,
                    rowsPerGroup,
                    (int)capacity,
                    accumulate,
                    c,
                    rowOperands,
                    aColumns,
                    bColumns,
                    cColumns,
                    problem,
                    scratch
                );
                return;
            }
            if (!BFloat16Products)
            {
                var o = new Operands(
                    Pointer(a, 0, nameof(a)),
                    4,
                    Pointer(b, 0, nameof(b)),
                    4,
                    Pointer(c, 0, nameof(c)),
                    4
                );
                IGemmKernels.ForEachGroup(rowsPerGroup, (g, start, rows) => problems.Add(problem(o, g, start, rows)));
                _cublas!.Grouped(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(problems), accumulate);
                return;
            }
            if (GemmPath == BFloat16GemmPath.RoundedInFloat32)
            {
                Tensor ra = Rounded(a, scratch),
                    rb = Rounded(b, scratch);
                var o = new Operands(
                    Pointer(ra, 0, nameof(a)),
                    4,
                    Pointer(rb, 0, nameof(b)),
                    4,
                    Pointer(c, 0, nameof(c)),
                    4
                );
                IGemmKernels.ForEachGroup(rowsPerGroup, (g, start, rows) => problems.Add(problem(o, g, start, rows)));
                _cublas!.Grouped(
                    System.Runtime.InteropServices.CollectionsMarshal.AsSpan(problems),
                    accumulate,
                    bfloat16Values: true
                );
                return;
            }
            Tensor ha = Half(a, scratch),
                hb = Half(b, scratch);
            nint pa = DevicePointers.Of(ha, nameof(a)).Pointer,
                pb = DevicePointers.Of(hb, nameof(b)).Pointer;
            // A bfloat16 output in scratch is widened over all of C: only when every group writes its rows, or C is
            // added to.
            // The padded path falls back to it too: one grouped call, where one call per group pays cuBLAS's per-shape
            // setup for every new row count (routing changes every training step).
            bool halfOutput =
                GemmPath is BFloat16GemmPath.GroupedBFloat16Output or BFloat16GemmPath.PaddedBatched
                && (everyGroup || accumulate)
                && c.ElementCount > 0;
            Tensor? hc = null;
            if (halfOutput)
            {
                hc = Rent(DType.BFloat16, c.ElementCount);
                scratch.Add(hc);
                if (!everyGroup)
                    Dispatch.Rows.Clear(hc);
            }
            var operands = new Operands(
                pa,
                2,
                pb,
                2,
                hc is null ? Pointer(c, 0, nameof(c)) : DevicePointers.Of(hc, nameof(c)).Pointer,
                hc is null ? 4 : 2
            );
            IGemmKernels.ForEachGroup(
                rowsPerGroup,
                (g, start, rows) => problems.Add(problem(operands, g, start, rows))
            );
            _cublas!.GroupedBFloat16(
                System.Runtime.InteropServices.CollectionsMarshal.AsSpan(problems),
                accumulate && hc is null,
                bfloat16Output: hc is not null,
                grouped: hc is not null
            );
            if (hc is not null)
                _widenBFloat16(
                    c.ElementCount,
                    DeviceViews.BFloat16Bits(_acc, hc, nameof(c)),
                    Floats(c, nameof(c)),
                    accumulate ? 1 : 0
                );
        }
        finally
        {
            // Stream-ordered reuse: the products queued before read them first.
            foreach (Tensor t in scratch)
                Return(t);
        }
    }

    /// <summary>Which operands of a grouped product are row blocks of the groups (the others are indexed by
    /// group).</summary>
    [Flags]
    private enum RowOperands
    {
        A = 1,
        B = 2,
        C = 4,
    }

    /// <summary>
    /// <see cref="BFloat16GemmPath.PaddedBatched"/>: the row operands copied to bfloat16 with every group at
    /// <paramref name="capacity"/> rows (zeros after its own), the group-indexed ones to bfloat16 as they are, one
    /// strided
    /// batched call (its strides read off the problems of groups 0 and 1), and a row output copied back from the
    /// padded float32 scratch. Zero rows add nothing to a reduction over rows, so weight gradients come out exact.
    /// </summary>
    private void RunPadded(
        Tensor a,
        Tensor b,
        ReadOnlySpan<long> rowsPerGroup,
        int capacity,
        bool accumulate,
        Tensor c,
        RowOperands rowOperands,
        int aColumns,
        int bColumns,
        int cColumns,
        GroupProblem problem,
        List<Tensor> scratch
    )
    {
        int groups = rowsPerGroup.Length;
        var table = new int[2 * groups];
        long start = 0;
        for (int g = 0; g < groups; g++)
        {
            table[g] = (int)start;
            table[groups + g] = (int)rowsPerGroup[g];
            start += rowsPerGroup[g];
        }
        Tensor startAndCount = Dispatch.Device.ToDevice(Tensor.FromArray(table, table.Length));
        scratch.Add(startAndCount);
        ArrayView<int> layout = DeviceViews.Ints(_acc, startAndCount, "layout");
        long paddedRows = (long)capacity * groups;
        Tensor Pad(Tensor t, int columns)
        {
            Tensor padded = Rent(DType.BFloat16, checked((int)(paddedRows * columns)));
            scratch.Add(padded);
            _padToBFloat16(
                padded.ElementCount,
                Floats(t, "operand"),
                layout,
                groups,
                capacity,
                columns,
                DeviceViews.BFloat16Bits(_acc, padded, "operand")
            );
            return padded;
        }
        Tensor ha = rowOperands.HasFlag(RowOperands.A) ? Pad(a, aColumns) : Half(a, scratch);
        Tensor hb = rowOperands.HasFlag(RowOperands.B) ? Pad(b, bColumns) : Half(b, scratch);
        Tensor? paddedC = null;
        if (rowOperands.HasFlag(RowOperands.C))
        {
            paddedC = Rent(DType.Float32, checked((int)(paddedRows * cColumns)));
            scratch.Add(paddedC);
        }
        var o = new Operands(
            DevicePointers.Of(ha, nameof(a)).Pointer,
            2,
            DevicePointers.Of(hb, nameof(b)).Pointer,
            2,
            paddedC is null ? Pointer(c, 0, nameof(c)) : DevicePointers.Of(paddedC, nameof(c)).Pointer,
            4
        );
        GemmProblem first = problem(o, 0, 0, capacity);
        GemmProblem second = groups > 1 ? problem(o, 1, capacity, capacity) : first;
        _cublas!.StridedBatchedBFloat16(
            first,
            second.First - first.First,
            second.Second - first.Second,
            second.C - first.C,
            groups,
            accumulate && paddedC is null
        );
        if (paddedC is not null)
        {
            _unpadInto(
                paddedC.ElementCount,
                Floats(paddedC, nameof(c)),
                layout,
                groups,
                capacity,
                cColumns,
                Floats(c, nameof(c)),
                accumulate ? 1 : 0
            );
        }
    }

    /// <summary>A bfloat16 copy of <paramref name="t"/> in scratch.</summary>
    private Tensor Half(Tensor t, List<Tensor> scratch)
    {
        Tensor half = Rent(DType.BFloat16, t.ElementCount);
        scratch.Add(half);
        if (t.ElementCount > 0)
            _toBFloat16(t.ElementCount, Floats(t, "operand"), 0, DeviceViews.BFloat16Bits(_acc, half, "operand"));
        return half;
    }

    /// <summary><paramref name="t"/> rounded to bfloat16 values in float32 storage, in scratch.</summary>
    private Tensor Rounded(Tensor t, List<Tensor> scratch)
    {
        Tensor rounded = Rent(DType.Float32, t.ElementCount);
        scratch.Add(rounded);
        if (t.ElementCount > 0)
            _roundToBFloat16(t.ElementCount, Floats(t, "operand"), 0, Floats(rounded, "operand"));
        return rounded;
    }

    private ArrayView<float> Floats(Tensor t, string name) => DeviceViews.Floats(_acc, t, name);

    private static nint Pointer(Tensor t, int elementOffset, string name) =>
        DevicePointers.Of(t, name).Pointer + (nint)((long)elementOffset * sizeof(float));
}
