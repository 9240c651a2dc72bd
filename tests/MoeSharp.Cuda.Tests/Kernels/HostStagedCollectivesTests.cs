using MoeSharp.Collectives;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// <see cref="HostStagedProcessGroup"/> with tensors on ILGPU's CPU accelerator over in-process ranks: the tensor
/// collectives move device rows of every dtype bit for bit and leave the elements past the counts alone, the ordered
/// sum gives the host group's bits, and the in-process group itself rejects the device tensors with the one error.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class HostStagedCollectivesTests(CpuBackendFixture fixture)
{
    private const int Ranks = 3;

    /// <summary>Rank p sends p + q + 1 elements to q.</summary>
    private static int Count(int p, int q) => p + q + 1;

    /// <summary>Raw bits per (sender, receiver, element); as bfloat16, NaN payloads a widening would lose.</summary>
    private static int Bits(int p, int q, int i) => 0x7F81 + 100 * p + 10 * q + i;

    private static Tensor HostTensor(DType dtype, int[] bits) =>
        dtype switch
        {
            DType.Float32 => Tensor.FromArray(bits.Select(BitConverter.Int32BitsToSingle).ToArray(), bits.Length),
            DType.BFloat16 => Tensor.FromArray(bits.Select(b => BFloat16.FromBits((ushort)b)).ToArray(), bits.Length),
            _ => Tensor.FromArray(bits, bits.Length),
        };

    private static int[] BitsOf(Tensor host) =>
        host.DType switch
        {
            DType.Float32 => host.AsSpan<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray(),
            DType.BFloat16 => host.AsSpan<BFloat16>().ToArray().Select(b => (int)(short)b.Bits).ToArray(),
            _ => host.AsSpan<int>().ToArray(),
        };

    [Theory]
    [InlineData(DType.Float32, false)]
    [InlineData(DType.BFloat16, false)]
    [InlineData(DType.Int32, false)]
    [InlineData(DType.Float32, true)]
    [InlineData(DType.BFloat16, true)]
    public void AllToAllV_MovesDeviceTensorsBitForBit_AndLeavesTheirTails(DType dtype, bool async)
    {
        using var kernels = new RankKernels(fixture.Backend);
        int[][] received = InProcessWorld.Run(
            Ranks,
            inner =>
            {
                var group = new HostStagedProcessGroup(inner);
                int rank = group.Rank;
                int[] sendCounts = Enumerable.Range(0, Ranks).Select(q => Count(rank, q)).ToArray();
                int[] receiveCounts = Enumerable.Range(0, Ranks).Select(p => Count(p, rank)).ToArray();
                var sendBits = new List<int>();
                for (int q = 0; q < Ranks; q++)
                for (int i = 0; i < sendCounts[q]; i++)
                    sendBits.Add(Bits(rank, q, i));
                sendBits.Add(-1);
                IlgpuMoeKernels mine = kernels.Of(rank);
                Tensor send = mine.Device.ToDevice(HostTensor(dtype, sendBits.ToArray()));
                Tensor receive = mine.Device.ToDevice(
                    HostTensor(dtype, Enumerable.Repeat(-1, receiveCounts.Sum() + 2).ToArray())
                );
                if (async)
                    group.AllToAllVAsync(send, sendCounts, receive, receiveCounts).Wait();
                else
                    group.AllToAllV(send, sendCounts, receive, receiveCounts);
                return BitsOf(receive.ToHost());
            }
        );

        for (int q = 0; q < Ranks; q++)
        {
            var expected = new List<int>();
            for (int p = 0; p < Ranks; p++)
            for (int i = 0; i < Count(p, q); i++)
                expected.Add(Bits(p, q, i));
            expected.AddRange([-1, -1]);
            Assert.Equal(BitsOf(HostTensor(dtype, expected.ToArray())), received[q]);
        }
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.BFloat16)]
    public void AllReduceSum_OfDeviceTensors_GivesTheHostGroupsBits(DType dtype)
    {
        using var kernels = new RankKernels(fixture.Backend);
        float[][] values =
        [
            [1e8f, 0.1f, 1f, 3f],
            [3f, 1e-8f, 1f / 256, -2f],
            [-1e8f, 1f, 1f / 256, 0.7f],
        ];
        var results = InProcessWorld.Run(
            Ranks,
            inner =>
            {
                var group = new HostStagedProcessGroup(inner);
                Tensor host = Tensor.FromArray((float[])values[group.Rank].Clone(), 4);
                if (dtype == DType.BFloat16)
                    host = host.ToBFloat16();
                Tensor device = kernels.Of(group.Rank).Device.ToDevice(host);
                group.AllReduceSum(device);
                Tensor reference = host.Clone();
                inner.AllReduceSum(reference);
                return (Device: device.ToHost(), Host: reference);
            }
        );

        Assert.All(results, r => Assert.True(r.Device.BitwiseEquals(r.Host), $"{r.Device} differs from the host sum"));
    }

    [Fact]
    public void TheHostGroup_RejectsAnAcceleratorTensor_NamingItsDevice()
    {
        using InProcessProcessGroup group = InProcessProcessGroup.CreateWorld(1)[0];
        Tensor device = fixture.Backend.Kernels.Device.ToDevice(Tensor.Zeros(DType.Float32, 4));

        var error = Assert.Throws<ArgumentException>(() => group.AllReduceSum(device));

        Assert.Contains($"lives on {device.Device}", error.Message);
        Assert.Contains("InProcessProcessGroup(rank 0 of 1, world) exchanges host tensors only", error.Message);
    }

    /// <summary>One kernels instance per rank (their scratch is per caller), all on the shared accelerator.</summary>
    private sealed class RankKernels(IlgpuBackend backend) : IDisposable
    {
        private readonly IlgpuMoeKernels[] _kernels = Enumerable
            .Range(0, Ranks)
            .Select(_ => new IlgpuMoeKernels(backend.Accelerator))
            .ToArray();

        public IlgpuMoeKernels Of(int rank) => _kernels[rank];

        public void Dispose()
        {
            foreach (IlgpuMoeKernels k in _kernels)
                k.Dispose();
        }
    }
}
