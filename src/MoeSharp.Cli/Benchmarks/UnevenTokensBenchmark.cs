using System.Diagnostics;
using MoeSharp.Cli.Commands;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// What a token count that the SP size does not divide costs under each sharding policy and sequence layout: for every
/// (SP, T) of an <see cref="UnevenBenchOptions"/> sweep, dispatch + combine (identity experts) and the SP reduce of
/// the replicated layout are timed for the four (policy, layout) variants side by side, interleaved iteration by
/// iteration, and the rows each variant routes are counted (real rows and the pad rows of pad-to-multiple).
/// </summary>
/// <remarks>
/// The reference is <see cref="SpShardingPolicy.PadToMultiple"/> with <see cref="SequenceLayout.Replicated"/>: the
/// seed (torchtitan's pad change), whose pad rows carry expert id 0 and score 0 and are masked out at combine. Before
/// timing, one untimed pass checks that every variant's final output (after the SP reduce, or the concatenated
/// shards) is bitwise the reference's.
/// </remarks>
internal static class UnevenTokensBenchmark
{
    /// <summary>One (policy, layout) combination.</summary>
    public sealed record Variant(SpShardingPolicy Sharding, SequenceLayout Layout)
    {
        /// <summary>True for the seed's combination, which the others are compared to.</summary>
        public bool IsReference => Sharding == SpShardingPolicy.PadToMultiple && Layout == SequenceLayout.Replicated;
    }

    /// <summary>The variants, the reference first.</summary>
    public static IReadOnlyList<Variant> Variants { get; } =
    [
        new(SpShardingPolicy.PadToMultiple, SequenceLayout.Replicated),
        new(SpShardingPolicy.Balanced, SequenceLayout.Replicated),
        new(SpShardingPolicy.PadToMultiple, SequenceLayout.Sharded),
        new(SpShardingPolicy.Balanced, SequenceLayout.Sharded),
    ];

    /// <summary>One variant at one (SP, T), as every rank agrees.</summary>
    /// <param name="Sp">SP size.</param>
    /// <param name="Remainder">r = T mod SP.</param>
    /// <param name="Tokens">T of each SP group.</param>
    /// <param name="Variant">Policy and layout.</param>
    /// <param name="RealRows">Routed rows of real tokens, whole world (T·K per SP group).</param>
    /// <param name="PadRows">Routed rows of pad tokens, whole world (pad tokens · K per SP group).</param>
    /// <param name="RowsToOtherRanks">
    /// Rows dispatch sends to another rank, whole world (combine sends as many back).
    /// </param>
    /// <param name="DispatchCombineSeconds">Median over the repeats of the slowest rank's dispatch + combine.</param>
    /// <param name="ReduceSeconds">Median of the slowest rank's SP reduce (replicated layout; 0 when sharded).</param>
    /// <param name="TotalSeconds">Median of the slowest rank's dispatch + combine + reduce.</param>
    /// <param name="MatchesReference">Every rank's final rows are bitwise the reference's.</param>
    public sealed record Row(
        int Sp,
        int Remainder,
        int Tokens,
        Variant Variant,
        long RealRows,
        long PadRows,
        long RowsToOtherRanks,
        double DispatchCombineSeconds,
        double ReduceSeconds,
        double TotalSeconds,
        bool MatchesReference
    );

