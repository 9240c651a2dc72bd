using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Telemetry;
using MoeSharp.Tensors;
using MoeSharp.Verification;

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
    public sealed record Result(
        double DispatchSeconds,
        double CombineSeconds,
        long DispatchBytes,
        long CombineBytes,
        ExchangeBenchmark.Result? Exchange
    )
    {
        /// <summary>With <c>--traffic</c>: median dispatch and combine with traffic telemetry on, timed in the same
        /// loop as the plain ones; null otherwise.</summary>
        public (double Dispatch, double Combine)? WithTraffic { get; init; }

        /// <summary>
        /// With <c>--traffic</c>: the median over timed iterations of (dispatch + combine on) / (dispatch + combine
        /// off) − 1, each pair run back to back, so slow phases of a noisy machine fall on both halves of a pair.
        /// </summary>
        public double? PairedTrafficOverhead { get; init; }

        /// <summary>With <c>--traffic</c>: the A/A control, a third dispatcher with telemetry off: its median
        /// dispatch and combine.</summary>
        public (double Dispatch, double Combine)? Control { get; init; }

        /// <summary>With <c>--traffic</c>: <see cref="PairedTrafficOverhead"/> for the control against the plain
        /// dispatcher: the harness's own bias, which the traffic figure should be read against.</summary>
        public double? PairedControlDifference { get; init; }

        /// <summary>
        /// With <c>--traffic</c>: the median time of the telemetry's own work per dispatch + combine, timed alone on
        /// the last dispatch's plan: the calls the dispatcher adds (this rank's partial from the plan, the all-gather
        /// after dispatch, the one after combine). Clock reads around the exchanges are not in it.
        /// </summary>
        public double? TelemetryWorkSeconds { get; init; }
    }

    /// <summary>
    /// This rank's part of the benchmark; every rank of <paramref name="world"/> calls it. <paramref name="progress"/>
    /// (runs done, runs in all) is called on rank 0 after each dispatch + combine.
    /// </summary>
    public static Result RunRank(
        IProcessGroup world,
        int tokens,
        int dim,
        int experts,
        int topK,
        bool scoreBefore,
        int warmup,
        int repeats,
        int seed,
        DType rowType = DType.Float32,
        Action<int, int>? progress = null,
        bool traffic = false
    )
    {
        var config = new TokenDispatcherConfig(experts, topK) { ScoreBeforeExperts = scoreBefore };
        // Every rank draws the same sequence and keeps its own inputs, so a run is reproducible at any size.
        var random = new Random(seed);
        GroupInputs mine = RandomInputs.Create(random, tokens, dim, experts, topK);
        for (int r = 1; r <= world.Rank; r++)
            mine = RandomInputs.Create(random, tokens, dim, experts, topK);
        mine = mine.WithRowType(rowType);

        using var groups = ParallelGroups.Create(world, 1);
        TokenDispatcher Create(TokenDispatcherConfig c) =>
            world.Size == 1 ? new LocalTokenDispatcher(c) : new AllToAllTokenDispatcher(c, groups);
        TokenDispatcher dispatcher = Create(config);
        // --traffic: a second dispatcher with telemetry on and a third with it off (the A/A control: what two
        // dispatchers differ by with no telemetry at all), timed in the same loop in rotating order so drift and
        // noise fall on all three alike.
        TokenDispatcher? withTraffic = traffic ? Create(config with { CollectTraffic = true }) : null;
        TokenDispatcher? control = traffic ? Create(config) : null;
        var controlDispatch = new List<double>();
        var controlCombine = new List<double>();
        var dispatchTimes = new List<double>();
        var combineTimes = new List<double>();
        var trafficDispatch = new List<double>();
        var trafficCombine = new List<double>();
        // The expert output is computed once, untimed: the benchmark times the dispatcher, not the experts.
        Tensor? expertOutput = null;
        int[] sendRows = [],
            receiveRows = [];
        DispatchMetadata? lastMetadata = null;
        for (int i = 0; i < warmup + repeats; i++)
        {
            bool timed = i >= warmup;
            if (withTraffic is null || control is null)
            {
                TimeOnce(dispatcher, timed, dispatchTimes, combineTimes);
            }
            else
            {
                for (int k = 0; k < 3; k++)
                {
                    switch ((i + k) % 3)
                    {
                        case 0:
                            TimeOnce(dispatcher, timed, dispatchTimes, combineTimes);
                            break;
                        case 1:
                            TimeOnce(withTraffic, timed, trafficDispatch, trafficCombine);
                            break;
                        default:
                            TimeOnce(control, timed, controlDispatch, controlCombine);
                            break;
                    }
                }
            }
            if (world.Rank == 0)
                progress?.Invoke(i + 1, warmup + repeats);
        }

        void TimeOnce(TokenDispatcher dispatcher, bool timed, List<double> dispatchTimes, List<double> combineTimes)
        {
            world.Barrier();
            long start = Stopwatch.GetTimestamp();
            DispatchResult dispatched = dispatcher.Dispatch(mine.X, mine.Scores, mine.Ids);
            // With --traffic both variants stop the clock after a barrier: the telemetry's all-gather waits for the
            // slowest rank, so without one the plain variant alone would leave the ranks' imbalance out of its time.
            if (traffic)
                world.Barrier();
            double dispatchSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            expertOutput ??= ScaledIdentityExperts.Apply(
                dispatched.RoutedTokens,
                dispatched.TokensPerLocalExpert.AsSpan(),
                world.Rank * dispatcher.NumLocalExperts
            );
            sendRows = dispatched.Metadata.InputSplits.ToArray();
            receiveRows = dispatched.Metadata.OutputSplits.ToArray();
            lastMetadata = dispatched.Metadata;
            world.Barrier();
            start = Stopwatch.GetTimestamp();
            Tensor combined = dispatcher.Combine(expertOutput, dispatched.Metadata, mine.X);
            if (traffic)
                world.Barrier();
            double combineSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            // Hand the outputs back as a training loop would, so each iteration reuses warm memory.
            dispatcher.Allocator.Return(combined);
            if (!ReferenceEquals(dispatched.RoutedTokens, expertOutput))
                dispatcher.Allocator.Return(dispatched.RoutedTokens);
            dispatcher.Release(dispatched.Metadata);
            if (timed)
            {
                dispatchTimes.Add(dispatchSeconds);
                combineTimes.Add(combineSeconds);
            }
        }
        long tokenBytes = (long)tokens * dim * rowType.SizeOf();
        long routedBytes = tokenBytes * topK;
        ExchangeBenchmark.Result? exchange =
            world.Size > 1
                ? (
                    rowType == DType.BFloat16
                        ? ExchangeBenchmark.RunRank<BFloat16>(world, sendRows, receiveRows, dim, warmup, repeats)
                        : ExchangeBenchmark.RunRank<float>(world, sendRows, receiveRows, dim, warmup, repeats)
                )
                : null;
        double? telemetryWork = traffic ? TimeTelemetryWork(world, lastMetadata!, experts, repeats) : null;
        // Before the medians below sort the lists in place: iteration i of each list is one pair.
        double? paired = traffic
            ? Median(
                Enumerable
                    .Range(0, repeats)
                    .Select(i => (trafficDispatch[i] + trafficCombine[i]) / (dispatchTimes[i] + combineTimes[i]) - 1)
                    .ToList()
            )
            : null;
        double? pairedControl = traffic
            ? Median(
                Enumerable
                    .Range(0, repeats)
                    .Select(i => (controlDispatch[i] + controlCombine[i]) / (dispatchTimes[i] + combineTimes[i]) - 1)
                    .ToList()
            )
            : null;
        return new Result(
            Median(dispatchTimes),
            Median(combineTimes),
            tokenBytes + routedBytes,
            routedBytes + tokenBytes,
            exchange
        )
        {
            WithTraffic = traffic ? (Median(trafficDispatch), Median(trafficCombine)) : null,
            PairedTrafficOverhead = paired,
            PairedControlDifference = pairedControl,
            Control = traffic ? (Median(controlDispatch), Median(controlCombine)) : null,
            TelemetryWorkSeconds = telemetryWork,
        };
    }

    /// <summary>
    /// The median of <paramref name="repeats"/> timings of what <see cref="TokenDispatcherConfig.CollectTraffic"/> adds
    /// to one dispatch + combine, on <paramref name="metadata"/>'s plan (TokenDispatcher's DispatchTraffic and
    /// CombineTraffic make the same calls).
    /// </summary>
    private static double TimeTelemetryWork(IProcessGroup world, DispatchMetadata metadata, int experts, int repeats)
    {
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            world.Barrier();
            long start = Stopwatch.GetTimestamp();
            TrafficReport partial = TrafficCollection.Partial(
                metadata.Plan,
                world.Size,
                world.Rank,
                experts,
                metadata.Dim,
                metadata.RowType
            );
            partial.AddExchangeWait(world.Rank, TrafficExchange.Counts, 0.5);
            partial.AddExchangeWait(world.Rank, TrafficExchange.RowsForward, 0.5);
            TrafficReport dispatched = TrafficCollection.Gather(world, partial, world.Rank, [start, start, 0]);
            var back = new TrafficReport(world.Size, experts);
            back.AddExchangeWait(world.Rank, TrafficExchange.RowsBack, 0.5);
            _ = TrafficReport.Reduce([dispatched, TrafficCollection.Gather(world, back, world.Rank, [0, 0, start])]);
            times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return Median(times);
    }

    /// <summary>The median of <paramref name="values"/> (sorted in place).</summary>
    internal static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }
}
