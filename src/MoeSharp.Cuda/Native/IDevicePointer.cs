namespace MoeSharp.Cuda.Native;

/// <summary>
/// A <see cref="MoeSharp.Tensors.DeviceBuffer"/> whose memory is a plain CUDA device allocation that native
/// libraries (NCCL, cuBLAS) can read and write. The ILGPU backend's buffer implements it with the native pointer of
/// its ILGPU <c>MemoryBuffer</c>; <see cref="CudaDeviceBuffer"/> implements it over <c>cudaMalloc</c>.
/// </summary>
internal interface IDevicePointer
{
    /// <summary>The device address of the first byte (a <c>CUdeviceptr</c> / <c>void*</c> in device memory).</summary>
    nint Pointer { get; }

    /// <summary>Bytes from <see cref="Pointer"/> that belong to the buffer.</summary>
    long LengthInBytes { get; }

    /// <summary>The CUDA device ordinal the memory lives on.</summary>
    int DeviceOrdinal { get; }
}
