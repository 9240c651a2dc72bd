using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Cublas;

/// <summary>
/// The experts' grouped GEMMs on one device and stream: for each local expert e with <c>m_e</c> rows,
/// <c>C_e[m_e, N] = A_e[m_e, K] · B_eᵀ</c> with <c>B_e [N, K]</c> row-major (the weight layout, e.g. <c>w1[e]: [H, D]</c>).
/// Inputs bfloat16 or float32, accumulation and output float32.
/// </summary>
/// <remarks>
/// <para>bfloat16: one <c>cublasGemmEx</c> per expert with rows (<c>CUDA_R_16BF</c> A/B, <c>CUDA_R_32F</c> C,
/// <c>CUBLAS_COMPUTE_32F</c>). <c>cublasGemmGroupedBatchedEx</c> is not used here: its documented type table pairs
/// 16BF inputs only with a 16BF output, not the float32 output MoeSharp accumulates into.</para>
/// <para>float32: <c>CUBLAS_COMPUTE_32F_PEDANTIC</c> (no TF32 down-conversion), so results can be checked tightly
/// against the host. When the library exports <c>cublasGemmGroupedBatchedEx</c> (cuBLAS 12.5+) and
/// <see cref="UseGroupedBatched"/> is on, all experts go in one call (one group per expert; its pointer arrays are
/// uploaded to device scratch on the same stream, so reuse is ordered after the previous call); otherwise one
/// <c>cublasGemmEx</c> per expert.</para>
/// <para>Row-major ↔ column-major mapping: <see cref="ColumnMajorGemm.ForRowMajorTimesTransposed"/>. All work is
/// enqueued on <see cref="Stream"/>; nothing here synchronizes.</para>
/// </remarks>
public sealed unsafe class CublasGroupedGemm : IDisposable
{
    private readonly CudaRuntime _cuda;
    private readonly CublasLibrary _cublas;
    private readonly Action? _bindContext;
    private nint _handle;
    private nint _pointerScratch;
    private long _pointerScratchBytes;

    /// <summary>Creates a cuBLAS handle on <paramref name="device"/> whose calls run on <paramref name="stream"/>.</summary>
    /// <param name="device">CUDA device ordinal (made current on this thread).</param>
    /// <param name="stream">The compute stream (<c>cudaStream_t</c>); 0 is the legacy default stream.</param>
    /// <param name="useGroupedBatched">Use <c>cublasGemmGroupedBatchedEx</c> for float32 when the library has it.</param>
    /// <param name="bindContext">Makes the device's context current; null selects the primary context (<c>cudaSetDevice</c>).</param>
    public CublasGroupedGemm(int device, nint stream, bool useGroupedBatched = true, Action? bindContext = null)
    {
        _bindContext = bindContext;
        _cuda = CudaRuntime.Shared;
        _cublas = CublasLibrary.Shared;
        Device = device;
        Stream = stream;
        BindDevice();
        _handle = _cublas.CreateOnStream(stream);
        UseGroupedBatched = useGroupedBatched && _cublas.HasGroupedBatchedEx;
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
            throw new ArgumentException($"expected routed [R, K], weights [E, N, K], output [R, N]; got {routed.ShapeString}, {weights.ShapeString}, {output.ShapeString}");
        int r = routed.Dim(0), k = routed.Dim(1), e = weights.Dim(0), n = weights.Dim(1);
        if (weights.Dim(2) != k)
            throw new ArgumentException($"weights {weights.ShapeString} do not match routed K = {k}", nameof(weights));
        if (output.Dim(0) != r || output.Dim(1) != n)
            throw new ArgumentException($"output {output.ShapeString} should be [{r}, {n}]", nameof(output));
        if (tokensPerLocalExpert.Length != e)
            throw new ArgumentException($"{tokensPerLocalExpert.Length} row counts for {e} local experts", nameof(tokensPerLocalExpert));
        long total = 0;
        foreach (int m in tokensPerLocalExpert) total += m;
        if (total != r)
            throw new ArgumentException($"tokensPerLocalExpert sums to {total}, routed has {r} rows", nameof(tokensPerLocalExpert));
        if (routed.DType != weights.DType || output.DType != DType.Float32)
            throw new ArgumentException($"routed and weights must share a dtype and output be Float32; got {routed.DType}, {weights.DType}, {output.DType}");

        nint a = DevicePointers.Of(routed, nameof(routed)).Pointer;
        nint b = DevicePointers.Of(weights, nameof(weights)).Pointer;
        nint c = DevicePointers.Of(output, nameof(output)).Pointer;
        switch (routed.DType)
        {
            case DType.BFloat16: RunBFloat16(a, b, c, tokensPerLocalExpert, n, k); break;
            case DType.Float32: RunFloat32(a, b, c, tokensPerLocalExpert, n, k); break;
            default: throw new ArgumentException($"grouped GEMM takes BFloat16 or Float32 inputs, not {routed.DType}", nameof(routed));
        }
    }

