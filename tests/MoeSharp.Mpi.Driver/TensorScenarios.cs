using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Mpi.Driver;

/// <summary>
/// The tensor collectives (<see cref="ITensorCollectives"/>) on one group: host tensors of every row and count dtype
/// moved bit for bit, the rank-ordered sum equal to the span sum and rounded once for bfloat16, and a device tensor
/// refused with the one error before any rank enters MPI.
/// </summary>
internal static class TensorScenarios
{
    /// <summary>Runs every check on <paramref name="g"/>; throws naming what differed.</summary>
    public static void Check(IProcessGroup g)
    {
        foreach (DType dtype in new[] { DType.Float32, DType.BFloat16, DType.Int32, DType.Int64 })
        {
            foreach (bool async in new[] { false, true })
                Exchange(g, dtype, async);
        }
        Sum(g);
        RefusesDeviceTensors(g);
    }

    /// <summary>Rank p sends (p + 2q) % 5 elements to q; the receive tensor has two elements past the counts.</summary>
    private static void Exchange(IProcessGroup g, DType dtype, bool async)
    {
        int[] sendCounts = Enumerable.Range(0, g.Size).Select(q => (g.Rank + 2 * q) % 5).ToArray();
        int[] receiveCounts = Enumerable.Range(0, g.Size).Select(p => (p + 2 * g.Rank) % 5).ToArray();
        var sent = new List<long>();
        for (int q = 0; q < g.Size; q++)
        for (int i = 0; i < sendCounts[q]; i++)
            sent.Add(Bits(g.Rank, q, i));
        var expected = new List<long>();
        for (int p = 0; p < g.Size; p++)
        for (int i = 0; i < receiveCounts[p]; i++)
            expected.Add(Bits(p, g.Rank, i));
        expected.AddRange([-1, -1]);

        Tensor send = Of(dtype, sent);
        Tensor receive = Of(dtype, Enumerable.Repeat(-1L, expected.Count).ToList());
        if (async)
            g.AllToAllVAsync(send, sendCounts, receive, receiveCounts).Wait();
        else
            g.AllToAllV(send, sendCounts, receive, receiveCounts);
        Expect(receive.BitwiseEquals(Of(dtype, expected)), $"{dtype} tensor AllToAllV{(async ? "Async" : "")}");
    }

    private static void Sum(IProcessGroup g)
    {
        // Terms whose float32 sum depends on the order, and bfloat16 halves that vanish if rounded one by one.
        float[] mine = [g.Rank % 2 == 0 ? 1e8f : 1.7f * (g.Rank + 1), g.Rank == 0 ? 1f : 1f / 256];
        var f = Tensor.FromArray((float[])mine.Clone(), 2);
        var b = Tensor.FromArray(mine.Select(BFloat16.FromSingle).ToArray(), 2);
        g.AllReduceSum(f);
        g.AllReduceSum(b);
        float[] span = (float[])mine.Clone();
        g.AllReduceSum(span.AsSpan());
        var all = new float[2 * g.Size];
        g.AllGather<float>(mine, all);
        for (int i = 0; i < 2; i++)
        {
            float wide = BFloat16.FromSingle(all[i]).ToSingle();
            for (int p = 1; p < g.Size; p++)
                wide += BFloat16.FromSingle(all[2 * p + i]).ToSingle();
            Expect(
                BitConverter.SingleToInt32Bits(f.AsSpan<float>()[i]) == BitConverter.SingleToInt32Bits(span[i]),
                $"float32 tensor AllReduceSum element {i}: {f.AsSpan<float>()[i]:R} vs span {span[i]:R}"
            );
            Expect(
                b.AsSpan<BFloat16>()[i] == BFloat16.FromSingle(wide),
                $"bfloat16 tensor AllReduceSum element {i}: {b.AsSpan<BFloat16>()[i]} vs {BFloat16.FromSingle(wide)}"
            );
        }
    }

    private static void RefusesDeviceTensors(IProcessGroup g)
    {
        var device = Tensor.OnDevice(new StandInDeviceBuffer(), DType.Float32, 4);
        try
        {
            g.AllReduceSum(device);
        }
        catch (ArgumentException e)
            when (e.Message.Contains("lives on stand-in:0")
                && e.Message.Contains("MpiProcessGroup(rank")
                && e.Message.Contains("exchanges host tensors only")
            )
        {
            return;
        }
        throw new InvalidOperationException("check failed: the MPI group took a device tensor");
    }

    private static long Bits(int p, int q, int i) => 0x7F81 + 97 * p + 13 * q + i;

    private static Tensor Of(DType dtype, List<long> bits) =>
        dtype switch
        {
            DType.Float32 => Tensor.FromArray(
                bits.Select(x => BitConverter.Int32BitsToSingle((int)x)).ToArray(),
                bits.Count
            ),
            DType.BFloat16 => Tensor.FromArray(bits.Select(x => BFloat16.FromBits((ushort)x)).ToArray(), bits.Count),
            DType.Int32 => Tensor.FromArray(bits.Select(x => (int)x).ToArray(), bits.Count),
            _ => Tensor.FromArray(bits.ToArray(), bits.Count),
        };

    private static void Expect(bool condition, string what)
    {
        if (!condition)
            throw new InvalidOperationException($"check failed: {what}");
    }

    /// <summary>Device storage no MPI group can reach; only its name is ever read.</summary>
    private sealed class StandInDeviceBuffer : DeviceBuffer
    {
        public override string DeviceName => "stand-in:0";

        public override long LengthInBytes => 16;

        public override void CopyToHost(long byteOffset, Span<byte> destination) => throw new NotSupportedException();

        public override void CopyFromHost(ReadOnlySpan<byte> source, long byteOffset) =>
            throw new NotSupportedException();
    }
}
