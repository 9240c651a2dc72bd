using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// Capacity mode beside the normal mode on one rank of an in-process world: the same inputs through two dispatchers
/// (dispatch → the routed rows as the experts' output → combine), alternating which runs first in each repeat, each
/// step ended by a device synchronize; the step time is the slowest rank's. The combine outputs of the two modes are
/// compared bitwise once, so a figure is only reported for a capacity mode that agrees.
/// </summary>
internal static class CapacityBenchmark
{
    /// <summary>Medians in seconds (slowest rank per step), how often the overflow round ran, whether the outputs
    /// agree.</summary>
    public sealed record Result(
        double NormalSeconds,
        double CapacitySeconds,
        int OverflowRounds,
        int Steps,
        bool Bitwise,
        string Device
    );

    /// <summary>Runs the comparison on this rank (collective over <paramref name="world"/>).</summary>
    public static Result RunRank(
        IProcessGroup world,
        ComputeOptions compute,
        DispatchCapacity capacity,
        BenchProblem problem,
        int warmup,
        int repeats
    )
    {
        using DeviceRank? device = compute.CreateRank(world);
        using var groups = ParallelGroups.Create(device?.World ?? world, 1);
        var config = new TokenDispatcherConfig(problem.Experts, problem.TopK)
        {
            ScoreBeforeExperts = problem.ScoreBefore,
        };
        var normal = new AllToAllTokenDispatcher(config, groups, device?.Backend.Kernels);
        var bounded = new AllToAllTokenDispatcher(config with { Capacity = capacity }, groups, device?.Backend.Kernels);
        GroupInputs inputs = RandomInputs
            .Create(
                new Random(problem.Seed + world.Rank),
                problem.Tokens,
                problem.Dim,
                problem.Experts,
                problem.TopK,
                DType.Int32
            )
            .WithRowType(problem.RowType);
        Tensor Upload(Tensor t) => device?.Upload(t) ?? t;
        Tensor x = Upload(inputs.X),
            scores = Upload(inputs.Scores),
            ids = Upload(inputs.Ids);

        bool bitwise = Output(normal, x, scores, ids)
            .AsBytes()
            .SequenceEqual(Output(bounded, x, scores, ids).AsBytes());
        var normalTimes = new List<double>();
        var boundedTimes = new List<double>();
        int overflow = 0;
        for (int i = 0; i < warmup + repeats; i++)
        {
            bool boundedFirst = i % 2 == 1;
            double a = 0,
                b = 0;
            for (int turn = 0; turn < 2; turn++)
            {
                bool runBounded = (turn == 0) == boundedFirst;
                world.Barrier();
                (double seconds, int rounds) = Step(runBounded ? bounded : normal, x, scores, ids, device);
                if (runBounded)
                {
                    b = seconds;
                    if (i >= warmup)
                        overflow += rounds;
                }
                else
                {
                    a = seconds;
                }
            }
            if (i < warmup)
                continue;
            normalTimes.Add(Slowest(world, a));
            boundedTimes.Add(Slowest(world, b));
        }
        return new Result(
            DispatchBenchmark.Median(normalTimes),
            DispatchBenchmark.Median(boundedTimes),
            overflow,
            repeats,
            bitwise,
            compute.Describe(device)
        );
    }

    /// <summary>One timed step: dispatch, the routed rows as the experts' output, combine, a device wait.</summary>
    private static (double Seconds, int OverflowRounds) Step(
        TokenDispatcher dispatcher,
        Tensor x,
        Tensor scores,
        Tensor ids,
        DeviceRank? device
    )
    {
        long start = Stopwatch.GetTimestamp();
        using DispatchResult dispatched = dispatcher.Dispatch(x, scores, ids);
        Tensor output = dispatcher.Combine(dispatched.RoutedTokens, dispatched.Metadata, x);
        device?.Backend.Kernels.Device.Synchronize();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        dispatcher.Allocator.Return(output);
        return (seconds, dispatched.OverflowRounds);
    }

    /// <summary>The combine output of one step, on the host.</summary>
    private static Tensor Output(TokenDispatcher dispatcher, Tensor x, Tensor scores, Tensor ids)
    {
        using DispatchResult dispatched = dispatcher.Dispatch(x, scores, ids);
        return dispatcher.Combine(dispatched.RoutedTokens, dispatched.Metadata, x).ToHost();
    }

    private static double Slowest(IProcessGroup world, double seconds)
    {
        var all = new double[world.Size];
        world.AllGather<double>([seconds], all);
        return all.Max();
    }
}

/// <summary>The shape of a capacity benchmark's problem.</summary>
internal sealed record BenchProblem(
    int Tokens,
    int Dim,
    int Experts,
    int TopK,
    bool ScoreBefore,
    DType RowType,
    int Seed
);