    /// <summary>
    /// This rank's part of the sweep; every rank of <paramref name="world"/> calls it with the same arguments.
    /// </summary>
    /// <param name="world">The ranks (in-process threads or an MPI job).</param>
    /// <param name="device">This rank's device compute, or null for host kernels.</param>
    /// <param name="options">The sweep.</param>
    /// <param name="scoreBefore">Multiply by the score before the experts.</param>
    /// <param name="warmup">Untimed iterations per (SP, T), after the checking pass.</param>
    /// <param name="repeats">Timed iterations per (SP, T); each runs every variant once.</param>
    /// <param name="seed">Seed of the inputs.</param>
    /// <returns>The rows in sweep order (SP, then r, then variant); the same on every rank.</returns>
    public static List<Row> RunRank(
        IProcessGroup world,
        DeviceRank? device,
        UnevenBenchOptions options,
        bool scoreBefore,
        int warmup,
        int repeats,
        int seed
    )
    {
        var rows = new List<Row>();
        // One pool for the rank's four dispatchers: they run one after another, so they can share warm memory (four
        // pools would hold four copies of every buffer, eight ranks over).
        var pool = new TensorPool();
        foreach (int sp in options.SpSizes)
        {
            using var groups = ParallelGroups.Create(device?.World ?? world, sp);
            foreach (int r in UnevenBenchOptions.Remainders(sp))
            {
                int tokens = options.BaseTokens + r;
                GroupInputs inputs = GroupInputsOf(groups.DataParallelIndex, seed, tokens, options);
                var runners = Variants
                    .Select(v => new VariantRunner(v, groups, device, pool, inputs, tokens, options, scoreBefore))
                    .ToArray();
                bool[] matches = CheckAgainstReference(runners);
                var times = runners
                    .Select(_ => (Both: new List<double>(), Reduce: new List<double>(), Total: new List<double>()))
                    .ToArray();
                for (int i = 0; i < warmup + repeats; i++)
                {
                    // Rotate the order each iteration so no variant always runs first (or right after another).
                    for (int j = 0; j < runners.Length; j++)
                    {
                        int v = (i + j) % runners.Length;
                        var (both, reduce) = runners[v].RunTimed(world);
                        if (i < warmup)
                            continue;
                        times[v].Both.Add(both);
                        times[v].Reduce.Add(reduce);
                        times[v].Total.Add(both + reduce);
                    }
                }
                for (int v = 0; v < runners.Length; v++)
                {
                    long[] counts = SumOverWorld(world, runners[v].Counts);
                    bool agreed = AllRanks(world, matches[v]);
                    rows.Add(
                        new Row(
                            sp,
                            r,
                            tokens,
                            Variants[v],
                            counts[0],
                            counts[1],
                            counts[2],
                            MedianOfSlowest(world, times[v].Both),
                            MedianOfSlowest(world, times[v].Reduce),
                            MedianOfSlowest(world, times[v].Total),
                            agreed
                        )
                    );
                }
            }
        }
        return rows;
    }

    /// <summary>
    /// SP group <paramref name="group"/>'s inputs: the groups draw from one generator in order, so every rank sees the
    /// same tokens.
    /// </summary>
    private static GroupInputs GroupInputsOf(int group, int seed, int tokens, UnevenBenchOptions o)
    {
        var random = new Random(seed);
        GroupInputs inputs = RandomInputs.Create(random, tokens, o.Dim, o.Experts, o.TopK);
        for (int g = 1; g <= group; g++)
            inputs = RandomInputs.Create(random, tokens, o.Dim, o.Experts, o.TopK);
        return inputs.WithRowType(o.RowType);
    }

    /// <summary>
    /// One untimed pass of every variant: each rank keeps the rows of the final output it owns (its shard of the
    /// SP-reduced output, or its sharded output) and compares them with the same rows of the reference's reduced
    /// output.
    /// </summary>
    private static bool[] CheckAgainstReference(VariantRunner[] runners)
    {
        // The reference (replicated): its reduced output is the whole [T, D] on every rank.
        byte[] reference = runners[0].RunFullFinal();
        var matches = new bool[runners.Length];
        matches[0] = true;
        for (int v = 1; v < runners.Length; v++)
        {
            (byte[] rows, int start, int rowBytes) = runners[v].RunOwnedFinalRows();
            matches[v] = rows.AsSpan().SequenceEqual(reference.AsSpan(start * rowBytes, rows.Length));
        }
        return matches;
    }

    /// <summary>Collective: element-wise sums of every rank's <paramref name="mine"/>.</summary>
    private static long[] SumOverWorld(IProcessGroup world, long[] mine)
    {
        var all = new long[mine.Length * world.Size];
        world.AllGather<long>(mine, all);
        var sum = new long[mine.Length];
        for (int i = 0; i < all.Length; i++)
            sum[i % mine.Length] += all[i];
        return sum;
    }

    /// <summary>Collective: true when <paramref name="mine"/> holds on every rank.</summary>
    private static bool AllRanks(IProcessGroup world, bool mine) => SumOverWorld(world, [mine ? 0 : 1])[0] == 0;

    /// <summary>
    /// Collective: the median over iterations of the slowest rank's time (an exchange is as slow as its slowest rank).
    /// </summary>
    private static double MedianOfSlowest(IProcessGroup world, List<double> mine)
    {
        int n = mine.Count;
        var all = new double[n * world.Size];
        world.AllGather<double>(mine.ToArray(), all);
        var slowest = new List<double>(n);
        for (int i = 0; i < n; i++)
        {
            double max = 0;
            for (int p = 0; p < world.Size; p++)
                max = Math.Max(max, all[p * n + i]);
            slowest.Add(max);
        }
        return DispatchBenchmark.Median(slowest);
    }

    /// <summary>One variant's dispatcher and this rank's inputs for it.</summary>
    private sealed class VariantRunner
    {
        private readonly TokenDispatcher _dispatcher;
        private readonly Tensor _x,
            _scores,
            _ids;
        private readonly int _tokens;

