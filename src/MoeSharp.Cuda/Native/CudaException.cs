namespace MoeSharp.Cuda.Native;

/// <summary>A CUDA runtime call returned an error (<c>cudaError_t</c> other than <c>cudaSuccess</c>).</summary>
public sealed class CudaException : Exception
{
    /// <summary>
    /// Creates the exception for <paramref name="function"/> failing with <paramref name="errorCode"/>.
    /// </summary>
    public CudaException(string function, int errorCode, string? errorName, string? errorText)
        : base(
            $"{function} failed with CUDA error {errorCode}"
                + (string.IsNullOrEmpty(errorName) ? "" : $" ({errorName})")
                + (string.IsNullOrEmpty(errorText) ? "" : $": {errorText}")
        )
    {
        Function = function;
        ErrorCode = errorCode;
    }

    /// <summary>The runtime function that failed, e.g. <c>cudaMalloc</c>.</summary>
    public string Function { get; }

    /// <summary>The <c>cudaError_t</c> it returned.</summary>
    public int ErrorCode { get; }
}
