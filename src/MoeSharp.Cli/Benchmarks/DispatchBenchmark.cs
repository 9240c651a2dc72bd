using System.Diagnostics;
using MoeSharp.Cli.Verification;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>Median times of dispatch and combine on rank 0 of a world of in-process ranks (or the local dispatcher).</summary>
internal static class DispatchBenchmark
{
    /// <summary>Times of one configuration.</summary>
    /// <param name="DispatchSeconds">Median dispatch time.</param>
    /// <param name="CombineSeconds">Median combine time.</param>
    /// <param name="DispatchBytes">Bytes dispatch must move on rank 0: x read once, N routed rows written.</param>
    /// <param name="CombineBytes">Bytes combine must move on rank 0: N rows read, the output written.</param>
    public sealed record Result(double DispatchSeconds, double CombineSeconds, long DispatchBytes, long CombineBytes);

    /// <summary>Runs the benchmark.</summary>
    public static Result Run(int world, int tokens, int dim, int experts, int topK, bool scoreBefore, int warmup, int repeats, int seed)
    {
        var config = new TokenDispatcherConfig(experts, topK) { ScoreBeforeExperts = scoreBefore };
        var random = new Random(seed);
        var inputs = new GroupInputs[world];
        for (int r = 0; r < world; r++) inputs[r] = RandomInputs.Create(random, tokens, dim, experts, topK);

        Result[] results = InProcessWorld.Run(world, group =>
        {
            using var groups = ParallelGroups.Create(group, 1);
            TokenDispatcher dispatcher = world == 1 ? new LocalTokenDispatcher(config) : new AllToAllTokenDispatcher(config, groups);
            GroupInputs mine = inputs[group.Rank];
            var dispatchTimes = new List<double>();
            var combineTimes = new List<double>();
            // Precomputed expert output: the benchmark times the dispatcher, not the experts.
            Tensor? expertOutput = null;
            for (int i = 0; i < warmup + repeats; i++)
            {
                group.Barrier();
                long start = Stopwatch.GetTimestamp();
                DispatchResult dispatched = dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids);
                double dispatchSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                expertOutput ??= ScaledIdentityExperts.Apply(dispatched.RoutedTokens, dispatched.TokensPerLocalExpert.AsSpan(),
                    group.Rank * dispatcher.NumLocalExperts);
                group.Barrier();
                start = Stopwatch.GetTimestamp();
                Tensor combined = dispatcher.Combine(expertOutput, dispatched.Metadata, mine.X);
                double combineSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                // Hand the outputs back as a training loop would, so each iteration reuses warm memory.
                dispatcher.Pool.Return(combined);
                if (!ReferenceEquals(dispatched.RoutedTokens, expertOutput)) dispatcher.Pool.Return(dispatched.RoutedTokens);
                dispatcher.Release(dispatched.Metadata);
                if (i >= warmup)
                {
                    dispatchTimes.Add(dispatchSeconds);
                    combineTimes.Add(combineSeconds);
                }
            }
            long tokenBytes = (long)tokens * dim * sizeof(float);
            long routedBytes = tokenBytes * topK;
            return new Result(Median(dispatchTimes), Median(combineTimes), tokenBytes + routedBytes, routedBytes + tokenBytes);
        });
        return results[0];
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }
}
