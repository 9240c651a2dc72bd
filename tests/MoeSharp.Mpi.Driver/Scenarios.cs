using MoeSharp.Collectives;

namespace MoeSharp.Mpi.Driver;

/// <summary>Scenario bodies; every check throws <see cref="InvalidOperationException"/> naming what differed.</summary>
internal static class Scenarios
{
    /// <summary>Every collective on the world and on split sub-groups.</summary>
    public static void All(IProcessGroup world)
    {
        Check(world);
        // Two colors, keys reversed: sub-group ranks run opposite to world ranks.
        using (IProcessGroup half = world.Split(world.Rank % 2, -world.Rank))
        {
            int[] expected = Enumerable.Range(0, world.Size).Where(r => r % 2 == world.Rank % 2).Reverse().ToArray();
            Expect(half.Size == expected.Length, $"split size {half.Size}, expected {expected.Length}");
            Expect(
                half.WorldRanks.SequenceEqual(expected),
                $"split world ranks [{string.Join(",", half.WorldRanks)}], expected [{string.Join(",", expected)}]"
            );
            Expect(half.WorldRanks[half.Rank] == world.Rank, "split rank does not map back to this world rank");
            Check(half);
        }
        using (IProcessGroup self = world.Split(world.Rank, 0))
        {
            Expect(self.Size == 1 && self.Rank == 0, "singleton split");
            Check(self);
        }
        world.Barrier();
    }

    /// <summary>The collectives on one group, with values every rank can compute for every other.</summary>
    private static void Check(IProcessGroup g)
    {
        g.Barrier();
        int wr = g.WorldRanks[g.Rank];

        // AllToAll with chunk sizes 0, 1 and 5.
        foreach (int chunk in new[] { 0, 1, 5 })
        {
            var send = new long[chunk * g.Size];
            for (int q = 0; q < g.Size; q++)
            for (int i = 0; i < chunk; i++)
                send[q * chunk + i] = Value(g.Rank, q, i);
            var receive = new long[send.Length];
            g.AllToAll<long>(send, receive);
            for (int p = 0; p < g.Size; p++)
            for (int i = 0; i < chunk; i++)
                Expect(receive[p * chunk + i] == Value(p, g.Rank, i), $"AllToAll chunk {chunk}: from {p} element {i}");
        }

        // AllToAllV with random counts (zeros included) drawn from a seed every rank shares.
        for (int round = 0; round < 4; round++)
        {
            int[,] counts = Counts(g.Size, seed: 1000 * round + g.Size);
            int[] sendCounts = Enumerable.Range(0, g.Size).Select(q => counts[g.Rank, q]).ToArray();
            int[] receiveCounts = Enumerable.Range(0, g.Size).Select(p => counts[p, g.Rank]).ToArray();
            float[] send = Fill(g.Rank, sendCounts);
            var receive = new float[receiveCounts.Sum() + 3];
            Array.Fill(receive, -1f);
            g.AllToAllV<float>(send, sendCounts, receive, receiveCounts);
            Verify(receive, receiveCounts, g.Rank, $"AllToAllV round {round}");
            for (int i = receiveCounts.Sum(); i < receive.Length; i++)
                Expect(receive[i] == -1f, "AllToAllV wrote past the received rows");

            // The asynchronous form, overlapped with compute that does not touch the buffers.
            var receive2 = new float[receiveCounts.Sum()];
            CollectiveRequest request = g.AllToAllVAsync<float>(send, sendCounts, receive2, receiveCounts);
            double busy = 0;
            for (int i = 0; i < 200_000; i++)
                busy += Math.Sqrt(i);
            request.Wait();
            Expect(request.IsCompleted && busy > 0, "AllToAllVAsync completion");
            Verify(receive2, receiveCounts, g.Rank, $"AllToAllVAsync round {round}");
        }

        // AllGather, including zero length.
        foreach (int n in new[] { 0, 3 })
        {
            var send = Enumerable.Range(0, n).Select(i => Value(g.Rank, 0, i)).ToArray();
            var receive = new long[n * g.Size];
            g.AllGather<long>(send, receive);
            for (int p = 0; p < g.Size; p++)
            for (int i = 0; i < n; i++)
                Expect(receive[p * n + i] == Value(p, 0, i), $"AllGather from {p} element {i}");
        }
        int[] worlds = new int[g.Size];
        g.AllGather(new ReadOnlySpan<int>(in wr), worlds);
        Expect(worlds.SequenceEqual(g.WorldRanks), "AllGather of world ranks disagrees with WorldRanks");

        // AllReduceSum: terms chosen so that a different association order changes the rounded result.
        int n2 = 37;
        float[] f = Enumerable.Range(0, n2).Select(i => Term(g.Rank, i)).ToArray();
        double[] d = Enumerable
            .Range(0, n2)
            .Select(i => (double)Term(g.Rank, i) * 1e-3 + 1e16 * (g.Rank % 2 == 0 ? 1 : -1))
            .ToArray();
        long[] l = Enumerable.Range(0, n2).Select(i => Value(g.Rank, i, i) * (g.Rank % 2 == 0 ? 1 : -1)).ToArray();
        g.AllReduceSum(f);
        g.AllReduceSum(d);
        g.AllReduceSum(l);
        for (int i = 0; i < n2; i++)
        {
            float ef = Term(0, i);
            double ed = (double)Term(0, i) * 1e-3 + 1e16;
            long el = Value(0, i, i);
            for (int p = 1; p < g.Size; p++)
            {
                ef += Term(p, i);
                ed += (double)Term(p, i) * 1e-3 + 1e16 * (p % 2 == 0 ? 1 : -1);
                el += Value(p, i, i) * (p % 2 == 0 ? 1 : -1);
            }
            Expect(
                BitConverter.SingleToInt32Bits(f[i]) == BitConverter.SingleToInt32Bits(ef),
                $"float AllReduceSum element {i}: {f[i]:R} vs rank-order {ef:R}"
            );
            Expect(
                BitConverter.DoubleToInt64Bits(d[i]) == BitConverter.DoubleToInt64Bits(ed),
                $"double AllReduceSum element {i}: {d[i]:R} vs rank-order {ed:R}"
            );
            Expect(l[i] == el, $"long AllReduceSum element {i}");
        }
        TensorScenarios.Check(g);
        g.Barrier();
    }

