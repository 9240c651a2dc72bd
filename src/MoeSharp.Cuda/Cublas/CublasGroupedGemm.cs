using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Cublas;

/// <summary>
/// The experts' grouped GEMMs on one device and stream: for each local expert e with <c>m_e</c> rows,
/// <c>C_e[m_e, N] = A_e[m_e, K] · B_eᵀ</c> with <c>B_e [N, K]</c> row-major (the weight layout, e.g. <c>w1[e]: [H,
/// D]</c>).
/// Inputs bfloat16 or float32, accumulation and output float32.
/// </summary>
/// <remarks>
/// <para>bfloat16: <c>CUDA_R_16BF</c> A/B, <c>CUDA_R_32F</c> C, <c>CUBLAS_COMPUTE_32F</c>; float32:
/// <c>CUBLAS_COMPUTE_32F_PEDANTIC</c> (no TF32 down-conversion), so results can be checked tightly against the host.
/// When the library exports <c>cublasGemmGroupedBatchedEx</c> (cuBLAS 12.5+) and <see cref="UseGroupedBatched"/> is
/// on, all experts go in one call (<see cref="GroupedBatchedGemm"/>: one group per expert, pointer arrays uploaded to
/// device scratch on the same stream); otherwise, and where the library refuses the types (its documented table pairs
/// 16BF inputs only with a 16BF output), one <c>cublasGemmEx</c> per expert.</para>
/// <para>Row-major ↔ column-major mapping: <see cref="ColumnMajorGemm.ForRowMajorTimesTransposed"/>. All work is
/// enqueued on <see cref="Stream"/>; nothing here synchronizes.</para>
/// </remarks>
internal sealed unsafe class CublasGroupedGemm : IDisposable
{
    private readonly CudaRuntime _cuda;
    private readonly CublasLibrary _cublas;
    private readonly Action? _bindContext;
    private readonly GroupedBatchedGemm _grouped;
    private nint _handle;

    /// <summary>Creates a cuBLAS handle on <paramref name="device"/> whose calls run on
    /// <paramref name="stream"/>.</summary>
    /// <param name="device">CUDA device ordinal (made current on this thread).</param>
    /// <param name="stream">The compute stream (<c>cudaStream_t</c>); 0 is the legacy default stream.</param>
    /// <param name="useGroupedBatched">Use <c>cublasGemmGroupedBatchedEx</c> for float32 when the library has
    /// it.</param>
    /// <param name="bindContext">Makes the device's context current; null selects the primary context
    /// (<c>cudaSetDevice</c>).</param>
    public CublasGroupedGemm(int device, nint stream, bool useGroupedBatched = true, Action? bindContext = null)
    {
        _bindContext = bindContext;
        _cuda = CudaRuntime.Shared;
        _cublas = CublasLibrary.Shared;
        Device = device;
        Stream = stream;
        BindDevice();
        _handle = _cublas.CreateOnStream(stream);
        _grouped = new GroupedBatchedGemm(stream);
        UseGroupedBatched = useGroupedBatched && _grouped.Available;
    }

    /// <summary>The device ordinal.</summary>
    public int Device { get; }

    /// <summary>The stream the GEMMs are enqueued on.</summary>
    public nint Stream { get; }

    /// <summary>True when float32 runs go through one <c>cublasGemmGroupedBatchedEx</c> call.</summary>
    public bool UseGroupedBatched { get; }

    /// <summary>
    /// Tensor form: <paramref name="routed"/> <c>[R, K]</c> (bfloat16 or float32, expert-major),
    /// <paramref name="weights"/> <c>[E, N, K]</c> (same dtype), <paramref name="output"/> <c>[R, N]</c> float32,
    /// <paramref name="tokensPerLocalExpert"/> <c>[E]</c> summing to R. Rows of experts with none are untouched
    /// (there are none); every output row is written.
    /// </summary>
    public void Run(Tensor routed, Tensor weights, Tensor output, ReadOnlySpan<int> tokensPerLocalExpert)
    {
        ArgumentNullException.ThrowIfNull(routed);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(output);
        if (routed.Rank != 2 || weights.Rank != 3 || output.Rank != 2)
            throw new ArgumentException(
                $"expected routed [R, K], weights [E, N, K], output [R, N]; got "
                    + $"{routed.ShapeString}, {weights.ShapeString}, {output.ShapeString}"
            );
        int r = routed.Dim(0),
            k = routed.Dim(1),
            e = weights.Dim(0),
            n = weights.Dim(1);
        if (weights.Dim(2) != k)
            throw new ArgumentException($"weights {weights.ShapeString} do not match routed K = {k}", nameof(weights));
        if (output.Dim(0) != r || output.Dim(1) != n)
            throw new ArgumentException($"output {output.ShapeString} should be [{r}, {n}]", nameof(output));
        if (tokensPerLocalExpert.Length != e)
            throw new ArgumentException(
                $"{tokensPerLocalExpert.Length} row counts for {e} local experts",
                nameof(tokensPerLocalExpert)
            );
        long total = 0;
        foreach (int m in tokensPerLocalExpert)
            total += m;
        if (total != r)
            throw new ArgumentException(
                $"tokensPerLocalExpert sums to {total}, routed has {r} rows",
                nameof(tokensPerLocalExpert)
            );
        if (routed.DType != weights.DType || output.DType != DType.Float32)
            throw new ArgumentException(
                $"routed and weights must share a dtype and output be Float32; got "
                    + $"{routed.DType}, {weights.DType}, {output.DType}"
            );

        nint a = DevicePointers.Of(routed, nameof(routed)).Pointer;
        nint b = DevicePointers.Of(weights, nameof(weights)).Pointer;
        nint c = DevicePointers.Of(output, nameof(output)).Pointer;
        switch (routed.DType)
        {
            case DType.BFloat16:
                RunBFloat16(a, b, c, tokensPerLocalExpert, n, k);
                break;
            case DType.Float32:
                RunFloat32(a, b, c, tokensPerLocalExpert, n, k);
                break;
            default:
                throw new ArgumentException(
                    $"grouped GEMM takes BFloat16 or Float32 inputs, not {routed.DType}",
                    nameof(routed)
                );
        }
    }

