using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace MoeSharp.Cuda.Native;

/// <summary>
/// Moves an ILGPU CUDA accelerator onto its device's primary context, the one the CUDA runtime — and so NCCL and
/// cuBLAS — uses. ILGPU 1.5.3 creates a context of its own (<c>cuCtxCreate</c>); memory and streams of that context
/// are not valid in the runtime's, and NCCL switches threads to the primary context internally (<c>cudaSetDevice</c>),
/// so a process that mixes them fails with "invalid resource handle" (seen on 2×H100). Adopting the primary
/// context before any kernel is loaded or buffer allocated puts every library in one context.
/// </summary>
/// <remarks>
/// ILGPU keeps the context in <c>Accelerator.NativePtr</c>, whose setter is not public: it is set by reflection, and
/// set back on <see cref="Dispose"/> so ILGPU destroys its own context, never the primary one. The primary context is
/// retained for the life of the process, as the CUDA runtime keeps it: releasing it when the last rank on a GPU let go
/// destroyed it under the runtime's cached state, and the next backend on that GPU failed with "context is destroyed".
/// </remarks>
internal sealed class PrimaryContextAdoption : IDisposable
{
    private const string Driver = "libcuda.so.1";
    private static readonly PropertyInfo NativePtrProperty =
        typeof(Accelerator).GetProperty(
            nameof(Accelerator.NativePtr),
            BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic
        ) ?? throw new MissingMemberException(nameof(Accelerator), nameof(Accelerator.NativePtr));

    private readonly CudaAccelerator _accelerator;
    private readonly IntPtr _ilgpuContext;
    private bool _disposed;

    private PrimaryContextAdoption(CudaAccelerator accelerator, IntPtr ilgpuContext)
    {
        _accelerator = accelerator;
        _ilgpuContext = ilgpuContext;
    }

    /// <summary>
    /// Switches <paramref name="accelerator"/> to its device's primary context and makes that context current.
    /// </summary>
    public static PrimaryContextAdoption Adopt(CudaAccelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        Check(cuDevicePrimaryCtxRetain(out IntPtr primary, accelerator.DeviceId), "cuDevicePrimaryCtxRetain");
        IntPtr own = accelerator.NativePtr;
        NativePtrProperty.SetValue(accelerator, primary);
        Check(cuCtxSetCurrent(primary), "cuCtxSetCurrent");
        return new PrimaryContextAdoption(accelerator, own);
    }

    /// <summary>
    /// Gives ILGPU its own context back, for it to destroy; the primary context stays (see the remarks).
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        NativePtrProperty.SetValue(_accelerator, _ilgpuContext);
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
            throw new InvalidOperationException($"{call} failed with CUDA driver error {result}");
    }

    [DllImport(Driver)]
    private static extern int cuDevicePrimaryCtxRetain(out IntPtr context, int device);

    [DllImport(Driver)]
    private static extern int cuCtxSetCurrent(IntPtr context);
}
