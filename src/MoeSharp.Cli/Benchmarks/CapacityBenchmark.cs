using System.Diagnostics;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Cuda.Graphs;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// Capacity mode beside the normal mode on one rank of an in-process world: the same inputs through two dispatchers
/// (dispatch → the golden files' scaled-identity experts → combine), rotating which runs first in each repeat, each
/// step ended by a device synchronize; the step time is the slowest rank's. With a CUDA graph (one rank on a CUDA GPU)
/// the capacity-mode step is also captured once and its replay timed in the same loop. The combine outputs are compared
/// bitwise, so a figure is only reported next to whether the modes agree.
/// </summary>
internal static class CapacityBenchmark
{
    /// <summary>Medians in seconds (slowest rank per step), how often the overflow round ran, whether the outputs
    /// agree.</summary>
    public sealed record Result(
        double NormalSeconds,
        double CapacitySeconds,
        double? GraphSeconds,
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
        int repeats,
        bool graph
    )
    {
        using DeviceRank? device = compute.CreateRank(world);
        if (graph && (device is null || world.Size != 1))
            throw new ArgumentException("--graph needs --device cuda and one rank (--world 1)");
        using CapturableStream? stream = graph ? CapturableStream.Use(device!.Backend.Accelerator) : null;
        using var groups = ParallelGroups.Create(device?.World ?? world, 1);
        var config = new TokenDispatcherConfig(problem.Experts, problem.TopK)
        {
            ScoreBeforeExperts = problem.ScoreBefore,
        };
        // A captured step cannot read the host: the capacity mode then skips the validation read (EP = 1 only).
        DispatchCapacity bound = graph ? capacity with { ValidateOnHost = false } : capacity;
        TokenDispatcher normal = Create(config, groups, device),
            bounded = Create(config with { Capacity = bound }, groups, device);
        var experts = new Experts(device, world.Rank * normal.NumLocalExperts);
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
        var step = new StepRunner(experts, x, scores, ids, device);

        byte[] expected = step.Output(normal);
        bool bitwise = expected.AsSpan().SequenceEqual(step.Output(bounded));
        using CudaGraphStep? captured = graph ? step.Capture(bounded, stream!) : null;
        if (captured is not null)
        {
            captured.Replay();
            bitwise &= expected.AsSpan().SequenceEqual(step.CapturedOutput!.ToHost().AsBytes());
        }

        int modes = captured is null ? 2 : 3;
        var times = Enumerable.Range(0, modes).Select(_ => new List<double>()).ToArray();
        int overflow = 0;
        for (int i = 0; i < warmup + repeats; i++)
        {
            var seconds = new double[modes];
            for (int turn = 0; turn < modes; turn++)
            {
                int mode = (turn + i) % modes;
                world.Barrier();
                (seconds[mode], int rounds) = mode switch
                {
                    0 => step.Time(normal),
                    1 => step.Time(bounded),
                    _ => step.Replay(captured!),
                };
                if (mode == 1 && i >= warmup)
                    overflow += rounds;
            }
            if (i < warmup)
                continue;
            for (int mode = 0; mode < modes; mode++)
                times[mode].Add(Slowest(world, seconds[mode]));
        }
        return new Result(
            DispatchBenchmark.Median(times[0]),
            DispatchBenchmark.Median(times[1]),
            captured is null ? null : DispatchBenchmark.Median(times[2]),
            overflow,
            repeats,
            bitwise,
            compute.Describe(device)
        );
    }

    private static TokenDispatcher Create(TokenDispatcherConfig config, ParallelGroups groups, DeviceRank? device) =>
        groups.EpSize == 1
            ? new LocalTokenDispatcher(config, device?.Backend.Kernels)
            : new AllToAllTokenDispatcher(config, groups, device?.Backend.Kernels);

    private static double Slowest(IProcessGroup world, double seconds)
    {
        var all = new double[world.Size];
        world.AllGather<double>([seconds], all);
        return all.Max();
    }

