using MoeSharp.Collectives;

namespace MoeSharp.Mpi;

/// <summary>An MPI function returned an error code.</summary>
public sealed class MpiException : CollectiveException
{
    /// <summary>
    /// Creates the exception for <paramref name="function"/> failing with <paramref name="errorCode"/>.
    /// </summary>
    public MpiException(string function, int errorCode, string? errorText, int worldRank)
        : base(
            $"rank {worldRank}: {function} failed with MPI error {errorCode}"
                + (string.IsNullOrEmpty(errorText) ? "" : $": {errorText}")
        )
    {
        Function = function;
        ErrorCode = errorCode;
    }

    /// <summary>The MPI function that failed, e.g. <c>MPI_Alltoallv</c>.</summary>
    public string Function { get; }

    /// <summary>The error code it returned.</summary>
    public int ErrorCode { get; }
}
