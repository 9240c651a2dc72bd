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
/// (float32, no TF32) or a strided-product kernel on ILGPU's CPU accelerator, and ILGPU kernels for SwiGLU, the score
/// functions, top-k (node-limited too), their backward passes, row addition and AdamW. Every kernel is ordered on the
/// accelerator's stream, as the dispatcher's are.
/// </summary>
/// <remarks>
/// Tolerance: top-k is bitwise the host's given the same scores; element-wise kernels on CUDA use ILGPU.Algorithms'
/// <c>exp</c> and may contract multiply-adds, so they agree with the host within a few ulp; cuBLAS sums in its own
/// blocking, so products agree within float32 tolerance (the golden layer files' bounds), not bitwise.
/// </remarks>
public sealed class IlgpuLayerKernels : ILayerKernels, IDisposable
{
    private readonly IlgpuBackend _backend;
    private readonly Accelerator _acc;
    private readonly CublasRowMajorGemm? _cublas;
    private readonly Action<Index1D, ArrayView<float>, int, int, int, ArrayView<float>, int, int, int, ArrayView<float>, int, int, int, int> _product;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> _swiGluBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _softmaxBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _sigmoidBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int, float, float, ArrayView<float>> _topScoresBackward;
    private readonly Action<Index1D, ArrayView<float>, int, ArrayView<float>> _addInto;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, float, float, float> _adamW;

    /// <summary>Compiles the kernels on <paramref name="backend"/>'s accelerator; on CUDA also opens a cuBLAS handle on its stream.</summary>
    /// <exception cref="DllNotFoundException">On CUDA, cuBLAS (<c>libcublas.so.13</c> or <c>.12</c>) cannot be loaded.</exception>
    public IlgpuLayerKernels(IlgpuBackend backend)
    {
        _backend = backend ?? throw new ArgumentNullException(nameof(backend));
        _acc = backend.Accelerator;
        _product = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, int, int, ArrayView<float>, int, int, int, ArrayView<float>, int, int, int, int>(LayerKernelBodies.StridedProduct);
        _swiGluBackward = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(LayerKernelBodies.SwiGluBackward);
        _softmaxBackward = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(LayerKernelBodies.SoftmaxBackwardRows);
        _sigmoidBackward = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(LayerKernelBodies.SigmoidBackward);
        _topScoresBackward = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<long>, ArrayView<float>, int, int, int, float, float, ArrayView<float>>(LayerKernelBodies.TopScoresBackward);
        _addInto = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<float>>(LayerKernelBodies.AddInto);
        _adamW = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, float, float, float>(LayerKernelBodies.AdamW);
        if (backend.IsCuda) _cublas = new CublasRowMajorGemm(backend.StreamPointer, () => _acc.Bind());
    }

    /// <inheritdoc />
    public IMoeKernels Dispatch => _backend.Kernels;

    /// <summary>True when the products run through cuBLAS (a CUDA device).</summary>
    public bool UsesCublas => _cublas is not null;

    private IlgpuTensorAllocator Allocator => _backend.Allocator;

    /// <inheritdoc />
    public Tensor Allocate(DType dtype, params int[] shape) => Allocator.Rent(dtype, shape);

    /// <inheritdoc />
    public Tensor Zeros(DType dtype, params int[] shape)
    {
        Tensor t = Allocator.Rent(dtype, shape);
        Dispatch.Clear(t);
        return t;
    }

    /// <inheritdoc />
    public void Release(Tensor? tensor) => Allocator.Return(tensor);

    /// <inheritdoc />
    public void MatMulTransposeB(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false)
        => Product(a, aRow * k, k, 1, b, index * n * k, k, 1, c, cRow * n, rows, n, k, accumulate,
            cublas => cublas.MatMulTransposeB(Pointer(a, aRow * k, nameof(a)), Pointer(b, index * n * k, nameof(b)), Pointer(c, cRow * n, nameof(c)), rows, n, k, accumulate));

    /// <inheritdoc />
    public void MatMul(Tensor a, int aRow, int rows, Tensor b, int index, int n, int k, Tensor c, int cRow, bool accumulate = false)
        => Product(a, aRow * k, k, 1, b, index * k * n, 1, n, c, cRow * n, rows, n, k, accumulate,
            cublas => cublas.MatMul(Pointer(a, aRow * k, nameof(a)), Pointer(b, index * k * n, nameof(b)), Pointer(c, cRow * n, nameof(c)), rows, n, k, accumulate));

    /// <inheritdoc />
    public void MatMulTransposeA(Tensor a, int aRow, Tensor b, int bRow, int rows, int m, int n, Tensor c, int index, bool accumulate = false)
        => Product(a, aRow * m, 1, m, b, bRow * n, 1, n, c, index * m * n, m, n, rows, accumulate,
            cublas => cublas.MatMulTransposeA(Pointer(a, aRow * m, nameof(a)), Pointer(b, bRow * n, nameof(b)), Pointer(c, index * m * n, nameof(c)), m, n, rows, accumulate));

