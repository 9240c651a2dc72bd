namespace MoeSharp.Cuda.Native;

/// <summary>
/// CUDA runtime constants MoeSharp passes or tests, copied from the CUDA headers (<c>driver_types.h</c>); each value
/// is pinned by a test that quotes the header line.
/// </summary>
internal static class CudaConstants
{
    /// <summary><c>cudaSuccess = 0</c>.</summary>
    public const int Success = 0;

    /// <summary><c>cudaErrorNoDevice = 100</c>: no CUDA-capable device was detected.</summary>
    public const int ErrorNoDevice = 100;

    /// <summary>
    /// <c>cudaErrorNotReady = 600</c>: what <c>cudaStreamQuery</c> / <c>cudaEventQuery</c> return while work is
    /// pending.
    /// </summary>
    public const int ErrorNotReady = 600;

    /// <summary><c>cudaMemcpyHostToDevice = 1</c>.</summary>
    public const int MemcpyHostToDevice = 1;

    /// <summary><c>cudaMemcpyDeviceToHost = 2</c>.</summary>
    public const int MemcpyDeviceToHost = 2;

    /// <summary><c>cudaMemcpyDeviceToDevice = 3</c>.</summary>
    public const int MemcpyDeviceToDevice = 3;

    /// <summary>
    /// <c>#define cudaStreamNonBlocking 0x01</c>: no implicit synchronization with the legacy default stream.
    /// </summary>
    public const uint StreamNonBlocking = 0x01;

    /// <summary><c>#define cudaEventDefault 0x00</c>.</summary>
    public const uint EventDefault = 0x00;

    /// <summary><c>#define cudaEventDisableTiming 0x02</c>: cheaper events for pure synchronization.</summary>
    public const uint EventDisableTiming = 0x02;
}
