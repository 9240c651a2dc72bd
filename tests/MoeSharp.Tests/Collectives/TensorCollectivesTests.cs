using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Collectives;

/// <summary>
/// The tensor collectives (<see cref="ITensorCollectives"/>) of the in-process group on host tensors of every row and
/// count dtype, the rank-ordered sum bit for bit, the one error a host group gives a device tensor, and the host-staged
/// group over in-process ranks with tensors on a stand-in device.
/// </summary>
public class TensorCollectivesTests
{
    public static TheoryData<DType, int> DTypesAndSizes
    {
        get
        {
            var data = new TheoryData<DType, int>();
            foreach (DType dtype in new[] { DType.Float32, DType.BFloat16, DType.Int32, DType.Int64 })
            foreach (int size in new[] { 1, 3, 4 })
                data.Add(dtype, size);
            return data;
        }
    }

    /// <summary>Rank p sends (p + 2q) % 4 elements to q: empty chunks on every rank.</summary>
    private static int Count(int p, int q) => (p + 2 * q) % 4;

    /// <summary>
    /// A distinct bit pattern per (sender, receiver, element), stored in the tensor as raw bits: bfloat16 patterns
    /// include NaN payloads, which an exchange that widened or converted would not keep.
    /// </summary>
    private static long Bits(int p, int q, int i) => 0x7F81 + p * 97 + q * 13 + i;

    private static Tensor Message(DType dtype, int rank, int size, int slack)
    {
        int total = Enumerable.Range(0, size).Sum(q => Count(rank, q));
        var values = new List<long>();
        for (int q = 0; q < size; q++)
        for (int i = 0; i < Count(rank, q); i++)
            values.Add(Bits(rank, q, i));
        for (int i = 0; i < slack; i++)
            values.Add(-1);
        return FromBits(dtype, values.ToArray(), total + slack);
    }

    private static Tensor FromBits(DType dtype, long[] bits, int n) =>
        dtype switch
        {
            DType.Float32 => Tensor.FromArray(bits.Select(b => BitConverter.Int32BitsToSingle((int)b)).ToArray(), n),
            DType.BFloat16 => Tensor.FromArray(bits.Select(b => BFloat16.FromBits((ushort)b)).ToArray(), n),
            DType.Int32 => Tensor.FromArray(bits.Select(b => (int)b).ToArray(), n),
            _ => Tensor.FromArray(bits, n),
        };

    private static long[] ToBits(Tensor t) =>
        t.DType switch
        {
            DType.Float32 => t.AsSpan<float>().ToArray().Select(f => (long)BitConverter.SingleToInt32Bits(f)).ToArray(),
            DType.BFloat16 => t.AsSpan<BFloat16>().ToArray().Select(b => (long)(short)b.Bits).ToArray(),
            DType.Int32 => t.AsSpan<int>().ToArray().Select(i => (long)i).ToArray(),
            _ => t.AsSpan<long>().ToArray(),
        };

    /// <summary>What rank q receives: each rank's chunk for q in rank order, then the untouched slack.</summary>
    private static long[] Expected(DType dtype, int q, int size, int slack)
    {
        var values = new List<long>();
        for (int p = 0; p < size; p++)
        for (int i = 0; i < Count(p, q); i++)
            values.Add(Bits(p, q, i));
        for (int i = 0; i < slack; i++)
            values.Add(-1);
        return ToBits(FromBits(dtype, values.ToArray(), values.Count));
    }

    private static int[] SendCounts(int rank, int size) =>
        Enumerable.Range(0, size).Select(q => Count(rank, q)).ToArray();

    private static int[] ReceiveCounts(int rank, int size) =>
        Enumerable.Range(0, size).Select(p => Count(p, rank)).ToArray();

    private static Tensor Slack(DType dtype, int rank, int size, int slack) =>
        FromBits(
            dtype,
            Enumerable.Repeat(-1L, ReceiveCounts(rank, size).Sum() + slack).ToArray(),
            ReceiveCounts(rank, size).Sum() + slack
        );