    /// <inheritdoc />
    public void SwiGluForward(Tensor gate, Tensor up, Tensor activation) => _backend.Experts.SwiGluForward(gate, up, activation);

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gradActivation, Tensor gate, Tensor up, Tensor gradGate, Tensor gradUp)
    {
        int n = DeviceViews.SameCount(gate, gradActivation, nameof(gradActivation));
        DeviceViews.SameCount(gate, up, nameof(up));
        DeviceViews.SameCount(gate, gradGate, nameof(gradGate));
        DeviceViews.SameCount(gate, gradUp, nameof(gradUp));
        if (n == 0) return;
        _swiGluBackward(n, Floats(gradActivation, nameof(gradActivation)), Floats(gate, nameof(gate)), Floats(up, nameof(up)),
            Floats(gradGate, nameof(gradGate)), Floats(gradUp, nameof(gradUp)));
    }

    /// <inheritdoc />
    public void Score(ScoreFunction function, Tensor logits, Tensor scores)
    {
        if (function == ScoreFunction.Softmax) _backend.Router.Softmax(logits, scores);
        else _backend.Router.Sigmoid(logits, scores);
    }

    /// <inheritdoc />
    public void ScoreBackward(ScoreFunction function, Tensor scores, Tensor gradScores, Tensor gradLogits)
    {
        int n = DeviceViews.SameCount(scores, gradScores, nameof(gradScores));
        DeviceViews.SameCount(scores, gradLogits, nameof(gradLogits));
        if (n == 0) return;
        if (function == ScoreFunction.Softmax)
        {
            _softmaxBackward(scores.Rows, Floats(scores, nameof(scores)), Floats(gradScores, nameof(gradScores)), Floats(gradLogits, nameof(gradLogits)), scores.RowLength);
        }
        else
        {
            _sigmoidBackward(n, Floats(scores, nameof(scores)), Floats(gradScores, nameof(gradScores)), Floats(gradLogits, nameof(gradLogits)));
        }
    }

    /// <inheritdoc />
    public void TopK(Tensor scores, Tensor? expertBias, int numExpertGroups, int numLimitedGroups, bool routeNorm, float normEpsilon,
        float routeScale, Tensor topScores, Tensor expertIds)
        => _backend.Router.TopK(scores, expertBias, topScores, expertIds, routeNorm, normEpsilon, routeScale, numExpertGroups, numLimitedGroups);

    /// <inheritdoc />
    public void TopScoresBackward(Tensor scores, Tensor expertIds, Tensor gradTopScores, bool routeNorm, float normEpsilon, float routeScale,
        Tensor gradScores)
    {
        DeviceViews.SameCount(scores, gradScores, nameof(gradScores));
        DeviceViews.SameCount(expertIds, gradTopScores, nameof(gradTopScores));
        if (scores.Rows == 0 || scores.ElementCount == 0) return;
        _topScoresBackward(scores.Rows, Floats(scores, nameof(scores)), DeviceViews.Longs(_acc, expertIds, nameof(expertIds)),
            Floats(gradTopScores, nameof(gradTopScores)), scores.RowLength, expertIds.RowLength, routeNorm ? 1 : 0, normEpsilon, routeScale,
            Floats(gradScores, nameof(gradScores)));
    }

    /// <inheritdoc />
    /// <remarks>The ids come to the host (T·K int64, one small copy that waits for the router's kernels) and are counted there.</remarks>
    public long[] CountPerExpert(Tensor expertIds, int numExperts)
    {
        var counts = new long[numExperts];
        foreach (long id in expertIds.ToHost().AsSpan<long>()) counts[id]++;
        return counts;
    }

    /// <inheritdoc />
    public void AddRows(Tensor into, int intoRow, Tensor rows)
    {
        int n = rows.ElementCount;
        if ((long)intoRow * into.RowLength + n > into.ElementCount)
        {
            throw new ArgumentException($"rows {rows} do not fit into {into} at row {intoRow}", nameof(rows));
        }
        if (n == 0) return;
        _addInto(n, Floats(into, nameof(into)), intoRow * into.RowLength, Floats(rows, nameof(rows)));
    }

    /// <inheritdoc />
    public void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars s)
    {
        int n = DeviceViews.SameCount(value, grad, nameof(grad));
        DeviceViews.SameCount(value, expAvg, nameof(expAvg));
        DeviceViews.SameCount(value, expAvgSq, nameof(expAvgSq));
        if (n == 0) return;
        _adamW(n, Floats(value, nameof(value)), Floats(grad, nameof(grad)), Floats(expAvg, nameof(expAvg)), Floats(expAvgSq, nameof(expAvgSq)),
            s.Beta1, s.Beta2, s.StepSize, s.Bias2Sqrt, s.Epsilon, s.Decay);
    }

    /// <summary>Closes the cuBLAS handle (the kernels belong to the accelerator).</summary>
    public void Dispose() => _cublas?.Dispose();

    /// <summary>
    /// <c>C[m, n] (+)= Σ_p A(row, p)·B(p, column)</c> over <paramref name="k"/>: cuBLAS on CUDA, the strided kernel
    /// elsewhere. With nothing to reduce the product is zero (or C unchanged when accumulating).
    /// </summary>
    private void Product(Tensor a, int aStart, int aRowStride, int aReduceStride, Tensor b, int bStart, int bColumnStride, int bReduceStride,
        Tensor c, int cStart, int m, int n, int k, bool accumulate, Action<CublasRowMajorGemm> cublas)
    {
        if (m == 0 || n == 0) return;
        ArrayView<float> cView = Floats(c, nameof(c));
        if ((long)cStart + (long)m * n > cView.Length) throw new ArgumentException($"the [{m}, {n}] product does not fit into {c} at element {cStart}", nameof(c));
        if (k == 0)
        {
            if (!accumulate) cView.SubView(cStart, (long)m * n).MemSetToZero(_acc.DefaultStream);
            return;
        }
        if (_cublas is not null)
        {
            cublas(_cublas);
            return;
        }
        _product(m * n, Floats(a, nameof(a)), aStart, aRowStride, aReduceStride, Floats(b, nameof(b)), bStart, bColumnStride, bReduceStride,
            cView, cStart, n, k, accumulate ? 1 : 0);
    }

    private ArrayView<float> Floats(Tensor t, string name) => DeviceViews.Floats(_acc, t, name);

    private static nint Pointer(Tensor t, int elementOffset, string name)
        => DevicePointers.Of(t, name).Pointer + (nint)((long)elementOffset * sizeof(float));
}
