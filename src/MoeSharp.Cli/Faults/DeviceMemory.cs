using MoeSharp.Cuda.Native;
using MoeSharp.Tensors;
using Spectre.Console;

namespace MoeSharp.Cli.Faults;

/// <summary>What the CUDA runtime reports before any rank starts: the visible GPUs and GPU 0's free memory.</summary>
/// <param name="Gpus">Visible CUDA devices.</param>
/// <param name="FreeBytes">Free bytes on GPU 0 (cudaMemGetInfo).</param>
internal readonly record struct GpuMemory(int Gpus, long FreeBytes);

/// <summary>
/// The device-memory half of a command's estimate on CUDA: the ranks that share a GPU (in-process ranks spread over the
/// GPUs) must fit in the free memory of GPU 0, else one line and exit 2 before any rank starts. The decision is
/// <see cref="Decide"/> (figures passed in, unit-tested); <see cref="Query"/> is the thin CUDA call.
/// </summary>
internal static class DeviceMemory
{
    /// <summary>
    /// The verdict for <paramref name="ranksInProcess"/> ranks of <paramref name="perRankBytes"/> each spread over
    /// <paramref name="gpus"/> GPUs (the GPUs chosen by <c>--gpus</c>, else every visible one).
    /// </summary>
    /// <param name="perRankBytes">One rank's device bytes.</param>
    /// <param name="ranksInProcess">The in-process ranks (1 under MPI: one process per rank).</param>
    /// <param name="gpus">GPUs the ranks take, round robin.</param>
    /// <param name="freeOnGpu0">Free bytes on GPU 0.</param>
    /// <param name="options">The options the figures come from, for the message.</param>
    public static ValidationResult Decide(
        long perRankBytes,
        int ranksInProcess,
        int gpus,
        long freeOnGpu0,
        string options
    )
    {
        long ranksPerGpu = (Math.Max(1, ranksInProcess) + Math.Max(1, gpus) - 1) / Math.Max(1, gpus);
        long needed = MemoryBudget.Multiply(perRankBytes, ranksPerGpu);
        if (needed <= freeOnGpu0)
            return ValidationResult.Success();
        return ValidationResult.Error(
            $"needs {MemoryBudget.FormatBytes(needed)} of device memory per GPU, "
                + $"{MemoryBudget.FormatBytes(freeOnGpu0)} free on GPU 0 ({options})"
        );
    }

    /// <summary>
    /// GPU 0's free memory and the GPU count, or null when there is no CUDA runtime or no GPU (the check is skipped;
    /// the command then reports the missing device as it did before).
    /// </summary>
    public static GpuMemory? Query()
    {
        try
        {
            CudaRuntime cuda = CudaRuntime.Shared;
            int gpus = cuda.DeviceCount();
            if (gpus == 0)
                return null;
            int previous = cuda.GetDevice();
            cuda.SetDevice(0);
            (long free, _) = cuda.MemGetInfo();
            cuda.SetDevice(previous);
            return new GpuMemory(gpus, free);
        }
        catch (Exception ex) when (ex is DllNotFoundException or CudaException or EntryPointNotFoundException)
        {
            return null;
        }
    }
}