    /// <summary>bfloat16 A <c>[Σm, K]</c> and B <c>[E, N, K]</c>, float32 C <c>[Σm, N]</c>, all device pointers.</summary>
    public void RunBFloat16(nint a, nint b, nint c, ReadOnlySpan<int> rowsPerExpert, int n, int k)
        => RunEach(a, b, c, ExpertGemm.Plan(rowsPerExpert, n, k, 2, 4), n, k, CublasConstants.CudaR16BF, CublasConstants.Compute32F);

    /// <summary>float32 A <c>[Σm, K]</c>, B <c>[E, N, K]</c>, C <c>[Σm, N]</c>, all device pointers; pedantic float32 compute.</summary>
    public void RunFloat32(nint a, nint b, nint c, ReadOnlySpan<int> rowsPerExpert, int n, int k)
    {
        ExpertGemm[] plan = ExpertGemm.Plan(rowsPerExpert, n, k, 4, 4);
        if (UseGroupedBatched && plan.Length > 0)
            RunGrouped(a, b, c, plan, n, k);
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
            _cublas.GemmEx(handle, p, 1f, b + (nint)g.BOffsetBytes, inputType, a + (nint)g.AOffsetBytes, inputType,
                0f, c + (nint)g.COffsetBytes, CublasConstants.CudaR32F, computeType);
        }
    }

    private void RunGrouped(nint a, nint b, nint c, ExpertGemm[] plan, int n, int k)
    {
        nint handle = Handle;
        BindDevice();
        int groups = plan.Length;
        var transA = new int[groups]; var transB = new int[groups];
        var m = new int[groups]; var nn = new int[groups]; var kk = new int[groups];
        var lda = new int[groups]; var ldb = new int[groups]; var ldc = new int[groups];
        var alpha = new float[groups]; var beta = new float[groups]; var groupSize = new int[groups];
        // Device arrays of pointers, laid out [A pointers | B pointers | C pointers], one per problem.
        var pointers = new nint[3 * groups];
        for (int i = 0; i < groups; i++)
        {
            ExpertGemm g = plan[i];
            ColumnMajorGemm p = ColumnMajorGemm.ForRowMajorTimesTransposed(g.Rows, n, k);
            (transA[i], transB[i], m[i], nn[i], kk[i], lda[i], ldb[i], ldc[i]) = (p.TransA, p.TransB, p.M, p.N, p.K, p.Lda, p.Ldb, p.Ldc);
            (alpha[i], beta[i], groupSize[i]) = (1f, 0f, 1);
            pointers[i] = b + (nint)g.BOffsetBytes;
            pointers[groups + i] = a + (nint)g.AOffsetBytes;
            pointers[2 * groups + i] = c + (nint)g.COffsetBytes;
        }

        long bytes = (long)pointers.Length * sizeof(nint);
        nint scratch = PointerScratch(bytes);
        fixed (nint* host = pointers)
            // From pageable memory the copy is staged before the call returns, so `pointers` may die afterwards; being
            // on the GEMM's stream, it also runs only after the previous call's kernels have read the old arrays.
            _cuda.MemcpyAsync(scratch, (nint)host, bytes, CudaConstants.MemcpyHostToDevice, Stream);

        fixed (int* ta = transA, tb = transB, pm = m, pn = nn, pk = kk, plda = lda, pldb = ldb, pldc = ldc, gs = groupSize)
        fixed (float* pa = alpha, pb = beta)
        {
            _cublas.GemmGroupedBatchedEx(handle, ta, tb, pm, pn, pk, pa,
                scratch, CublasConstants.CudaR32F, plda,
                scratch + groups * sizeof(nint), CublasConstants.CudaR32F, pldb, pb,
                scratch + 2 * groups * sizeof(nint), CublasConstants.CudaR32F, pldc,
                groups, gs, CublasConstants.Compute32FPedantic);
        }
    }

    private nint PointerScratch(long bytes)
    {
        if (_pointerScratchBytes >= bytes) return _pointerScratch;
        // Growing frees the old array; work still queued on the stream may read it, so wait for the stream first.
        if (_pointerScratch != 0)
        {
            _cuda.StreamSynchronize(Stream);
            _cuda.FreeNoThrow(_pointerScratch);
            _pointerScratch = 0;
        }
        _pointerScratch = _cuda.Malloc(bytes);
        _pointerScratchBytes = bytes;
        return _pointerScratch;
    }

    private nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(CublasGroupedGemm));

    /// <summary>Destroys the cuBLAS handle and frees the pointer scratch (after the stream's work that may use it).</summary>
    public void Dispose()
    {
        nint handle = Interlocked.Exchange(ref _handle, 0);
        if (handle == 0) return;
        BindDevice();
        if (_pointerScratch != 0)
        {
            _cuda.StreamSynchronize(Stream);
            _cuda.FreeNoThrow(_pointerScratch);
            _pointerScratch = 0;
        }
        _cublas.Destroy(handle);
    }

    private void BindDevice()
    {
        if (_bindContext is null) _cuda.SetDevice(Device);
        else _bindContext();
    }
}
