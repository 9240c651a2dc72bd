using MoeSharp.Cli.Faults;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// The CUDA device-memory check: the decision from injected figures, and the query that is skipped without a GPU.
/// </summary>
public class DeviceMemoryTests
{
    private const long GB = 1_000_000_000;

    [Fact]
    public void RanksThatFitOnTheirGpus_Pass()
    {
        Assert.True(
            DeviceMemory.Decide(10 * GB, ranksInProcess: 4, gpus: 4, freeOnGpu0: 12 * GB, "--world 4").Successful
        );
        Assert.True(
            DeviceMemory.Decide(10 * GB, ranksInProcess: 1, gpus: 8, freeOnGpu0: 10 * GB, "--world 8").Successful
        );
    }

    [Fact]
    public void RanksSharingAGpu_AddUp_AndTheLineNamesBothFigures()
    {
        // 4 in-process ranks on 2 GPUs: 2 ranks of 10 GB on GPU 0, which has 15 GB free.
        var result = DeviceMemory.Decide(
            10 * GB,
            ranksInProcess: 4,
            gpus: 2,
            freeOnGpu0: 15 * GB,
            "--world 4 --tokens 9"
        );
        Assert.False(result.Successful);
        Assert.Equal(
            "needs 20.0 GB of device memory per GPU, 15.0 GB free on GPU 0 (--world 4 --tokens 9)",
            result.Message
        );
    }

    [Fact]
    public void AnOverflowingEstimate_IsRefused_NotWrapped()
    {
        var result = DeviceMemory.Decide(
            long.MaxValue / 2,
            ranksInProcess: 3,
            gpus: 1,
            freeOnGpu0: 80 * GB,
            "--world 3"
        );
        Assert.False(result.Successful);
        Assert.Contains("of device memory per GPU", result.Message);
    }

    [Fact]
    public void Query_IsNullWithoutAGpu_ElseReportsGpuZero()
    {
        GpuMemory? gpu = DeviceMemory.Query();
        if (gpu is GpuMemory g)
        {
            Assert.True(g.Gpus > 0);
            Assert.True(g.FreeBytes > 0);
        }
        else
        {
            Assert.Equal(0, CudaCountOrZero());
        }
    }

    private static int CudaCountOrZero()
    {
        try
        {
            return MoeSharp.Cuda.IlgpuBackend.CudaDeviceCount();
        }
        catch (InvalidOperationException)
        {
            return 0;
        }
    }
}
