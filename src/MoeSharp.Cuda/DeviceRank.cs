using MoeSharp.Collectives;
using MoeSharp.Cuda.Nccl;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda;

/// <summary>
/// One rank's compute on an ILGPU device: its backend (kernels, allocator) and the process group its dispatcher
/// exchanges device rows through — NCCL when every rank has a GPU of its own, otherwise host-staged exchanges.
/// </summary>
public sealed class DeviceRank : IDisposable
{
    private readonly bool _ownsWorld;
    private readonly bool _ownsBackend;

    private DeviceRank(
        IlgpuBackend backend,
        IProcessGroup world,
        string exchange,
        bool ownsWorld,
        bool ownsBackend = true
    )
    {
        _ownsBackend = ownsBackend;
        Backend = backend;
        World = world;
        Exchange = exchange;
        _ownsWorld = ownsWorld;
    }

    /// <summary>The rank's device backend.</summary>
    public IlgpuBackend Backend { get; }

    /// <summary>The group to build the dispatcher's <c>ParallelGroups</c> from: same ranks as the host group.</summary>
    public IProcessGroup World { get; }

    /// <summary>How device rows move between ranks: <c>nccl</c> or <c>host-staged</c>.</summary>
    public string Exchange { get; }

    /// <summary>
    /// Collective over <paramref name="hostWorld"/>: rank r takes CUDA device <c>r mod gpus</c>. With at least as many
    /// GPUs as ranks each rank owns its GPU and the ranks exchange through NCCL (one communicator per rank, threads or
    /// processes alike); otherwise ranks share GPUs and exchange through host memory (NCCL allows one rank per GPU).
    /// </summary>
    /// <param name="hostWorld">The ranks (in-process threads or MPI processes).</param>
    /// <param name="gpus">GPUs to spread the ranks over (per node, under MPI).</param>
    public static DeviceRank CreateCuda(IProcessGroup hostWorld, int gpus)
    {
        ArgumentNullException.ThrowIfNull(hostWorld);
        ArgumentOutOfRangeException.ThrowIfLessThan(gpus, 1);
        int device = hostWorld.Rank % gpus;
        IlgpuBackend backend = IlgpuBackend.CreateCuda(device);
        try
        {
            if (gpus < hostWorld.Size)
            {
                return new DeviceRank(backend, new HostStagedProcessGroup(hostWorld), "host-staged", ownsWorld: false);
            }
            // ILGPU runs its kernels in a driver-API context of its own on the legacy default stream: NCCL must use
            // that context (so the pointers are valid) and that stream (so the exchange is ordered after the kernels).
            NcclProcessGroup nccl = NcclProcessGroup.Create(
                hostWorld,
                device,
                computeStream: 0,
                ownsBootstrap: false,
                bindContext: () => backend.Accelerator.Bind(),
                computeStreamIsLegacyDefault: true,
                orderedSum: backend.Kernels
            );
            // Exchanges are queued on the backend's stream without a wait: its blocking host waits drain through the
            // group, so a peer's failure becomes an exception there instead of a hang.
            backend.Allocator.HostWaits.Guard(nccl);
            return new DeviceRank(backend, nccl, "nccl", ownsWorld: true);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A rank on ILGPU's CPU accelerator (the CUDA backend's kernels run on .NET threads) with host-staged exchanges.
    /// </summary>
    public static DeviceRank CreateCpu(IProcessGroup hostWorld)
    {
        ArgumentNullException.ThrowIfNull(hostWorld);
        return new DeviceRank(
            IlgpuBackend.CreateCpu(),
            new HostStagedProcessGroup(hostWorld),
            "host-staged",
            ownsWorld: false
        );
    }

    /// <summary>
    /// A rank on a CPU-accelerator backend the caller keeps (<see cref="Dispose"/> leaves it open), so runs that follow
    /// one another (a soak) skip creating an accelerator and compiling its kernels each time. One rank at a time may
    /// use it.
    /// </summary>
    /// <param name="hostWorld">The ranks.</param>
    /// <param name="backend">A backend from <see cref="IlgpuBackend.CreateCpu"/>, owned by the caller.</param>
    public static DeviceRank CreateCpu(IProcessGroup hostWorld, IlgpuBackend backend)
    {
        ArgumentNullException.ThrowIfNull(hostWorld);
        ArgumentNullException.ThrowIfNull(backend);
        return new DeviceRank(
            backend,
            new HostStagedProcessGroup(hostWorld),
            "host-staged",
            ownsWorld: false,
            ownsBackend: false
        );
    }

    /// <summary>This rank's device copy of a host tensor.</summary>
    public Tensor Upload(Tensor host) => Backend.Kernels.Device.ToDevice(host);

    /// <summary>
    /// Frees the NCCL communicator (if any) and the backend (unless borrowed); the host group stays with its owner.
    /// </summary>
    public void Dispose()
    {
        Backend.Allocator.HostWaits.Guard(null);
        if (_ownsWorld)
            World.Dispose();
        if (_ownsBackend)
            Backend.Dispose();
    }
}
