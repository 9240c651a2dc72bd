using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// Dispatch + combine on a device backend (one rank per GPU, NCCL between them), timed like the PyTorch reference in
/// <c>bench/reference</c>: CUDA work synchronized, every iteration's time the slowest rank's, median of the repeats.
/// Also times the two row exchanges alone at the dispatch's own message sizes, and a device-to-device copy.
/// </summary>
internal static class DeviceDispatchBenchmark
{
    /// <summary>Medians in seconds, as every rank agrees (slowest rank per iteration).</summary>
    /// <param name="DispatchCombine">One dispatch and one combine (identity experts: the routed rows go straight
    /// back).</param>
    /// <param name="Dispatch">The dispatch alone.</param>
    /// <param name="Exchange">The two all-to-all-v of rows alone (dispatch direction, then combine direction), or null
    /// on one rank.</param>
    /// <param name="Copy">A device copy of N rows (read + write), for the bandwidth ceiling.</param>
    /// <param name="RoutedRows">N = T·K rows each rank routes.</param>
    /// <param name="Exchanger">How rows moved: <c>nccl</c>, <c>host-staged</c> or <c>none</c>.</param>
    public sealed record Result(
        Stats DispatchCombine,
        Stats Dispatch,
        Stats? Exchange,
        Stats Copy,
        long RoutedRows,
        string Exchanger
    )
    {
        /// <summary>
        /// With profiling: milliseconds per dispatch + combine spent in each kernel (synchronized before and after
        /// each), else null.
        /// </summary>
        public IReadOnlyDictionary<string, double>? KernelMilliseconds { get; init; }
    }

    /// <summary>Median, minimum and 90th percentile of one measurement, in seconds.</summary>
    public sealed record Stats(double Median, double Min, double P90, int Iterations);

    /// <summary>
    /// This rank's part; every rank of <paramref name="world"/> calls it with the same arguments. <paramref
    /// name="progress"/> (runs done, runs in all) is called on rank 0 after each dispatch + combine.
    /// </summary>
    public static Result RunRank(
        IProcessGroup world,
        DeviceRank device,
        int tokens,
        int dim,
        int experts,
        int topK,
        bool scoreBefore,
        int warmup,
        int repeats,
        int seed,
        bool profile = false,
        DType rowType = DType.Float32,
        Action<int, int>? progress = null
    )
    {
        var config = new TokenDispatcherConfig(experts, topK) { ScoreBeforeExperts = scoreBefore };
        var random = new Random(seed);
        GroupInputs mine = RandomInputs.Create(random, tokens, dim, experts, topK);
        for (int r = 1; r <= world.Rank; r++)
            mine = RandomInputs.Create(random, tokens, dim, experts, topK);
        mine = mine.WithRowType(rowType);

        Compute.IMoeKernels kernels = profile
            ? new Compute.ProfilingMoeKernels(device.Backend.Kernels)
            : device.Backend.Kernels;
        using var groups = ParallelGroups.Create(device.World, 1);
        TokenDispatcher dispatcher =
            world.Size == 1
                ? new LocalTokenDispatcher(config, kernels)
                : new AllToAllTokenDispatcher(config, groups, kernels);
        Tensor x = kernels.Device.ToDevice(mine.X),
            scores = kernels.Device.ToDevice(mine.Scores),
            ids = kernels.Device.ToDevice(mine.Ids);

        var both = new List<double>();
        var dispatchOnly = new List<double>();
        int[] sendRows = [],
            receiveRows = [];
        for (int i = 0; i < warmup + repeats; i++)
        {
            kernels.Device.Synchronize();
            world.Barrier();
            long start = Stopwatch.GetTimestamp();
            DispatchResult dispatched = dispatcher.Dispatch(x, scores, ids);
            kernels.Device.Synchronize();
            double dispatchSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            Tensor combined = dispatcher.Combine(dispatched.RoutedTokens, dispatched.Metadata, x);
            kernels.Device.Synchronize();
            double total = Stopwatch.GetElapsedTime(start).TotalSeconds;
            sendRows = dispatched.Metadata.InputSplits.ToArray();
            receiveRows = dispatched.Metadata.OutputSplits.ToArray();
            dispatcher.Allocator.Return(combined);
            dispatcher.Allocator.Return(dispatched.RoutedTokens);
            dispatcher.Release(dispatched.Metadata);
            if (world.Rank == 0)
                progress?.Invoke(i + 1, warmup + repeats);
            if (i < warmup)
            {
                if (i == warmup - 1 && kernels is Compute.ProfilingMoeKernels p)
                    p.Reset();
                continue;
            }
            both.Add(SlowestRank(world, total));
            dispatchOnly.Add(SlowestRank(world, dispatchSeconds));
        }

        // Taken before the exchange and copy baselines, which run through the same (profiling) kernels.
        IReadOnlyDictionary<string, double>? perKernel = kernels is Compute.ProfilingMoeKernels prof
            ? prof.Totals.ToDictionary(kv => kv.Key, kv => kv.Value.Seconds * 1e3 / repeats)
            : null;
        Stats? exchange =
            world.Size > 1
                ? TimeExchange(world, kernels, device.World, sendRows, receiveRows, dim, rowType, warmup, repeats)
                : null;
        Stats copy = TimeCopy(world, kernels, (long)tokens * topK, dim, rowType, warmup, repeats);
        return new Result(
            Summarize(both),
            Summarize(dispatchOnly),
            exchange,
            copy,
            (long)tokens * topK,
            world.Size == 1 ? "none" : device.Exchange
        )
        {
            KernelMilliseconds = perKernel,
        };
    }