    [Theory]
    [MemberData(nameof(DTypesAndSizes))]
    public void AllToAllV_MovesHostTensorsBitForBit_AndLeavesElementsPastTheCounts(DType dtype, int size)
    {
        var received = InProcessWorld.Run(
            size,
            g =>
            {
                Tensor receive = Slack(dtype, g.Rank, size, slack: 2);
                g.AllToAllV(
                    Message(dtype, g.Rank, size, slack: 1),
                    SendCounts(g.Rank, size),
                    receive,
                    ReceiveCounts(g.Rank, size)
                );
                return ToBits(receive);
            }
        );

        for (int q = 0; q < size; q++)
            Assert.Equal(Expected(dtype, q, size, slack: 2), received[q]);
    }

    [Theory]
    [MemberData(nameof(DTypesAndSizes))]
    public void AllToAllVAsync_MovesHostTensorsBitForBit(DType dtype, int size)
    {
        var received = InProcessWorld.Run(
            size,
            g =>
            {
                Tensor receive = Slack(dtype, g.Rank, size, slack: 0);
                CollectiveRequest request = g.AllToAllVAsync(
                    Message(dtype, g.Rank, size, slack: 0),
                    SendCounts(g.Rank, size),
                    receive,
                    ReceiveCounts(g.Rank, size)
                );
                request.Wait();
                return ToBits(receive);
            }
        );

        for (int q = 0; q < size; q++)
            Assert.Equal(Expected(dtype, q, size, slack: 0), received[q]);
    }

    [Fact]
    public void AllReduceSum_Float32_IsTheRankOrderedSum_BitForBit_AndAgreesWithTheSpanSum()
    {
        // Sums whose bits depend on the order: a large value, small ones that vanish against it, its negation.
        float[][] values =
        [
            [1e8f, 0.1f, 3f, -0f],
            [3f, 1e8f, 1e-8f, -0f],
            [-1e8f, -1e8f, 1f, -0f],
            [1f, 0.7f, -3f, -0f],
        ];
        var results = InProcessWorld.Run(
            values.Length,
            g =>
            {
                Tensor t = Tensor.FromArray((float[])values[g.Rank].Clone(), 4);
                g.AllReduceSum(t);
                float[] span = (float[])values[g.Rank].Clone();
                g.AllReduceSum(span.AsSpan());
                return (Tensor: t.AsSpan<float>().ToArray(), Span: span);
            }
        );

        for (int i = 0; i < 4; i++)
        {
            float expected = values[0][i];
            for (int r = 1; r < values.Length; r++)
                expected += values[r][i];
            foreach (var result in results)
            {
                int bits = BitConverter.SingleToInt32Bits(expected);
                Assert.Equal(bits, BitConverter.SingleToInt32Bits(result.Tensor[i]));
                Assert.Equal(bits, BitConverter.SingleToInt32Bits(result.Span[i]));
            }
        }
    }

    [Fact]
    public void AllReduceSum_BFloat16_SumsInFloat32_AndRoundsOnce()
    {
        // 1 + 2^-8 is a tie that rounds back to 1 in bfloat16; summed in float32 the two halves make 1 + 2^-7, exact.
        float[] values = [1f, 1f / 256, 1f / 256];
        var results = InProcessWorld.Run(
            values.Length,
            g =>
            {
                var t = Tensor.FromArray([BFloat16.FromSingle(values[g.Rank])], 1);
                g.AllReduceSum(t);
                return t.AsSpan<BFloat16>()[0];
            }
        );

        Assert.All(results, r => Assert.Equal(1f + 1f / 128, r.ToSingle()));
    }

    [Fact]
    public void AllReduceSum_RejectsIntegerTensors_NamingTheDType()
    {
        using var g = InProcessProcessGroup.CreateWorld(1)[0];
        var error = Assert.Throws<ArgumentException>(() => g.AllReduceSum(Tensor.FromArray([1, 2], 2)));
        Assert.Contains("float32 or bfloat16", error.Message);
        Assert.Contains("Int32", error.Message);
    }

