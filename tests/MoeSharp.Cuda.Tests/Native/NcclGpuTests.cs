using System.Runtime.InteropServices;
using MoeSharp.Collectives;
using MoeSharp.Cuda.Native;
using MoeSharp.Cuda.Nccl;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Native;

/// <summary>
/// NCCL device collectives on two GPUs driven by one process, a thread per GPU, bootstrapped by the in-process group.
/// Run on the GPU machine (set NCCL_NVLS_ENABLE=0 there); skipped elsewhere.
/// </summary>
public class NcclGpuTests
{
    private const int Ranks = 2;

    private static float Tag(int from, int to, int i) => from * 10_000 + to * 100 + i;

    private static Tensor Upload(int device, float[] values, out CudaDeviceBuffer buffer)
    {
        buffer = new CudaDeviceBuffer(device, (long)values.Length * sizeof(float));
        buffer.CopyFromHost(MemoryMarshal.AsBytes(values.AsSpan()), 0);
        return Tensor.OnDevice(buffer, DType.Float32, values.Length);
    }

    private static float[] Download(Tensor tensor)
    {
        var values = new float[tensor.ElementCount];
        tensor.DeviceBuffer!.CopyToHost(0, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Rank p sends (p + q + 1) rows to rank q, zero to itself when p == q == 0.</summary>
    private static int Count(int from, int to) => from == 0 && to == 0 ? 0 : from + to + 1;

    private static float[][] Exchange(bool asynchronous) =>
        InProcessWorld.Run(
            Ranks,
            g =>
            {
                using var nccl = NcclProcessGroup.Create(g, device: g.Rank);
                int[] sendCounts = Enumerable.Range(0, Ranks).Select(q => Count(g.Rank, q)).ToArray();
                int[] receiveCounts = Enumerable.Range(0, Ranks).Select(p => Count(p, g.Rank)).ToArray();
                float[] send = Enumerable
                    .Range(0, Ranks)
                    .SelectMany(q => Enumerable.Range(0, Count(g.Rank, q)).Select(i => Tag(g.Rank, q, i)))
                    .ToArray();
                Tensor sendTensor = Upload(nccl.Device, send, out CudaDeviceBuffer sendBuffer);
                Tensor receiveTensor = Upload(
                    nccl.Device,
                    new float[receiveCounts.Sum()],
                    out CudaDeviceBuffer receiveBuffer
                );
                using (sendBuffer)
                using (receiveBuffer)
                {
                    if (asynchronous)
                        nccl.AllToAllVAsync(sendTensor, sendCounts, receiveTensor, receiveCounts).Wait();
                    else
                        nccl.AllToAllV(sendTensor, sendCounts, receiveTensor, receiveCounts);
                    // The exchange is only queued (on the group's own stream here): the host reads after draining it.
                    nccl.Drain("test read");
                    return Download(receiveTensor);
                }
            },
            TimeSpan.FromSeconds(60)
        );

    private static float[] Expected(int rank) =>
        Enumerable
            .Range(0, Ranks)
            .SelectMany(p => Enumerable.Range(0, Count(p, rank)).Select(i => Tag(p, rank, i)))
            .ToArray();

    [NativeCudaFact(MinDevices = Ranks, Nccl = true)]
    public void AllToAllV_DeliversChunkQToRankQ_InRankOrder()
    {
        float[][] received = Exchange(asynchronous: false);
        for (int r = 0; r < Ranks; r++)
            Assert.Equal(Expected(r), received[r]);
    }

    [NativeCudaFact(MinDevices = Ranks, Nccl = true)]
    public void AllToAllVAsync_DeliversTheSameRows()
    {
        float[][] received = Exchange(asynchronous: true);
        for (int r = 0; r < Ranks; r++)
            Assert.Equal(Expected(r), received[r]);
    }

    [NativeCudaFact(MinDevices = Ranks, Nccl = true)]
    public void AllReduceSum_IsInRankOrder_AndBitwiseEqualOnEveryRank()
    {
        const int n = 257;
        float Value(int rank, int i) => (float)Math.Sin(rank * 31 + i) * (i % 7 == 0 ? 1e8f : 1f);
        float[][] results = InProcessWorld.Run(
            Ranks,
            g =>
            {
                using var nccl = NcclProcessGroup.Create(g, device: g.Rank);
                Tensor values = Upload(
                    nccl.Device,
                    Enumerable.Range(0, n).Select(i => Value(g.Rank, i)).ToArray(),
                    out CudaDeviceBuffer buffer
                );
                using (buffer)
                {
                    nccl.AllReduceSum(values);
                    nccl.Drain("test read");
                    return Download(values);
                }
            },
            TimeSpan.FromSeconds(60)
        );

        for (int i = 0; i < n; i++)
        {
            float expected = Value(0, i);
            for (int r = 1; r < Ranks; r++)
                expected += Value(r, i);
            for (int r = 0; r < Ranks; r++)
                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(results[r][i]));
        }
    }

    [NativeCudaFact(MinDevices = Ranks, Nccl = true)]
    public void HostCollectives_GoThroughTheBootstrapGroup()
    {
        int[][] gathered = InProcessWorld.Run(
            Ranks,
            g =>
            {
                using var nccl = NcclProcessGroup.Create(g, device: g.Rank);
                var all = new int[Ranks];
                nccl.AllGather<int>([nccl.Rank * 7], all);
                return all;
            },
            TimeSpan.FromSeconds(60)
        );
        Assert.All(gathered, a => Assert.Equal([0, 7], a));
    }

    [NativeCudaFact(MinDevices = Ranks, Nccl = true)]
    public void BadCountsOnOneRank_FailEveryRank_WithinTheTimeout()
    {
        var ex = Assert.ThrowsAny<Exception>(() =>
            InProcessWorld.Run(
                Ranks,
                g =>
                {
                    using var nccl = NcclProcessGroup.Create(g, device: g.Rank);
                    Tensor t = Upload(nccl.Device, new float[4], out CudaDeviceBuffer buffer);
                    using (buffer)
                    {
                        int[] counts = g.Rank == 1 ? [5, 5] : [1, 1]; // rank 1 asks for more than its buffers hold
                        nccl.AllToAllV(t, counts, t, counts);
                        // rank 0's exchange was queued; its read fails instead of hanging
                        nccl.Drain("read of the received rows");
                    }
                },
                TimeSpan.FromSeconds(20)
            )
        );
        Assert.NotNull(ex);
    }
}
