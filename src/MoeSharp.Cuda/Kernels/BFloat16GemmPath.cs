namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// How <see cref="IlgpuLayerKernels"/> runs a grouped product with bfloat16 inputs on cuBLAS. Every path rounds each
/// input value once to bfloat16 and accumulates in float32; they differ in storage and in the calls made.
/// </summary>
public enum BFloat16GemmPath
{
    /// <summary>
    /// Each group's rows copied to bfloat16 at a fixed stride (the largest group's rows, the rest zero), then one
    /// <c>cublasGemmStridedBatchedEx</c> call with a float32 output, whose rows are copied back. Taken while the
    /// padding adds at most a quarter to the rows; beyond that <see cref="GroupedBFloat16Output"/>, and when an empty
    /// group's output must be left alone, <see cref="PerGroup"/>.
    /// </summary>
    PaddedBatched,

    /// <summary>
    /// Operands copied to bfloat16 storage, one <c>cublasGemmGroupedBatchedEx</c> call with bfloat16 A, B and C (the
    /// types cuBLAS documents for it), C widened into the float32 output by one element-wise pass. The output is
    /// rounded once more to bfloat16, as the peer's <c>torch._grouped_mm</c> output is.
    /// </summary>
    GroupedBFloat16Output,

    /// <summary>Operands copied to bfloat16 storage, one <c>cublasGemmEx</c> per group with a float32 output.</summary>
    PerGroup,

    /// <summary>
    /// Operands rounded to bfloat16 values kept in float32 storage, one grouped call in
    /// <c>CUBLAS_COMPUTE_32F_FAST_16BF</c> with a float32 output (the first GPU backend's path).
    /// </summary>
    RoundedInFloat32,
}
