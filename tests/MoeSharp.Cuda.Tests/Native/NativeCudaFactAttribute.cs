using MoeSharp.Cuda.Native;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>
/// A fact that needs a GPU: skipped, with the reason, when libcudart (or, on request, libnccl / libcublas) cannot be
/// loaded or fewer than <see cref="MinDevices"/> CUDA devices are visible. xunit 2 has no dynamic skip, so the reason
/// is worked out when the attribute is read.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NativeCudaFactAttribute : FactAttribute
{
    private int _minDevices = 1;
    private bool _nccl;
    private bool _cublas;

    /// <summary>Skips unless the CUDA runtime loads and a device is present.</summary>
    public NativeCudaFactAttribute() => Update();

    /// <summary>Devices the test needs (NCCL tests on one process with threads need 2).</summary>
    public int MinDevices
    {
        get => _minDevices;
        init
        {
            _minDevices = value;
            Update();
        }
    }

    /// <summary>Also needs libnccl.so.2.</summary>
    public bool Nccl
    {
        get => _nccl;
        init
        {
            _nccl = value;
            Update();
        }
    }

    /// <summary>Also needs libcublas.</summary>
    public bool Cublas
    {
        get => _cublas;
        init
        {
            _cublas = value;
            Update();
        }
    }

    private void Update() => Skip = SkipReason(_minDevices, _nccl, _cublas)!;

    internal static string? SkipReason(int minDevices, bool nccl, bool cublas)
    {
        try
        {
            int devices = CudaRuntime.Shared.DeviceCount();
            if (devices < minDevices)
                return $"needs {minDevices} CUDA device(s), {devices} visible";
            if (nccl)
                _ = NcclLibrary.Shared;
            if (cublas)
                _ = CublasLibrary.Shared;
            return null;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or CudaException)
        {
            return ex.Message;
        }
    }
}
