using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Cublas;

/// <summary>
/// The layer's matrix products on row-major device buffers through <c>cublasGemmEx</c>: float32 or bfloat16 inputs,
/// float32 output and compute (default math mode: no TF32 for float32 inputs), one handle on one stream. Each row-major
/// product is the column-major
/// product of the transposes, so no operand is ever copied or transposed.
/// </summary>
/// <remarks>
/// The row-major ↔ column-major mappings are <see cref="ColumnMajorGemm"/>'s factories; in each, cuBLAS's first operand
/// is the caller's B buffer.
/// </remarks>
internal sealed unsafe class CublasRowMajorGemm : IDisposable
{
    private readonly CublasLibrary _cublas;
    private readonly Action _bindContext;
    private readonly GroupedBatchedGemm _grouped;
    private nint _handle;

    /// <summary>Creates a cuBLAS handle whose calls run on <paramref name="stream"/>.</summary>
    /// <param name="stream">The compute stream (<c>cudaStream_t</c>); 0 is the legacy default stream.</param>
    /// <param name="bindContext">Makes the device's context current on the calling thread.</param>
    public CublasRowMajorGemm(nint stream, Action bindContext)
    {
        _bindContext = bindContext ?? throw new ArgumentNullException(nameof(bindContext));
        _cublas = CublasLibrary.Shared;
        _bindContext();
        _handle = _cublas.CreateOnStream(stream);
        _grouped = new GroupedBatchedGemm(stream);
    }

    /// <summary>Row-major <c>C[m, n] (+)= A[m, k] · B[n, k]ᵀ</c>; A and B bfloat16 when
    /// <paramref name="bfloat16Inputs"/>, else float32.</summary>
    public void MatMulTransposeB(
        nint a,
        nint b,
        nint c,
        int m,
        int n,
        int k,
        bool accumulate,
        bool bfloat16Inputs = false
    ) => Run(ColumnMajorGemm.ForRowMajorTimesTransposed(m, n, k), b, a, c, accumulate, bfloat16Inputs);

    /// <summary>Row-major <c>C[m, n] (+)= A[m, k] · B[k, n]</c>.</summary>
    public void MatMul(nint a, nint b, nint c, int m, int n, int k, bool accumulate, bool bfloat16Inputs = false) =>
        Run(ColumnMajorGemm.ForRowMajorTimes(m, n, k), b, a, c, accumulate, bfloat16Inputs);

    /// <summary>Row-major <c>C[m, n] (+)= A[k, m]ᵀ · B[k, n]</c>, reducing over the k rows.</summary>
    public void MatMulTransposeA(
        nint a,
        nint b,
        nint c,
        int m,
        int n,
        int k,
        bool accumulate,
        bool bfloat16Inputs = false
    ) => Run(ColumnMajorGemm.ForRowMajorTransposedTimes(m, n, k), b, a, c, accumulate, bfloat16Inputs);

    /// <summary>The row-major <c>C[m, n] = A[m, k] · B[n, k]ᵀ</c> as a problem for <see cref="Grouped"/>.</summary>
    public static GemmProblem TransposeBProblem(nint a, nint b, nint c, int m, int n, int k) =>
        new(ColumnMajorGemm.ForRowMajorTimesTransposed(m, n, k), b, a, c);

    /// <summary>The row-major <c>C[m, n] = A[m, k] · B[k, n]</c> as a problem for <see cref="Grouped"/>.</summary>
    public static GemmProblem TimesProblem(nint a, nint b, nint c, int m, int n, int k) =>
        new(ColumnMajorGemm.ForRowMajorTimes(m, n, k), b, a, c);

    /// <summary>The row-major <c>C[m, n] = A[k, m]ᵀ · B[k, n]</c> as a problem for <see cref="Grouped"/>.</summary>
    public static GemmProblem TransposeAProblem(nint a, nint b, nint c, int m, int n, int k) =>
        new(ColumnMajorGemm.ForRowMajorTransposedTimes(m, n, k), b, a, c);