    [Fact]
    public void AllToAllV_RejectsTensorsOfDifferentDTypes()
    {
        using var g = InProcessProcessGroup.CreateWorld(1)[0];
        var error = Assert.Throws<ArgumentException>(() =>
            g.AllToAllV(Tensor.Zeros(DType.Float32, 2), [2], Tensor.Zeros(DType.Int32, 2), [2])
        );
        Assert.Contains("send is Float32 but receive is Int32", error.Message);
    }

    [Fact]
    public void HostGroup_RejectsADeviceTensor_WithOneErrorNamingTheDeviceAndTheGroup()
    {
        using var g = InProcessProcessGroup.CreateWorld(1)[0];
        Tensor device = ByteArrayDeviceBuffer.Upload(Tensor.Zeros(DType.Float32, 4), "fake:3");
        Tensor host = Tensor.Zeros(DType.Float32, 4);

        var errors = new[]
        {
            Assert.Throws<ArgumentException>(() => g.AllToAllV(device, [4], host, [4])),
            Assert.Throws<ArgumentException>(() => g.AllToAllV(host, [4], device, [4])),
            Assert.Throws<ArgumentException>(() => g.AllToAllVAsync(device, [4], host, [4])),
            Assert.Throws<ArgumentException>(() => g.AllReduceSum(device)),
        };

        foreach (ArgumentException error in errors)
        {
            Assert.Contains("lives on fake:3", error.Message);
            Assert.Contains("InProcessProcessGroup(rank 0 of 1, world) exchanges host tensors only", error.Message);
        }
        Assert.Equal("receive", errors[1].ParamName);
        // Nothing was exchanged, so the group is still usable.
        g.AllReduceSum(host);
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.BFloat16)]
    [InlineData(DType.Int32)]
    public void HostStaged_ExchangesDeviceTensors_CopyingOnlyTheCountedElements(DType dtype)
    {
        const int size = 3;
        var results = InProcessWorld.Run(
            size,
            inner =>
            {
                var g = new HostStagedProcessGroup(inner);
                Tensor send = ByteArrayDeviceBuffer.Upload(Message(dtype, g.Rank, size, slack: 3));
                Tensor receive = ByteArrayDeviceBuffer.Upload(Slack(dtype, g.Rank, size, slack: 2));
                g.AllToAllV(send, SendCounts(g.Rank, size), receive, ReceiveCounts(g.Rank, size));
                long copied =
                    ((ByteArrayDeviceBuffer)send.DeviceBuffer!).BytesCopied
                    + ((ByteArrayDeviceBuffer)receive.DeviceBuffer!).BytesCopied;
                return (Bits: ToBits(receive.ToHost()), Copied: copied);
            }
        );

        for (int q = 0; q < size; q++)
        {
            Assert.Equal(Expected(dtype, q, size, slack: 2), results[q].Bits);
            int counted = SendCounts(q, size).Sum() + ReceiveCounts(q, size).Sum();
            Assert.Equal((long)counted * dtype.SizeOf(), results[q].Copied);
        }
    }

    [Fact]
    public void HostStaged_SumsDeviceTensorsLikeTheHostGroup_AndPassesHostTensorsThrough()
    {
        float[][] values =
        [
            [1e8f, 0.1f],
            [3f, 1e-8f],
            [-1e8f, 1f],
        ];
        var results = InProcessWorld.Run(
            values.Length,
            inner =>
            {
                var g = new HostStagedProcessGroup(inner);
                Tensor device = ByteArrayDeviceBuffer.Upload(Tensor.FromArray((float[])values[g.Rank].Clone(), 2));
                g.AllReduceSum(device);
                var host = Tensor.FromArray((float[])values[g.Rank].Clone(), 2);
                g.AllReduceSum(host);
                var wide = Tensor.FromArray((float[])values[g.Rank].Clone(), 2);
                inner.AllReduceSum(wide);
                return (Device: device.ToHost(), Host: host, Inner: wide);
            }
        );

        Assert.All(
            results,
            r =>
            {
                Assert.True(r.Device.BitwiseEquals(r.Inner));
                Assert.True(r.Host.BitwiseEquals(r.Inner));
            }
        );
    }
}