        public VariantRunner(
            Variant variant,
            ParallelGroups groups,
            DeviceRank? device,
            TensorPool pool,
            GroupInputs inputs,
            int tokens,
            UnevenBenchOptions options,
            bool scoreBefore
        )
        {
            var config = new TokenDispatcherConfig(options.Experts, options.TopK)
            {
                ScoreBeforeExperts = scoreBefore,
                Sharding = variant.Sharding,
                Layout = variant.Layout,
            };
            _dispatcher = new AllToAllTokenDispatcher(
                config,
                groups,
                device?.Backend.Kernels,
                device is null ? pool : null
            );
            GroupInputs mine =
                variant.Layout == SequenceLayout.Sharded
                    ? DispatchWorldRunner.ShardOf(inputs, variant.Sharding, groups.SpSize, groups.SpRank)
                    : inputs;
            Tensor Upload(Tensor t) => device?.Upload(t) ?? t;
            _x = Upload(mine.X);
            _scores = Upload(mine.Scores);
            _ids = Upload(mine.Ids);
            _tokens = tokens;
        }

        /// <summary>
        /// This rank's real routed rows, pad routed rows and rows sent to other ranks, from the last dispatch.
        /// </summary>
        public long[] Counts { get; private set; } = new long[3];

        /// <summary>One timed dispatch + combine and, apart, the SP reduce; seconds on this rank.</summary>
        public (double DispatchCombine, double Reduce) RunTimed(IProcessGroup world)
        {
            _dispatcher.Kernels.Device.Synchronize();
            world.Barrier();
            long start = Stopwatch.GetTimestamp();
            DispatchResult dispatched = _dispatcher.Dispatch(_x, _scores, _ids, _tokens);
            Tensor combined = _dispatcher.Combine(dispatched.RoutedTokens, dispatched.Metadata, _x);
            _dispatcher.Kernels.Device.Synchronize();
            double both = Stopwatch.GetElapsedTime(start).TotalSeconds;
            RecordCounts(dispatched.Metadata, world.Rank);
            ReleaseDispatch(dispatched);

            world.Barrier();
            start = Stopwatch.GetTimestamp();
            Tensor reduced = _dispatcher.ReduceSequenceParallel(combined);
            _dispatcher.Kernels.Device.Synchronize();
            double reduce = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (!ReferenceEquals(reduced, combined))
                _dispatcher.Allocator.Return(reduced);
            _dispatcher.Allocator.Return(combined);
            return (both, reduce);
        }

        /// <summary>
        /// The final rows this rank owns (bytes), the global index of the first and the bytes per row.
        /// </summary>
        public (byte[] Rows, int Start, int RowBytes) RunOwnedFinalRows()
        {
            DispatchResult dispatched = _dispatcher.Dispatch(_x, _scores, _ids, _tokens);
            SequenceShard shard = dispatched.Metadata.Shard;
            Tensor final = Final(dispatched);
            Tensor host = final.ToHost();
            int rowBytes = host.RowLength * host.DType.SizeOf();
            int first = _dispatcher.Config.Layout == SequenceLayout.Replicated ? shard.Start : 0;
            byte[] rows = host.AsBytes().Slice(first * rowBytes, shard.RealRows * rowBytes).ToArray();
            _dispatcher.Allocator.Return(final);
            return (rows, shard.Start, rowBytes);
        }

        /// <summary>The whole SP-reduced output (replicated layout only), as bytes.</summary>
        public byte[] RunFullFinal()
        {
            DispatchResult dispatched = _dispatcher.Dispatch(_x, _scores, _ids, _tokens);
            Tensor final = Final(dispatched);
            byte[] bytes = final.ToHost().AsBytes().ToArray();
            _dispatcher.Allocator.Return(final);
            return bytes;
        }

        private Tensor Final(DispatchResult dispatched)
        {
            Tensor combined = _dispatcher.Combine(dispatched.RoutedTokens, dispatched.Metadata, _x);
            ReleaseDispatch(dispatched);
            Tensor reduced = _dispatcher.ReduceSequenceParallel(combined);
            if (!ReferenceEquals(reduced, combined))
                _dispatcher.Allocator.Return(combined);
            return reduced;
        }

        private void ReleaseDispatch(DispatchResult dispatched)
        {
            _dispatcher.Allocator.Return(dispatched.RoutedTokens);
            _dispatcher.Release(dispatched.Metadata);
        }

        private void RecordCounts(DispatchMetadata metadata, int rank)
        {
            int k = _dispatcher.Config.TopK;
            long toOthers = 0;
            for (int q = 0; q < metadata.InputSplits.Length; q++)
            {
                if (q != rank)
                    toOthers += metadata.InputSplits[q];
            }
            Counts = [(long)metadata.Shard.RealRows * k, (long)metadata.Shard.PadRows * k, toOthers];
        }
    }
}