    /// <summary>
    /// Every problem (<c>+=</c> when <paramref name="accumulate"/>) over float32 buffers in one
    /// <c>cublasGemmGroupedBatchedEx</c> call, or one <c>cublasGemmEx</c> each where the library lacks that call or
    /// refuses the types. With <paramref name="bfloat16Values"/> every input value is already a bfloat16 value (the
    /// caller rounded it) and the products run on the tensor cores (<c>CUBLAS_COMPUTE_32F_FAST_16BF</c>, whose
    /// down-conversion of such values is exact), with float32 accumulation and output; otherwise float32 compute.
    /// </summary>
    /// <remarks>
    /// Why bfloat16 values in float32 storage: the grouped call's documented types pair bfloat16 storage only with a
    /// bfloat16 output, and one <c>cublasGemmEx</c> per expert costs far more than its product when the experts' row
    /// counts change every step (measured on an H100: ~100 µs a call for products of ~8 µs).
    /// </remarks>
    public void Grouped(ReadOnlySpan<GemmProblem> problems, bool accumulate, bool bfloat16Values = false)
    {
        int compute = bfloat16Values ? CublasConstants.Compute32FFast16BF : CublasConstants.Compute32F;
        _bindContext();
        if (_grouped.TryRun(Handle, problems, accumulate ? 1f : 0f, CublasConstants.CudaR32F, compute))
            return;
        foreach (GemmProblem p in problems)
            Gemm(p, accumulate, CublasConstants.CudaR32F, compute);
    }

    /// <summary>
    /// Every problem over bfloat16 A and B (float32 accumulation) in one <c>cublasGemmGroupedBatchedEx</c> call where
    /// the
    /// library takes the types, else one <c>cublasGemmEx</c> each (always so when <paramref name="grouped"/> is false):
    /// C is bfloat16 when <paramref name="bfloat16Output"/> (the pairing cuBLAS documents for the grouped call), else
    /// float32 (<c>+=</c> when <paramref name="accumulate"/>).
    /// </summary>
    public void GroupedBFloat16(ReadOnlySpan<GemmProblem> problems, bool accumulate, bool bfloat16Output, bool grouped)
    {
        int output = bfloat16Output ? CublasConstants.CudaR16BF : CublasConstants.CudaR32F;
        _bindContext();
        if (
            grouped
            && _grouped.TryRun(
                Handle,
                problems,
                accumulate ? 1f : 0f,
                CublasConstants.CudaR16BF,
                CublasConstants.Compute32F,
                output
            )
        )
            return;
        foreach (GemmProblem p in problems)
        {
            _cublas.GemmEx(
                Handle,
                p.Gemm,
                1f,
                p.First,
                CublasConstants.CudaR16BF,
                p.Second,
                CublasConstants.CudaR16BF,
                accumulate ? 1f : 0f,
                p.C,
                output,
                CublasConstants.Compute32F
            );
        }
    }

    /// <summary>
    /// <paramref name="batch"/> products of <paramref name="first"/>'s shape in one <c>cublasGemmStridedBatchedEx</c>
    /// call:
    /// product i reads its operands and writes C at the first problem's pointers plus i times the byte strides;
    /// bfloat16
    /// A and B, float32 accumulation and C (<c>+=</c> when <paramref name="accumulate"/>).
    /// </summary>
    public void StridedBatchedBFloat16(
        GemmProblem first,
        long firstStrideBytes,
        long secondStrideBytes,
        long cStrideBytes,
        int batch,
        bool accumulate
    )
    {
        _bindContext();
        _cublas.GemmStridedBatchedEx(
            Handle,
            first.Gemm,
            1f,
            first.First,
            CublasConstants.CudaR16BF,
            firstStrideBytes / 2,
            first.Second,
            CublasConstants.CudaR16BF,
            secondStrideBytes / 2,
            accumulate ? 1f : 0f,
            first.C,
            CublasConstants.CudaR32F,
            cStrideBytes / 4,
            batch,
            CublasConstants.Compute32F
        );
    }

    private void Run(in ColumnMajorGemm g, nint first, nint second, nint c, bool accumulate, bool bfloat16Inputs)
    {
        _bindContext();
        Gemm(
            new GemmProblem(g, first, second, c),
            accumulate,
            bfloat16Inputs ? CublasConstants.CudaR16BF : CublasConstants.CudaR32F,
            CublasConstants.Compute32F
        );
    }

    /// <summary>One <c>cublasGemmEx</c>: inputs of <paramref name="inputType"/>, float32 C (<c>+=</c> when
    /// accumulating).</summary>
    private void Gemm(in GemmProblem p, bool accumulate, int inputType, int computeType) =>
        _cublas.GemmEx(
            Handle,
            p.Gemm,
            1f,
            p.First,
            inputType,
            p.Second,
            inputType,
            accumulate ? 1f : 0f,
            p.C,
            CublasConstants.CudaR32F,
            computeType
        );

    private nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(CublasRowMajorGemm));

    /// <summary>Destroys the handle.</summary>
    public void Dispose()
    {
        nint handle = Interlocked.Exchange(ref _handle, 0);
        if (handle == 0)
            return;
        _bindContext();
        _grouped.Dispose();
        _cublas.Destroy(handle);
    }
}
