using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Cublas;

/// <summary>
/// Many products of different shapes in one <c>cublasGemmGroupedBatchedEx</c> call (one group per product), for the
/// experts' GEMMs whose row counts change every step: one host call instead of one per expert, and no per-shape setup
/// in cuBLAS for each new row count. The per-group arrays go as host arrays; the pointer arrays are copied to a device
/// scratch on the handle's stream, so a later call's copy is ordered after the kernels that read the earlier ones.
/// </summary>
/// <remarks>
/// cuBLAS documents a fixed list of type combinations for the grouped call; one it refuses
/// (<c>CUBLAS_STATUS_NOT_SUPPORTED</c> or <c>CUBLAS_STATUS_INVALID_VALUE</c> on the first try) is remembered and
/// <see cref="TryRun"/> returns false for it from then on, so the caller falls back to one <c>cublasGemmEx</c> per
/// product. Used by one thread at a time, with its handle's context current.
/// </remarks>
internal sealed unsafe class GroupedBatchedGemm : IDisposable
{
    private readonly CudaRuntime _cuda;
    private readonly CublasLibrary _cublas;
    private readonly nint _stream;
    private readonly HashSet<(int InputType, int ComputeType, int OutputType)> _refused = [];
    private readonly HashSet<(int InputType, int ComputeType, int OutputType)> _accepted = [];
    private nint _pointerScratch;
    private long _pointerScratchBytes;

    /// <summary>Launches on <paramref name="stream"/> (the stream the cuBLAS handles passed to <see cref="TryRun"/> are
    /// bound to).</summary>
    public GroupedBatchedGemm(nint stream)
    {
        _cuda = CudaRuntime.Shared;
        _cublas = CublasLibrary.Shared;
        _stream = stream;
    }

    /// <summary>Whether the library has the grouped call at all (cuBLAS 12.5 and later).</summary>
    public bool Available => _cublas.HasGroupedBatchedEx;

    /// <summary>
    /// Queues <c>C = A·B + beta·C</c> for every problem (inputs of <paramref name="inputType"/>, C of
    /// <paramref name="outputType"/>, float32 by default, alpha 1) in one call; false, with nothing queued, when the
    /// library
    /// lacks the call or refuses these types.
    /// </summary>
    public bool TryRun(
        nint handle,
        ReadOnlySpan<GemmProblem> problems,
        float beta,
        int inputType,
        int computeType,
        int outputType = CublasConstants.CudaR32F
    )
    {
        if (problems.IsEmpty)
            return true;
        var types = (inputType, computeType, outputType);
        if (!Available || _refused.Contains(types))
            return false;
        int groups = problems.Length;
        var transA = new int[groups];
        var transB = new int[groups];
        var m = new int[groups];
        var n = new int[groups];
        var k = new int[groups];
        var lda = new int[groups];
        var ldb = new int[groups];
        var ldc = new int[groups];
        var alpha = new float[groups];
        var betas = new float[groups];
        var groupSize = new int[groups];
        // Device arrays of pointers, laid out [A pointers | B pointers | C pointers], one per problem.
        var pointers = new nint[3 * groups];
        for (int i = 0; i < groups; i++)
        {
            ColumnMajorGemm g = problems[i].Gemm;
            (transA[i], transB[i], m[i], n[i], k[i], lda[i], ldb[i], ldc[i]) = (
                g.TransA,
                g.TransB,
                g.M,
                g.N,
                g.K,
                g.Lda,
                g.Ldb,
                g.Ldc
            );
            (alpha[i], betas[i], groupSize[i]) = (1f, beta, 1);
            pointers[i] = problems[i].First;
            pointers[groups + i] = problems[i].Second;
            pointers[2 * groups + i] = problems[i].C;
        }

        long bytes = (long)pointers.Length * sizeof(nint);
        nint scratch = PointerScratch(bytes);
        fixed (nint* host = pointers)
            // From pageable memory the copy is staged before the call returns, so `pointers` may die afterwards; being
            // on the GEMMs' stream, it also runs only after the previous call's kernels have read the old arrays.
            _cuda.MemcpyAsync(scratch, (nint)host, bytes, CudaConstants.MemcpyHostToDevice, _stream);
        try
        {
            fixed (
                int* ta = transA,
                    tb = transB,
                    pm = m,
                    pn = n,
                    pk = k,
                    plda = lda,
                    pldb = ldb,
                    pldc = ldc,
                    gs = groupSize
            )
            fixed (
                float* pa = alpha,
                    pb = betas
            )
            {
                _cublas.GemmGroupedBatchedEx(
                    handle,
                    ta,
                    tb,
                    pm,
                    pn,
                    pk,
                    pa,
                    scratch,
                    inputType,
                    plda,
                    scratch + groups * sizeof(nint),
                    inputType,
                    pldb,
                    pb,
                    scratch + 2 * groups * sizeof(nint),
                    outputType,
                    pldc,
                    groups,
                    gs,
                    computeType
                );
            }
        }
        catch (CublasException e)
            when (!_accepted.Contains(types)
                && e.Status is CublasConstants.StatusNotSupported or CublasConstants.StatusInvalidValue
            )
        {
            // Refused on its first use: a type combination outside the library's list, not a bad call of ours (the same
            // shapes run through cublasGemmEx next).
            _refused.Add(types);
            return false;
        }
        _accepted.Add(types);
        return true;
    }

    /// <summary>Frees the pointer scratch after the stream's work that may still read it.</summary>
    public void Dispose()
    {
        if (_pointerScratch == 0)
            return;
        _cuda.StreamSynchronize(_stream);
        _cuda.FreeNoThrow(_pointerScratch);
        _pointerScratch = 0;
        _pointerScratchBytes = 0;
    }

    private nint PointerScratch(long bytes)
    {
        if (_pointerScratchBytes >= bytes)
            return _pointerScratch;
        // Growing frees the old array; work still queued on the stream may read it, so wait for the stream first.
        if (_pointerScratch != 0)
        {
            _cuda.StreamSynchronize(_stream);
            _cuda.FreeNoThrow(_pointerScratch);
            _pointerScratch = 0;
        }
        // Room to grow: the number of products changes a little from call to call.
        long capacity = Math.Max(bytes * 2, 4096);
        _pointerScratch = _cuda.Malloc(capacity);
        _pointerScratchBytes = capacity;
        return _pointerScratch;
    }
}