    /// <summary>
    /// The scaled-identity experts: on a device a kernel over the device counts (the normal mode's host counts are
    /// uploaded for it), on the host the verification project's loop.
    /// </summary>
    private sealed class Experts(DeviceRank? device, int firstExpert)
    {
        private readonly DeviceScaledExperts? _kernel = device is null
            ? null
            : new DeviceScaledExperts(device.Backend.Allocator);

        public Tensor Apply(DispatchResult dispatched)
        {
            Tensor routed = dispatched.RoutedTokens;
            if (_kernel is null || routed.DType != DType.Float32)
            {
                // bfloat16 rows on a device: the routed rows stand in for the experts' output.
                if (_kernel is not null)
                    return routed;
                int[] counts =
                    dispatched.DeviceTokensPerLocalExpert?.AsSpan<int>().ToArray()
                    ?? dispatched.TokensPerLocalExpert.ToArray();
                return ScaledIdentityExperts.ApplyToPrefix(routed, counts, firstExpert);
            }
            Tensor? uploaded = null;
            Tensor counts32 =
                dispatched.DeviceTokensPerLocalExpert
                ?? (
                    uploaded = device!.Upload(
                        Tensor.FromArray(
                            dispatched.TokensPerLocalExpert.ToArray(),
                            dispatched.TokensPerLocalExpert.Length
                        )
                    )
                );
            Tensor output = _kernel.Apply(routed, counts32, firstExpert);
            device!.Backend.Allocator.Return(uploaded);
            return output;
        }

        public void Return(DispatchResult dispatched, Tensor output)
        {
            if (!ReferenceEquals(output, dispatched.RoutedTokens))
                dispatched.Metadata.Owner.Allocator.Return(output);
        }
    }

    /// <summary>One step's work on fixed inputs: timed eagerly, captured, or read for the bitwise check.</summary>
    private sealed class StepRunner(Experts experts, Tensor x, Tensor scores, Tensor ids, DeviceRank? device)
    {
        /// <summary>The captured step's combine output (valid after a replay).</summary>
        public Tensor? CapturedOutput { get; private set; }

        public (double Seconds, int OverflowRounds) Time(TokenDispatcher dispatcher)
        {
            long start = Stopwatch.GetTimestamp();
            (Tensor output, int rounds) = Run(dispatcher);
            device?.Backend.Kernels.Device.Synchronize();
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            dispatcher.Allocator.Return(output);
            return (seconds, rounds);
        }

        public (double Seconds, int OverflowRounds) Replay(CudaGraphStep graph)
        {
            long start = Stopwatch.GetTimestamp();
            graph.Replay();
            device!.Backend.Kernels.Device.Synchronize();
            return (Stopwatch.GetElapsedTime(start).TotalSeconds, 0);
        }

        public byte[] Output(TokenDispatcher dispatcher)
        {
            (Tensor output, _) = Run(dispatcher);
            byte[] bytes = output.ToHost().AsBytes().ToArray();
            dispatcher.Allocator.Return(output);
            return bytes;
        }

        /// <summary>
        /// Warms the pool with two eager steps, then captures one: its output stays rented (the graph writes it on
        /// every replay); its other tensors go back to the pool, whose later users are ordered on the same stream.
        /// </summary>
        public CudaGraphStep Capture(TokenDispatcher dispatcher, CapturableStream stream)
        {
            for (int i = 0; i < 2; i++)
                dispatcher.Allocator.Return(Run(dispatcher).Output);
            device!.Backend.Kernels.Device.Synchronize();
            return CudaGraphStep.Capture(stream, () => CapturedOutput = Run(dispatcher).Output);
        }

        private (Tensor Output, int OverflowRounds) Run(TokenDispatcher dispatcher)
        {
            using DispatchResult dispatched = dispatcher.Dispatch(x, scores, ids);
            Tensor expertOutput = experts.Apply(dispatched);
            Tensor output = dispatcher.Combine(expertOutput, dispatched.Metadata, x);
            experts.Return(dispatched, expertOutput);
            return (output, dispatched.OverflowRounds);
        }
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
