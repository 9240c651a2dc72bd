namespace MoeSharp.Cuda.Native;

/// <summary>
/// NCCL constants from <c>nccl.h</c> (2.28); each value is pinned by a test that quotes the header line.
/// </summary>
internal static class NcclConstants
{
    /// <summary><c>#define NCCL_UNIQUE_ID_BYTES 128</c>.</summary>
    public const int UniqueIdBytes = 128;

    /// <summary><c>ncclSuccess = 0</c>.</summary>
    public const int Success = 0;

    /// <summary><c>ncclInProgress = 7</c>: a non-blocking communicator's operation is still running.</summary>
    public const int InProgress = 7;

    /// <summary><c>ncclInt8 = 0</c>.</summary>
    public const int Int8 = 0;

    /// <summary><c>ncclInt32 = 2</c>.</summary>
    public const int Int32 = 2;

    /// <summary><c>ncclInt64 = 4</c>.</summary>
    public const int Int64 = 4;

    /// <summary><c>ncclFloat32 = 7</c>.</summary>
    public const int Float32 = 7;

    /// <summary><c>ncclBfloat16 = 9</c>.</summary>
    public const int BFloat16 = 9;

    /// <summary><c>ncclSum = 0</c>.</summary>
    public const int Sum = 0;
}
