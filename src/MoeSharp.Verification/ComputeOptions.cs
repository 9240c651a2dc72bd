using MoeSharp.Collectives;
using MoeSharp.Cuda;

namespace MoeSharp.Verification;

/// <summary>
/// Where a command's ranks compute: host kernels, CUDA GPUs, or the CUDA backend's kernels on ILGPU's CPU accelerator.
/// </summary>
public enum DeviceKind
{
    /// <summary>Managed host kernels (the default).</summary>
    Host,

    /// <summary>ILGPU kernels on NVIDIA GPUs, NCCL exchanges.</summary>
    Cuda,

    /// <summary>
    /// The same ILGPU kernels on ILGPU's CPU accelerator, host-staged exchanges: the GPU code path without a GPU.
    /// </summary>
    IlgpuCpu,
}

/// <summary><c>--device</c> and <c>--gpus</c>.</summary>
/// <param name="Device">Where to compute.</param>
/// <param name="Gpus">GPUs to spread ranks over (CUDA only).</param>
public sealed record ComputeOptions(DeviceKind Device, int Gpus)
{
    /// <summary>Host kernels.</summary>
    public static ComputeOptions Host { get; } = new(DeviceKind.Host, 0);

    /// <summary>
    /// Parses <c>--device host|cuda|ilgpu-cpu</c> and <c>--gpus N</c> (default: every visible CUDA device).
    /// </summary>
    public static ComputeOptions Parse(string? device, int? gpus)
    {
        DeviceKind kind = device switch
        {
            null or "host" => DeviceKind.Host,
            "cuda" => DeviceKind.Cuda,
            "ilgpu-cpu" => DeviceKind.IlgpuCpu,
            _ => throw new ArgumentException($"--device '{device}' is not host, cuda or ilgpu-cpu"),
        };
        if (gpus is < 1)
            throw new ArgumentException($"--gpus {gpus} must be at least 1");
        if (gpus is not null && kind != DeviceKind.Cuda)
            throw new ArgumentException($"--gpus {gpus} needs --device cuda");
        return new ComputeOptions(kind, gpus ?? 0);
    }

    /// <summary>The option's spelling: <c>host</c>, <c>cuda</c> or <c>ilgpu-cpu</c>.</summary>
    public string DeviceName =>
        Device switch
        {
            DeviceKind.Cuda => "cuda",
            DeviceKind.IlgpuCpu => "ilgpu-cpu",
            _ => "host",
        };

    /// <summary>True when ranks compute on an ILGPU device.</summary>
    public bool OnDevice => Device != DeviceKind.Host;

    /// <summary>
    /// This rank's device compute, or null for host kernels. Collective over <paramref name="world"/> for CUDA (NCCL
    /// setup).
    /// </summary>
    public DeviceRank? CreateRank(IProcessGroup world) =>
        Device switch
        {
            DeviceKind.Cuda => DeviceRank.CreateCuda(world, Gpus > 0 ? Gpus : CudaDeviceCount()),
            DeviceKind.IlgpuCpu => DeviceRank.CreateCpu(world),
            _ => null,
        };

    /// <summary>One line for tables: <c>host</c>, <c>cuda ×4 (nccl)</c>, ….</summary>
    public string Describe(DeviceRank? rank) =>
        rank is null ? "host" : $"{DeviceName} {rank.Backend.Accelerator.Name} ({rank.Exchange})";

    /// <summary>Visible CUDA devices.</summary>
    /// <exception cref="ArgumentException">None can be used (a usage error naming <c>--device cuda</c>).</exception>
    public static int CudaDeviceCount()
    {
        try
        {
            return IlgpuBackend.CudaDeviceCount();
        }
        catch (InvalidOperationException ex)
        {
            throw new ArgumentException($"--device cuda: {ex.Message}", ex);
        }
    }
}