    /// <summary>A real exchange over 2^31 bytes (rank 0 → rank 1), for manual runs with plenty of memory.</summary>
    public static void Huge(IProcessGroup g)
    {
        const int rows = 600_000_000; // 2.4 GB of float32
        int[] sendCounts = new int[g.Size];
        int[] receiveCounts = new int[g.Size];
        if (g.Rank == 0 && g.Size > 1)
            sendCounts[1] = rows;
        if (g.Rank == 1)
            receiveCounts[0] = rows;
        var send = new float[sendCounts.Sum()];
        for (int i = 0; i < send.Length; i++)
            send[i] = i % 1_000_003;
        var receive = new float[receiveCounts.Sum()];
        g.AllToAllV<float>(send, sendCounts, receive, receiveCounts);
        for (int i = 0; i < receive.Length; i++)
            Expect(receive[i] == i % 1_000_003, $"huge exchange element {i}");
    }

    /// <summary>Rank 1 throws after a barrier while the others wait in the next collective.</summary>
    public static void Fail(IProcessGroup g)
    {
        g.Barrier();
        if (g.Rank == 1)
            throw new InvalidOperationException("deliberate failure in the test scenario");
        g.Barrier();
        Thread.Sleep(TimeSpan.FromMinutes(1)); // never reached while the abort works
    }

    /// <summary>Rank 1 stays away from a barrier the others enter.</summary>
    public static void Stall(IProcessGroup g)
    {
        if (g.Rank == 1)
            Thread.Sleep(TimeSpan.FromMinutes(1));
        g.Barrier();
    }

    private static long Value(int from, int to, int i) => from * 1_000_000L + to * 1_000L + i;

    private static float Term(int rank, int i) =>
        rank % 2 == 0 ? 1e8f + rank * 3.3f + i : 1.7f * (rank + 1) + 0.01f * i;

    private static int[,] Counts(int size, int seed)
    {
        var rng = new Random(seed);
        var counts = new int[size, size];
        for (int p = 0; p < size; p++)
        for (int q = 0; q < size; q++)
            counts[p, q] = rng.Next(3) == 0 ? 0 : rng.Next(1, 40);
        return counts;
    }

    private static float[] Fill(int rank, int[] sendCounts)
    {
        var data = new float[sendCounts.Sum()];
        int at = 0;
        for (int q = 0; q < sendCounts.Length; q++)
        for (int i = 0; i < sendCounts[q]; i++)
            data[at++] = rank * 10_000 + q * 100 + i;
        return data;
    }

    private static void Verify(float[] receive, int[] receiveCounts, int rank, string what)
    {
        int at = 0;
        for (int p = 0; p < receiveCounts.Length; p++)
        for (int i = 0; i < receiveCounts[p]; i++, at++)
            Expect(receive[at] == p * 10_000 + rank * 100 + i, $"{what}: from {p} row {i} is {receive[at]}");
    }

    private static void Expect(bool condition, string what)
    {
        if (!condition)
            throw new InvalidOperationException($"check failed: {what}");
    }
}
