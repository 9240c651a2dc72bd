namespace MoeSharp.Cuda.Native;

/// <summary>
/// cuBLAS and <c>library_types.h</c> constants MoeSharp passes; each value is pinned by a test that quotes the header
/// line.
/// </summary>
internal static class CublasConstants
{
    /// <summary><c>CUBLAS_STATUS_SUCCESS = 0</c>.</summary>
    public const int StatusSuccess = 0;

    /// <summary>
    /// <c>CUBLAS_STATUS_INVALID_VALUE = 7</c>: an argument (or, for some calls, a type combination) is not accepted.
    /// </summary>
    public const int StatusInvalidValue = 7;

    /// <summary><c>CUBLAS_STATUS_NOT_SUPPORTED = 15</c>: the operation or type combination is not supported.</summary>
    public const int StatusNotSupported = 15;

    /// <summary><c>CUBLAS_OP_N = 0</c>: use the matrix as stored (column-major).</summary>
    public const int OpN = 0;

    /// <summary><c>CUBLAS_OP_T = 1</c>: use its transpose.</summary>
    public const int OpT = 1;

    /// <summary><c>CUDA_R_32F = 0</c> (<c>cudaDataType_t</c>).</summary>
    public const int CudaR32F = 0;

    /// <summary><c>CUDA_R_16BF = 14</c> (<c>cudaDataType_t</c>).</summary>
    public const int CudaR16BF = 14;

    /// <summary><c>CUBLAS_COMPUTE_32F = 68</c>: float accumulation, tensor cores allowed for 16-bit inputs.</summary>
    public const int Compute32F = 68;

    /// <summary><c>CUBLAS_COMPUTE_32F_PEDANTIC = 69</c>: standard float arithmetic, no TF32 down-conversion.</summary>
    public const int Compute32FPedantic = 69;

    /// <summary>
    /// <c>CUBLAS_COMPUTE_32F_FAST_16BF = 75</c>: float accumulation of float32 inputs that may be down-converted to
    /// bfloat16 (or TF32) for the tensor cores; exact for inputs that already are bfloat16 values.
    /// </summary>
    public const int Compute32FFast16BF = 75;

    /// <summary><c>CUBLAS_GEMM_DEFAULT = -1</c> (<c>cublasGemmAlgo_t</c>).</summary>
    public const int GemmDefault = -1;

    /// <summary><c>CUBLAS_DEFAULT_MATH = 0</c> (<c>cublasMath_t</c>).</summary>
    public const int DefaultMath = 0;

    /// <summary><c>CUBLAS_PEDANTIC_MATH = 2</c> (<c>cublasMath_t</c>).</summary>
    public const int PedanticMath = 2;
}
