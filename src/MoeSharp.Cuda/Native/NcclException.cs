using MoeSharp.Collectives;

namespace MoeSharp.Cuda.Native;

/// <summary>
/// An NCCL call returned an error (<c>ncclResult_t</c> other than <c>ncclSuccess</c>), or a communicator reported
/// an asynchronous error. A <see cref="CollectiveException"/>, so callers of a process group catch one type.
/// </summary>
public sealed class NcclException : CollectiveException
{
    /// <summary>
    /// Creates the exception for <paramref name="function"/> failing with <paramref name="errorCode"/>.
    /// </summary>
    public NcclException(string function, int errorCode, string? errorText, int rank)
        : base(
            $"rank {rank}: {function} failed with NCCL error {errorCode}"
                + (string.IsNullOrEmpty(errorText) ? "" : $": {errorText}")
        )
    {
        Function = function;
        ErrorCode = errorCode;
    }

    /// <summary>The NCCL function that failed, e.g. <c>ncclGroupEnd</c>.</summary>
    public string Function { get; }

    /// <summary>The <c>ncclResult_t</c> it returned.</summary>
    public int ErrorCode { get; }
}
