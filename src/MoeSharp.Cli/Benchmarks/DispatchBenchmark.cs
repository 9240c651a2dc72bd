using System.Diagnostics;
using MoeSharp.Verification;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// Median times of dispatch and combine on one rank of a world (the local dispatcher when the world has one
/// rank), and of the row exchange alone at the dispatch's own message sizes.
/// </summary>
internal static class DispatchBenchmark
{
    /// <summary>Times of one configuration, as rank 0 saw them.</summary>
    /// <param name="DispatchSeconds">Median dispatch time.</param>
    /// <param name="CombineSeconds">Median combine time.</param>
    /// <param name="DispatchBytes">Bytes dispatch must move on this rank: x read once, N routed rows written.</param>
    /// <param name="CombineBytes">Bytes combine must move on this rank: N rows read, the output written.</param>
    /// <param name="Exchange">The exchange alone (worlds of more than one rank), else null.</param>
    public sealed record Result(double DispatchSeconds, double CombineSeconds, long DispatchBytes, long CombineBytes, ExchangeBenchmark.Result? Exchange);

    /// <summary>
    /// This rank's part of the benchmark; every rank of <paramref name="world"/> calls it. <paramref name="progress"/>
    /// (runs done, runs in all) is called on rank 0 after each dispatch + combine.
    /// </summary>
    public static Result RunRank(IProcessGroup world, int tokens, int dim, int experts, int topK, bool scoreBefore, int warmup, int repeats, int seed,
        DType rowType = DType.Float32, Action<int, int>? progress = null)
    {
        var config = new TokenDispatcherConfig(experts, topK) { ScoreBeforeExperts = scoreBefore };
        // Every rank draws the same sequence and keeps its own inputs, so a run is reproducible at any size.
        var random = new Random(seed);
        GroupInputs mine = RandomInputs.Create(random, tokens, dim, experts, topK);
        for (int r = 1; r <= world.Rank; r++) mine = RandomInputs.Create(random, tokens, dim, experts, topK);
        mine = mine.WithRowType(rowType);

        using var groups = ParallelGroups.Create(world, 1);
        TokenDispatcher dispatcher = world.Size == 1 ? new LocalTokenDispatcher(config) : new AllToAllTokenDispatcher(config, groups);
        var dispatchTimes = new List<double>();
        var combineTimes = new List<double>();
        // The expert output is computed once, untimed: the benchmark times the dispatcher, not the experts.
        Tensor? expertOutput = null;
        int[] sendRows = [], receiveRows = [];
        for (int i = 0; i < warmup + repeats; i++)
        {
            world.Barrier();
            long start = Stopwatch.GetTimestamp();
            DispatchResult dispatched = dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids);
            double dispatchSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            expertOutput ??= ScaledIdentityExperts.Apply(dispatched.RoutedTokens, dispatched.TokensPerLocalExpert.AsSpan(),
                world.Rank * dispatcher.NumLocalExperts);
            sendRows = dispatched.Metadata.InputSplits.ToArray();
            receiveRows = dispatched.Metadata.OutputSplits.ToArray();
            world.Barrier();
            start = Stopwatch.GetTimestamp();
            Tensor combined = dispatcher.Combine(expertOutput, dispatched.Metadata, mine.X);
            double combineSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            // Hand the outputs back as a training loop would, so each iteration reuses warm memory.
            dispatcher.Allocator.Return(combined);
            if (!ReferenceEquals(dispatched.RoutedTokens, expertOutput)) dispatcher.Allocator.Return(dispatched.RoutedTokens);
            dispatcher.Release(dispatched.Metadata);
            if (i >= warmup)
            {
                dispatchTimes.Add(dispatchSeconds);
                combineTimes.Add(combineSeconds);
            }
            if (world.Rank == 0) progress?.Invoke(i + 1, warmup + repeats);
        }
        long tokenBytes = (long)tokens * dim * rowType.SizeOf();
        long routedBytes = tokenBytes * topK;
        ExchangeBenchmark.Result? exchange = world.Size > 1
            ? (rowType == DType.BFloat16
                ? ExchangeBenchmark.RunRank<BFloat16>(world, sendRows, receiveRows, dim, warmup, repeats)
                : ExchangeBenchmark.RunRank<float>(world, sendRows, receiveRows, dim, warmup, repeats))
            : null;
        return new Result(Median(dispatchTimes), Median(combineTimes), tokenBytes + routedBytes, routedBytes + tokenBytes, exchange);
    }

    /// <summary>The median of <paramref name="values"/> (sorted in place).</summary>
    internal static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }
}
