using MoeSharp.Cli.Commands;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Soak;

/// <summary>
/// Where a soak's ranks compute, kept across runs: on ILGPU's CPU accelerator each rank index keeps one backend
/// (creating an accelerator and compiling its kernels costs about a second per rank), so a short soak does tens of runs
/// instead of a handful. Host kernels need nothing; CUDA ranks are made per run (their NCCL communicator belongs to one
/// world).
/// </summary>
internal sealed class SoakDevices(ComputeOptions compute) : IDisposable
{
    private readonly Lock _lock = new();
    private List<IlgpuBackend?> _backends = [];

    /// <summary>Host kernels (nothing to keep).</summary>
    public static SoakDevices Host { get; } = new(ComputeOptions.Host);

    /// <summary>
    /// This rank's device compute for one run (null on host); disposing it leaves a kept backend open.
    /// </summary>
    public DeviceRank? CreateRank(IProcessGroup world)
    {
        if (compute.Device != DeviceKind.IlgpuCpu)
            return compute.CreateRank(world);
        IlgpuBackend backend;
        lock (_lock)
        {
            while (_backends.Count <= world.Rank)
                _backends.Add(null);
            backend = _backends[world.Rank] ??= IlgpuBackend.CreateCpu();
        }
        return DeviceRank.CreateCpu(world, backend);
    }

    /// <summary>
    /// After a hang: a rank still running may hold its backend, so the next run gets fresh ones; the old ones are left
    /// to the hung threads (freed when the process ends).
    /// </summary>
    public void Abandon()
    {
        lock (_lock)
        {
            _backends = [];
        }
    }

    /// <summary>Frees every kept backend.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (IlgpuBackend backend in _backends.OfType<IlgpuBackend>())
                backend.Dispose();
            _backends = [];
        }
    }
}
