namespace MoeSharp.Cuda.Native;

/// <summary>A cuBLAS call returned a status other than <c>CUBLAS_STATUS_SUCCESS</c>.</summary>
public sealed class CublasException : Exception
{
    /// <summary>Creates the exception for <paramref name="function"/> failing with <paramref name="status"/>.</summary>
    public CublasException(string function, int status, string? statusText)
        : base(
            $"{function} failed with cuBLAS status {status}"
                + (string.IsNullOrEmpty(statusText) ? "" : $": {statusText}")
        )
    {
        Function = function;
        Status = status;
    }

    /// <summary>The cuBLAS function that failed, e.g. <c>cublasGemmEx</c>.</summary>
    public string Function { get; }

    /// <summary>The <c>cublasStatus_t</c> it returned.</summary>
    public int Status { get; }
}