    private static Stats TimeExchange(
        IProcessGroup world,
        Compute.IMoeKernels kernels,
        ITensorCollectives collectives,
        int[] sendRows,
        int[] receiveRows,
        int dim,
        DType rowType,
        int warmup,
        int repeats
    )
    {
        int[] sendCounts = sendRows.Select(r => r * dim).ToArray();
        int[] receiveCounts = receiveRows.Select(r => r * dim).ToArray();
        Tensor send = kernels.Device.Allocator.Rent(rowType, Math.Max(1, sendCounts.Sum()));
        Tensor receive = kernels.Device.Allocator.Rent(rowType, Math.Max(1, receiveCounts.Sum()));
        kernels.Rows.Clear(send);
        var times = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            kernels.Device.Synchronize();
            world.Barrier();
            long start = Stopwatch.GetTimestamp();
            collectives.AllToAllV(send, sendCounts, receive, receiveCounts);
            collectives.AllToAllV(receive, receiveCounts, send, sendCounts);
            kernels.Device.Synchronize();
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (i >= warmup)
                times.Add(SlowestRank(world, seconds));
        }
        kernels.Device.Allocator.Return(send);
        kernels.Device.Allocator.Return(receive);
        return Summarize(times);
    }

    private static Stats TimeCopy(
        IProcessGroup world,
        Compute.IMoeKernels kernels,
        long rows,
        int dim,
        DType rowType,
        int warmup,
        int repeats
    )
    {
        Tensor source = kernels.Device.Allocator.Rent(rowType, (int)rows, dim);
        Tensor destination = kernels.Device.Allocator.Rent(rowType, (int)rows, dim);
        kernels.Rows.Clear(source);
        var times = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            kernels.Device.Synchronize();
            long start = Stopwatch.GetTimestamp();
            kernels.Rows.CopyRows(source, 0, destination, 0, (int)rows);
            kernels.Device.Synchronize();
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (i >= warmup)
                times.Add(SlowestRank(world, seconds));
        }
        kernels.Device.Allocator.Return(source);
        kernels.Device.Allocator.Return(destination);
        return Summarize(times);
    }

    /// <summary>Collective: the largest of the ranks' times (an exchange is as slow as its slowest rank).</summary>
    private static double SlowestRank(IProcessGroup world, double seconds)
    {
        var all = new double[world.Size];
        world.AllGather<double>([seconds], all);
        return all.Max();
    }

    private static Stats Summarize(List<double> times)
    {
        double median = DispatchBenchmark.Median(times);
        int n = times.Count;
        return new Stats(median, times[0], times[Math.Min(n - 1, (int)Math.Ceiling(0.9 * n) - 1)], n);
    }
}