    /// <summary>bfloat16 A <c>[Σm, K]</c> and B <c>[E, N, K]</c>, float32 C <c>[Σm, N]</c>, all device
    /// pointers.</summary>
    public void RunBFloat16(nint a, nint b, nint c, ReadOnlySpan<int> rowsPerExpert, int n, int k)
    {
        ExpertGemm[] plan = ExpertGemm.Plan(rowsPerExpert, n, k, 2, 4);
        if (UseGroupedBatched && plan.Length > 0)
            RunGrouped(a, b, c, plan, n, k, CublasConstants.CudaR16BF, CublasConstants.Compute32F);
        else
            RunEach(a, b, c, plan, n, k, CublasConstants.CudaR16BF, CublasConstants.Compute32F);
    }

    /// <summary>float32 A <c>[Σm, K]</c>, B <c>[E, N, K]</c>, C <c>[Σm, N]</c>, all device pointers; pedantic float32
    /// compute.</summary>
    public void RunFloat32(nint a, nint b, nint c, ReadOnlySpan<int> rowsPerExpert, int n, int k)
    {
        ExpertGemm[] plan = ExpertGemm.Plan(rowsPerExpert, n, k, 4, 4);
        if (UseGroupedBatched && plan.Length > 0)
            RunGrouped(a, b, c, plan, n, k, CublasConstants.CudaR32F, CublasConstants.Compute32FPedantic);
        else
            RunEach(a, b, c, plan, n, k, CublasConstants.CudaR32F, CublasConstants.Compute32FPedantic);
    }

    private void RunEach(nint a, nint b, nint c, ExpertGemm[] plan, int n, int k, int inputType, int computeType)
    {
        nint handle = Handle;
        BindDevice();
        foreach (ExpertGemm g in plan)
        {
            ColumnMajorGemm p = ColumnMajorGemm.ForRowMajorTimesTransposed(g.Rows, n, k);
            // SwapOperands: cuBLAS's A is the weight matrix, its B the routed rows (see ColumnMajorGemm).
            _cublas.GemmEx(
                handle,
                p,
                1f,
                b + (nint)g.BOffsetBytes,
                inputType,
                a + (nint)g.AOffsetBytes,
                inputType,
                0f,
                c + (nint)g.COffsetBytes,
                CublasConstants.CudaR32F,
                computeType
            );
        }
    }

    private void RunGrouped(nint a, nint b, nint c, ExpertGemm[] plan, int n, int k, int inputType, int computeType)
    {
        nint handle = Handle;
        BindDevice();
        var problems = new GemmProblem[plan.Length];
        for (int i = 0; i < plan.Length; i++)
        {
            ExpertGemm g = plan[i];
            // cuBLAS's A is the weight matrix, its B the routed rows (see ColumnMajorGemm).
            problems[i] = new GemmProblem(
                ColumnMajorGemm.ForRowMajorTimesTransposed(g.Rows, n, k),
                b + (nint)g.BOffsetBytes,
                a + (nint)g.AOffsetBytes,
                c + (nint)g.COffsetBytes
            );
        }
        if (!_grouped.TryRun(handle, problems, 0f, inputType, computeType))
            RunEach(a, b, c, plan, n, k, inputType, computeType);
    }

    private nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(CublasGroupedGemm));

    /// <summary>Destroys the cuBLAS handle and frees the pointer scratch (after the stream's work that may use
    /// it).</summary>
    public void Dispose()
    {
        nint handle = Interlocked.Exchange(ref _handle, 0);
        if (handle == 0)
            return;
        BindDevice();
        _grouped.Dispose();
        _cublas.Destroy(handle);
    }

    private void BindDevice()
    {
        if (_bindContext is null)
            _cuda.SetDevice(Device);
        else
            _bindContext();
    }
}
